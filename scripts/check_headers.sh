#!/usr/bin/env bash
# Every public header compiles on its own with strict warnings as errors, under g++ and clang++, with and
# without OpenMP, as C++17 and C++20 (third-party headers on -isystem).
#   scripts/check_headers.sh [COMPILER...]      (default: g++ clang++, those installed)
set -uo pipefail
cd "$(dirname "$0")/.."
compilers=("$@")
[ ${#compilers[@]} -eq 0 ] && compilers=(g++ clang++)
strict=(-Wall -Wextra -Wpedantic -Wshadow -Wconversion -Werror)
headers=$(find include/eigencnn -name '*.hpp' | sort)
checked=0 failed=0
for cxx in "${compilers[@]}"; do
  command -v "$cxx" >/dev/null || { echo "check_headers: $cxx not installed, skipped"; continue; }
  for std in c++17 c++20; do
    for omp in -fopenmp ""; do
      for h in $headers; do
        checked=$((checked + 1))
        if ! out=$(echo "#include <${h#include/}>" | "$cxx" -std=$std $omp -fsyntax-only -x c++ "${strict[@]}" \
                   -Iinclude -isystem /usr/include/eigen3 -isystem /usr/include/stb - 2>&1); then
          failed=$((failed + 1))
          echo "FAIL: $cxx -std=$std ${omp:-(no OpenMP)} $h"
          echo "$out" | grep -E "error" | head -5
        fi
      done
    done
  done
done
echo "$((checked - failed)) passed, $failed failed"
[ "$failed" -eq 0 ]
