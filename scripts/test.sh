#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Build everything and run the whole test suite through CTest.
# The MNIST tests (label "mnist") use data/mnist (scripts/fetch_mnist.sh) or
# $EIGENCNN_MNIST_DIR; they are skipped without the data unless
# $EIGENCNN_REQUIRE_MNIST is set. The PyTorch oracle tests (label "torch") need
# Debian's python3-torch (scripts/install_deps.sh --torch); they are skipped
# without it unless $EIGENCNN_REQUIRE_TORCH=1. Tests run in parallel, one per core.
# Extra arguments go to ctest (e.g. -L torch, or -LE "lab|consumer" to leave the slow ones out).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DEIGENCNN_BUILD_TESTS=ON -DEIGENCNN_BUILD_EXAMPLES=ON >/dev/null
cmake --build build -j"$(nproc)"
# ctest runs one test per core and most tests use every core: threads that spin at OpenMP barriers (libgomp's
# default) then steal the cores the other test needs (Neural Cleanse ran 8-13x slower so); sleeping ones do not.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
ctest --test-dir build --output-on-failure -j"$(nproc)" "$@"
