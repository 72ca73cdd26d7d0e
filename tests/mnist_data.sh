# SPDX-License-Identifier: MIT
# Sourced by the example tests: sets $data to the MNIST folder ($EIGENCNN_MNIST_DIR, else $1) or exits:
# 77 (CTest's skip) without the data, 1 if $EIGENCNN_REQUIRE_MNIST says the data must be there.
data=${EIGENCNN_MNIST_DIR:-$1}
if [ ! -e "$data/train-images-idx3-ubyte" ] && [ ! -e "$data/train-images-idx3-ubyte.gz" ]; then
  [ -n "${EIGENCNN_REQUIRE_MNIST:-}" ] && { echo "MNIST required but missing in $data"; exit 1; }
  echo "skipping: no MNIST in $data"; exit 77
fi
