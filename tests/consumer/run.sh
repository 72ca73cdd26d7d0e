#!/usr/bin/env bash
# run.sh SOURCE_DIR WORK_DIR MODE: build tests/consumer against eigencnn and run it.
#   find_package:     install eigencnn into WORK_DIR/prefix, then find_package(eigencnn)
#   add_subdirectory: add_subdirectory(SOURCE_DIR) from the consumer
set -euo pipefail
src=$1 work=$2/$3 mode=$3
rm -rf "$work"; mkdir -p "$work"
if [ "$mode" = find_package ]; then
  cmake -S "$src" -B "$work/lib" -DEIGENCNN_BUILD_TESTS=OFF -DEIGENCNN_BUILD_EXAMPLES=OFF >/dev/null
  cmake --install "$work/lib" --prefix "$work/prefix" >/dev/null
  test -f "$work/prefix/include/eigencnn/eigencnn.hpp"
  cmake -S "$src/tests/consumer" -B "$work/app" -DCMAKE_PREFIX_PATH="$work/prefix" -DEIGENCNN_CONSUMER_MODE=find_package
else
  cmake -S "$src/tests/consumer" -B "$work/app" -DEIGENCNN_SOURCE="$src" -DEIGENCNN_CONSUMER_MODE=add_subdirectory
fi
cmake --build "$work/app" -j2
"$work/app/consumer"
