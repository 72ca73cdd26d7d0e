#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# lab_sweep.sh BACKDOOR_LAB DATA_DIR: a tiny backdoor_lab sweep (2 rates x 1 seed, 2000 images, 1 epoch) writes its
# cells, JSON, CSV and plot; run again with --resume it reads both cells instead of training, and with other
# settings it refuses them, naming the file.
set -u
exe=$1
source "$(dirname "$0")/mnist_data.sh" "$2"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
args=(sweep --attack badnets-patch --poison-rates 0.05,0.1 --seeds 1 --data "$data" --limit-train 2000 --epochs 1 --batch-size 100 --output-dir "$out/s")
"$exe" "${args[@]}" > "$out/first.log" 2>&1 || { cat "$out/first.log"; exit 1; }
for f in cells/rate-0.05_seed-0.json cells/rate-0.1_seed-0.json sweep.json sweep.csv badnets-patch_gallery.png; do
  [ -s "$out/s/$f" ] || { echo "missing $f"; cat "$out/first.log"; exit 1; }
done
[ "$(wc -l < "$out/s/sweep.csv")" -eq 3 ] || { echo "sweep.csv should have a header and 2 rows"; cat "$out/s/sweep.csv"; exit 1; }
if command -v gnuplot > /dev/null; then [ -s "$out/s/sweep.png" ] || { echo "no plot"; exit 1; }; fi
"$exe" "${args[@]}" --resume > "$out/resume.log" 2>&1 || { cat "$out/resume.log"; exit 1; }
grep -q "(2 resumed)" "$out/resume.log" || { echo "resume did not read both cells:"; cat "$out/resume.log"; exit 1; }
if grep -q "epoch  1/1" "$out/resume.log"; then echo "resume trained again:"; cat "$out/resume.log"; exit 1; fi
"$exe" "${args[@]}" --resume --lr 0.002 > "$out/other.log" 2>&1 && { echo "resumed cells of another lr"; exit 1; }
grep -q "rate-0.05_seed-0.json: cannot resume: written with settings" "$out/other.log" || { echo "unclear refusal:"; cat "$out/other.log"; exit 1; }
echo "OK"
