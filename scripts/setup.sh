#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# One command from a fresh Debian 12 machine to the notebook's result:
# install dependencies, fetch and verify MNIST, build, run mnist_backdoor.
#
#   scripts/setup.sh [extra mnist_backdoor flags, e.g. --epochs 2]
#
# MNIST is taken from $MNIST_LOCAL_DIR when set (see scripts/fetch_mnist.sh).
# Output: out/backdoor_predictions.png and out/backdoor.json.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
scripts/fetch_mnist.sh --dest data/mnist
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target mnist_clean mnist_backdoor
mkdir -p out
build/examples/mnist_backdoor --data data/mnist --output-dir out --report out/backdoor.json "$@"
