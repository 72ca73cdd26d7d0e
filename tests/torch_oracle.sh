#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# PyTorch as the oracle (CTest label "torch"): eigencnn and PyTorch 1.13 exchange models as safetensors.
#   torch_oracle.sh gradients   HELPER WORK            the seed model's outputs and gradients vs PyTorch's; its
#                                                      weights as F16, BF16, F64 converted as PyTorch converts them
#   torch_oracle.sh from_torch  HELPER WORK MNIST      a PyTorch-trained model predicted by eigencnn
#   torch_oracle.sh to_torch    HELPER WORK MNIST      an eigencnn-trained model predicted by PyTorch
#   torch_oracle.sh model_file  HELPER WORK            PyTorch's BatchNorm CNN read by load_model_file, folded in eval mode
# Skips (exit 77) when /usr/bin/python3 cannot import torch, unless EIGENCNN_REQUIRE_TORCH=1 (CI): then fails.
set -euo pipefail
mode=$1 helper=$2 work=$3
here=$(cd "$(dirname "$0")" && pwd)
py=${EIGENCNN_TORCH_PYTHON:-/usr/bin/python3}
if ! err=$("$py" -c "import torch, numpy" 2>&1); then
  if [ "${EIGENCNN_REQUIRE_TORCH:-}" = 1 ]; then
    echo "PyTorch required (EIGENCNN_REQUIRE_TORCH=1) but $py cannot import torch: ${err##*$'\n'}"; exit 1
  fi
  echo "skipping: $py cannot import torch (install Debian's python3-torch: scripts/install_deps.sh --torch)"; exit 77
fi
rm -rf "$work" && mkdir -p "$work"
oracle() { OMP_NUM_THREADS=2 "$py" "$here/torch_oracle.py" "$@"; }
case $mode in
  gradients)
    "$helper" gradients "$work"
    oracle gradients "$work"
    oracle convert_out "$work"
    for kind in f16 bf16 f64; do "$helper" resave "$work/model.$kind.safetensors" "$work/model.$kind.resaved.safetensors"; done
    oracle convert_check "$work" ;;
  model_file)
    oracle bn_model "$work"
    "$helper" model_file "$work" ;;
  from_torch|to_torch)
    source "$here/mnist_data.sh" "$4"   # sets $data, or exits 77 / 1 without MNIST
    if [ "$mode" = from_torch ]; then
      oracle train "$data" 4000 "$work/torch.safetensors" "$work/torch.pred"
      "$helper" predict "$work/torch.safetensors" "$data" "$work/eigencnn.pred"
      oracle compare "$work/eigencnn.pred" "$work/torch.pred" 9995
    else
      "$helper" train "$data" 4000 "$work/eigencnn.safetensors"
      "$helper" predict "$work/eigencnn.safetensors" "$data" "$work/eigencnn.pred"
      oracle predict "$work/eigencnn.safetensors" "$data" "$work/torch.pred"
      oracle compare "$work/torch.pred" "$work/eigencnn.pred" 9995
    fi ;;
  *) echo "torch_oracle.sh: unknown mode $mode"; exit 2 ;;
esac
