#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The newer layers and the two BatchNorm models, eigencnn (build/bench/model_bench) against PyTorch
# (bench/pytorch_models.py) in the same run: each comparison runs eigencnn then PyTorch back to back,
# REPS times, and the table gives the medians and the ratios (> 1: eigencnn is faster).
#
#   bench/compare_models.sh [--threads 2] [--reps 3] [--data DIR] [--only layers|bn_cnn|resnet] [--raw FILE]
#   (--raw: keep every run's JSON line in FILE)
#
# The load (uptime) is printed before and after: timings on a busy machine are not the libraries' speed.
set -euo pipefail
cd "$(dirname "$0")/.."
threads=2 reps=3 data=data/mnist only="layers bn_cnn resnet" raw=""
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) threads=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --data) data=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --raw) raw=$2; shift 2 ;;
    *) echo "compare_models.sh: unknown argument '$1' (flags: --threads N --reps N --data DIR --only NAME)" >&2; exit 2 ;;
  esac
done
bin=build/bench/model_bench
[ -x "$bin" ] || { echo "compare_models.sh: $bin not built; run: cmake -S . -B build -DEIGENCNN_BUILD_BENCH=ON && cmake --build build --target model_bench" >&2; exit 1; }
py=python3
[ -x /usr/bin/python3 ] && py=/usr/bin/python3
"$py" -c "import torch" 2>/dev/null || { echo "compare_models.sh: PyTorch is not installed for $py (apt-get install python3-torch)" >&2; exit 1; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "load before: $(uptime)"
for bench in $only; do
  for r in $(seq "$reps"); do
    echo "== $bench, repetition $r of $reps: eigencnn, then PyTorch ($threads threads)" >&2
    "$bin" "$bench" --threads "$threads" --data "$data" >> "$out"
    OMP_NUM_THREADS=$threads "$py" bench/pytorch_models.py "$bench" --threads "$threads" --data "$data" >> "$out"
  done
done
echo "load after: $(uptime)"
[ -z "$raw" ] || cp "$out" "$raw"
"$py" - "$out" "$reps" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
def med(impl, bench, key, name=None):
    v = [r[key] for r in rows if r["impl"] == impl and r["bench"] == bench and r.get("name") == name]
    return statistics.median(v) if v else float("nan")
names = list(dict.fromkeys(r["name"] for r in rows if r["bench"] == "layer"))
if names:
    print(f"\n| layer (train mode) | input | forward ms eigencnn | PyTorch | ratio | backward ms eigencnn | PyTorch | ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for n in names:
        shape = next(r["shape"] for r in rows if r.get("name") == n)
        f = [med(i, "layer", "forward_ms", n) for i in ("eigencnn", "pytorch")]
        b = [med(i, "layer", "backward_ms", n) for i in ("eigencnn", "pytorch")]
        print(f"| {n} | {shape} | {f[0]:.3f} | {f[1]:.3f} | {f[1] / f[0]:.2f}x | {b[0]:.3f} | {b[1]:.3f} | {b[1] / b[0]:.2f}x |")
if any(r["bench"] == "bn_cnn" for r in rows):
    e, t = med("eigencnn", "bn_cnn", "epoch_seconds_median"), med("pytorch", "bn_cnn", "epoch_seconds_median")
    ei, ti = med("eigencnn", "bn_cnn", "inference_images_per_second"), med("pytorch", "bn_cnn", "inference_images_per_second")
    print(f"\nseed model + BatchNorm2d (mnist_cnn_bn), batch 500: s per epoch eigencnn {e:.3f}, PyTorch {t:.3f}, ratio {t / e:.2f}x; "
          f"inference images/s {ei:.0f} vs {ti:.0f}, ratio {ei / ti:.2f}x")
if any(r["bench"] == "resnet" for r in rows):
    e, t = med("eigencnn", "resnet", "train_images_per_second"), med("pytorch", "resnet", "train_images_per_second")
    print(f"PreAct-ResNet 16-32-64, 3x32x32, batch 128: training images/s eigencnn {e:.0f}, PyTorch {t:.0f}, ratio {e / t:.2f}x")
print(f"(medians over {sys.argv[2]} back-to-back repetitions; ratio > 1: eigencnn is faster)")
PY
