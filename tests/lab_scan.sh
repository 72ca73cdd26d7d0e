#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# lab_scan.sh BACKDOOR_LAB DATA_DIR refuse MODEL PATTERN: `scan` of a model that does not fit MNIST exits non-zero with
#   PATTERN in its output and writes nothing (neither the report nor the output folder).
# lab_scan.sh BACKDOOR_LAB DATA_DIR run: a quick model (5,000 images, 1 epoch, badnets-patch) scanned with a small
#   budget: the report has anomaly_index (10 numbers), flagged_labels (a list), STRIP's figures, and the PNG exists.
set -u
exe=$1 mode=$3
source "$(dirname "$0")/mnist_data.sh" "$2"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
if [ "$mode" = refuse ]; then
  model=$4 pattern=$5
  msg=$("$exe" scan --model "$model" --data "$data" --report "$out/r.json" --output-dir "$out/png" 2>&1); rc=$?
  [ $rc -ne 0 ] || { echo "expected a failure, got exit 0: $msg"; exit 1; }
  grep -qF -- "$pattern" <<<"$msg" || { echo "exit $rc, but the output lacks '$pattern': $msg"; exit 1; }
  [ ! -e "$out/r.json" ] && [ ! -e "$out/png" ] || { echo "something was written:"; ls -R "$out"; exit 1; }
  echo "exit $rc with: $msg"; echo OK; exit 0
fi
"$exe" attack --attack badnets-patch --data "$data" --limit-train 5000 --epochs 1 --batch-size 100 --save-model "$out/m.ckpt" >/dev/null || exit 1
"$exe" scan --model "$out/m.ckpt" --data "$data" --report "$out/scan.json" --output-dir "$out/png" --nc-max-epochs 4 --nc-clean-images 200 \
  --strip-inputs 200 --strip-overlays 10 || exit 1
tr -d ' \n' < "$out/scan.json" > "$out/flat.json"
grep -qE '"anomaly_index":\[([-0-9.e+]+,){9}[-0-9.e+]+\]' "$out/flat.json" || { echo "no anomaly_index of 10 numbers:"; cat "$out/scan.json"; exit 1; }
grep -qE '"flagged_labels":\[[0-9,]*\]' "$out/flat.json" || { echo "no flagged_labels list"; exit 1; }
grep -qE '"strip":\{"defense":"strip","overlays":10,' "$out/flat.json" || { echo "no STRIP result"; exit 1; }
head -c 8 "$out/png/reversed_triggers.png" | od -An -tx1 | grep -q "89 50 4e 47 0d 0a 1a 0a" || { echo "no reversed_triggers.png"; exit 1; }
echo OK
