#!/usr/bin/env bash
# Build the tests and examples with AddressSanitizer + UndefinedBehaviorSanitizer
# (g++, in build-asan/) and run every test but the slow MNIST, lab, consumer and PyTorch ones.
# Any sanitizer report fails the test that triggered it.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DEIGENCNN_SANITIZE=ON -DEIGENCNN_BUILD_TESTS=ON -DEIGENCNN_BUILD_EXAMPLES=ON >/dev/null
cmake --build build-asan -j"$(nproc)"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ctest --test-dir build-asan --output-on-failure -LE "mnist|consumer|torch|lab" "$@"
