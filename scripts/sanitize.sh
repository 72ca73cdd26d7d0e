#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Build the tests and examples with AddressSanitizer + UndefinedBehaviorSanitizer
# (g++, in build-asan/) and run every test but the slow MNIST, lab, consumer and PyTorch ones.
# Any sanitizer report fails the test that triggered it.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DEIGENCNN_SANITIZE=ON -DEIGENCNN_BUILD_TESTS=ON -DEIGENCNN_BUILD_EXAMPLES=ON >/dev/null
# Build only what the tests below run: the MNIST-, lab- and PyTorch-only programs (test_mnist, test_torch,
# torch_helper) would add minutes of ASan compilation for tests this script leaves out.
targets=$(cmake --build build-asan --target help | sed -n 's/^\.\.\. \([A-Za-z0-9_]*\)$/\1/p' |
          grep -vE '^(all|clean|depend|edit_cache|install.*|list_install_components|rebuild_cache|test|test_mnist|test_torch|torch_helper)$')
cmake --build build-asan -j"$(nproc)" --target $targets
# ctest runs one test per core and most tests use every core: threads that spin at OpenMP barriers (libgomp's
# default) then steal the cores the other test needs (Neural Cleanse ran 8-13x slower so); sleeping ones do not.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ctest --test-dir build-asan --output-on-failure -j"$(nproc)" -LE "mnist|consumer|torch|lab" "$@"
