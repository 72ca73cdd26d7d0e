#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Run eigencnn's train_bench and PyTorch's reference loop one after the other
# on the same machine, then print both and the ratios.
#
#   bench/compare.sh [--threads N] [--epochs N] [--data DIR]      (build first: see docs/performance.md)
#
# PyTorch is looked for in Debian's python3 (package python3-torch); where it
# is missing the PyTorch half is skipped with a message saying so.
set -euo pipefail
cd "$(dirname "$0")/.."
threads=2 epochs=3 data=data/mnist
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) threads=$2; shift 2 ;;
    --epochs) epochs=$2; shift 2 ;;
    --data) data=$2; shift 2 ;;
    *) echo "compare.sh: unknown argument '$1' (flags: --threads N --epochs N --data DIR)" >&2; exit 2 ;;
  esac
done
bin=build/bench/train_bench
[ -x "$bin" ] || { echo "compare.sh: $bin not built; run: cmake -S . -B build -DEIGENCNN_BUILD_BENCH=ON && cmake --build build --target train_bench" >&2; exit 1; }
py=python3
[ -x /usr/bin/python3 ] && py=/usr/bin/python3

echo "== eigencnn, $threads thread(s)"
ours=$("$bin" --data "$data" --epochs "$epochs" --threads "$threads" | tee /dev/stderr | tail -1)
if ! "$py" -c "import torch" 2>/dev/null; then
  echo "== PyTorch: not installed for $py (apt-get install python3-torch libopenblas0-pthread); skipped"
  exit 0
fi
echo "== PyTorch, $threads thread(s)"
theirs=$(OMP_NUM_THREADS=$threads "$py" bench/pytorch_reference.py --data "$data" --epochs "$epochs" --threads "$threads" | tee /dev/stderr | tail -1)
"$py" - "$ours" "$theirs" <<'PY'
import json, sys
o, t = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"\n{'':34}{'eigencnn':>12}{'PyTorch':>12}{'ratio':>8}")
print(f"{'seconds per epoch (median)':34}{o['epoch_seconds_median']:12.3f}{t['epoch_seconds_median']:12.3f}{t['epoch_seconds_median'] / o['epoch_seconds_median']:7.2f}x")
print(f"{'inference images/s':34}{o['inference_images_per_second']:12.0f}{t['inference_images_per_second']:12.0f}{o['inference_images_per_second'] / t['inference_images_per_second']:7.2f}x")
print(f"{'peak RSS MB':34}{o['peak_rss_mb']:12.0f}{t['peak_rss_mb']:12.0f}")
print("ratio > 1: eigencnn is faster")
PY
