#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Build the tests with AddressSanitizer + UndefinedBehaviorSanitizer
# (clang++ when installed, as scripts/install_deps.sh --fuzz does, else g++; in build-asan/) and run every test but
# the slow MNIST, lab, consumer, PyTorch and header ones.
# clang: the Release tests (scripts/test.sh) use g++, so both compilers' warnings and code generation are tested; at
# -O0 clang also compiles these programs about twice as fast as g++ (a group of test files: 77 s, g++ 153 s).
# The example programs are left out (their flag tests run in scripts/test.sh; the library code they call is tested
# here): compiling them under ASan took a minute and a half of the CI's 25 on two cores.
# Any sanitizer report fails the test that triggered it.
set -euo pipefail
cd "$(dirname "$0")/.."
cxx=${CXX:-$(command -v clang++ || echo g++)}
cmake -S . -B build-asan -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=Debug -DEIGENCNN_SANITIZE=ON -DEIGENCNN_BUILD_TESTS=ON -DEIGENCNN_BUILD_EXAMPLES=OFF >/dev/null
# Build everything but the programs only the left-out tests run (test_mnist, test_torch, torch_helper and
# test_detection_mnist are EXCLUDE_FROM_ALL in this build): one `cmake --build` of all, so that both cores compile
# (a list of --target names builds one target at a time under the Makefile generator).
cmake --build build-asan -j"$(nproc)"
# ctest runs one test per core and most tests use every core: threads that spin at OpenMP barriers (libgomp's
# default) then steal the cores the other test needs (Neural Cleanse ran 8-13x slower so); sleeping ones do not.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export LSAN_OPTIONS=suppressions=$PWD/scripts/lsan.supp:print_suppressions=0  # a leak inside libomp itself
ctest --test-dir build-asan --output-on-failure -j"$(nproc)" -LE "mnist|consumer|torch|lab|headers" "$@"
