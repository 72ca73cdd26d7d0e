#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# run.sh SOURCE_DIR WORK_DIR MODE: build a consumer of eigencnn and run it.
#   find_package            install eigencnn into WORK_DIR/prefix, then find_package(eigencnn)
#   find_package_no_openmp  the same, with the consumer refusing OpenMP (-DCMAKE_DISABLE_FIND_PACKAGE_OpenMP=ON)
#   add_subdirectory        add_subdirectory(SOURCE_DIR) from the consumer
#   fetchcontent            FetchContent_Declare(SOURCE_DIR ...) + FetchContent_MakeAvailable
#   pkg_config              install, then compile with `pkg-config --cflags --libs eigencnn` alone
#   examples                install, then build examples/ as a project of its own against the package
# The consumer checks that its build type and BUILD_TESTING are untouched (tests/consumer/CMakeLists.txt).
set -euo pipefail
src=$1 work=$2/$3 mode=$3
rm -rf "$work"; mkdir -p "$work"
install_lib() {
  cmake -S "$src" -B "$work/lib" -DEIGENCNN_BUILD_TESTS=OFF -DEIGENCNN_BUILD_EXAMPLES=OFF >/dev/null
  cmake --install "$work/lib" --prefix "$work/prefix" >/dev/null
  test -f "$work/prefix/include/eigencnn/eigencnn.hpp"
  test -f "$work/prefix/share/pkgconfig/eigencnn.pc"
  test -f "$work/prefix/share/doc/eigencnn/LICENSE"
}
case "$mode" in
  find_package)
    install_lib
    cmake -S "$src/tests/consumer" -B "$work/app" -DCMAKE_PREFIX_PATH="$work/prefix" -DEIGENCNN_CONSUMER_MODE=find_package ;;
  find_package_no_openmp)
    install_lib
    cmake -S "$src/tests/consumer" -B "$work/app" -DCMAKE_PREFIX_PATH="$work/prefix" -DEIGENCNN_CONSUMER_MODE=find_package \
      -DCMAKE_DISABLE_FIND_PACKAGE_OpenMP=ON | tee "$work/configure.log"
    grep -q "eigencnn: OpenMP OFF" "$work/configure.log" ||
      { echo "OpenMP was used although the consumer disabled it"; exit 1; } ;;
  add_subdirectory|fetchcontent)
    cmake -S "$src/tests/consumer" -B "$work/app" -DEIGENCNN_SOURCE="$src" -DEIGENCNN_CONSUMER_MODE="$mode" ;;
  pkg_config)
    install_lib
    flags=$(PKG_CONFIG_PATH="$work/prefix/share/pkgconfig" pkg-config --cflags --libs eigencnn)
    stb=$(dirname "$(find /usr/include -name stb_image_write.h | head -1)")
    mkdir -p "$work/app"
    g++ -std=c++17 -O1 $flags -I"$stb" "$src/tests/consumer/main.cpp" "$src/tests/consumer/stb_before.cpp" \
      "$src/tests/consumer/stb_after.cpp" -o "$work/app/consumer" -lz
    "$work/app/consumer"
    exit 0 ;;
  examples)
    install_lib
    cmake -S "$src/examples" -B "$work/examples" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
    cmake --build "$work/examples" -j2 --target quickstart
    "$work/examples/quickstart" --version
    exit 0 ;;
  *) echo "run.sh: unknown mode '$mode'" >&2; exit 2 ;;
esac
cmake --build "$work/app" -j2
"$work/app/consumer"
