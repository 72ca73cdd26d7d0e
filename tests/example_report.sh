#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# example_report.sh MNIST_BACKDOOR DATA_DIR: a short mnist_backdoor run whose JSON report must hold every key.
set -u
exe=$1
source "$(dirname "$0")/mnist_data.sh" "$2"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$exe" --data "$data" --epochs 1 --limit 3000 --output-dir "$out/png" --report "$out/r.json" || exit 1
for key in clean_accuracy epoch_seconds images_per_second backdoored_clean_accuracy attack_success_rate attack_success_rate_non_target; do
  grep -q "\"$key\": " "$out/r.json" || { echo "report lacks $key:"; cat "$out/r.json"; exit 1; }
done
grep -q '"epoch_seconds": \[[0-9.e+-]*\]' "$out/r.json" || { echo "epoch_seconds is not a list of one number"; cat "$out/r.json"; exit 1; }
for key in clean_accuracy backdoored_clean_accuracy attack_success_rate attack_success_rate_non_target; do
  v=$(sed -n "s/.*\"$key\": \([0-9.e+-]*\).*/\1/p" "$out/r.json")
  awk -v v="$v" 'BEGIN { exit !(v >= 0 && v <= 1) }' || { echo "$key = $v is not a fraction"; exit 1; }
done
head -c 8 "$out/png/backdoor_predictions.png" | od -An -tx1 | grep -q "89 50 4e 47 0d 0a 1a 0a" || { echo "no PNG written"; exit 1; }
echo "report OK"; cat "$out/r.json"
