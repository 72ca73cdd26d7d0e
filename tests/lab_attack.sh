#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# lab_attack.sh BACKDOOR_LAB DATA_DIR ATTACK MIN_ASR_GAIN MIN_CLEAN_ACC [FLAGS...]: a short backdoor_lab attack on a
# subset of MNIST (20000 training images, 3 epochs unless FLAGS hold --epochs N, batch 100) with a clean baseline.
# FLAGS go to `attack` and, but for --epochs, to `evaluate`. Passes when the backdoored
# model's ASR (true label != target) exceeds the clean model's on the same triggered test set by MIN_ASR_GAIN, its
# clean accuracy is at least MIN_CLEAN_ACC, and `evaluate` of the saved model reproduces the report's metrics.
set -u
exe=$1 attack=$3 gain=$4 min_acc=$5
source "$(dirname "$0")/mnist_data.sh" "$2"
shift 5
epochs=(--epochs 3) flags=()
while [ $# -gt 0 ]; do
  if [ "$1" = --epochs ]; then epochs=(--epochs "$2"); shift 2; else flags+=("$1"); shift; fi
done
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$exe" attack --attack "$attack" "${flags[@]}" --data "$data" --limit-train 20000 "${epochs[@]}" --batch-size 100 --clean-baseline \
  --output-dir "$out/png" --report "$out/r.json" --save-model "$out/m.ckpt" || exit 1
"$exe" evaluate --model "$out/m.ckpt" --attack "$attack" "${flags[@]}" --data "$data" --report "$out/e.json" || exit 1
value() { sed -n "s/^  \"$2\": \([0-9.e+-]*\),\{0,1\}$/\1/p" "$1"; }
bd_acc=$(value "$out/r.json" clean_accuracy) bd_asr=$(value "$out/r.json" attack_success_rate_non_target)
clean_asr=$(sed -n 's/.*"clean_model": {.*"attack_success_rate_non_target":\([0-9.e+-]*\).*/\1/p' "$out/r.json")
ev_acc=$(value "$out/e.json" clean_accuracy) ev_asr=$(value "$out/e.json" attack_success_rate_non_target)
echo "$attack: backdoored C-Acc $bd_acc, ASR (non-target) $bd_asr; clean model ASR (non-target) $clean_asr; evaluate: $ev_acc, $ev_asr"
[ -n "$bd_acc" ] && [ -n "$bd_asr" ] && [ -n "$clean_asr" ] || { echo "report lacks a metric:"; cat "$out/r.json"; exit 1; }
awk -v b="$bd_asr" -v c="$clean_asr" -v g="$gain" 'BEGIN { exit !(b >= c + g) }' || { echo "ASR $bd_asr is not $gain above the clean model's $clean_asr"; exit 1; }
awk -v a="$bd_acc" -v m="$min_acc" 'BEGIN { exit !(a >= m) }' || { echo "C-Acc $bd_acc is below $min_acc"; exit 1; }
[ "$ev_acc" = "$bd_acc" ] && [ "$ev_asr" = "$bd_asr" ] || { echo "evaluate gave $ev_acc, $ev_asr for the saved model"; exit 1; }
head -c 8 "$out/png/$attack"_gallery.png | od -An -tx1 | grep -q "89 50 4e 47 0d 0a 1a 0a" || { echo "no gallery PNG"; exit 1; }
echo "OK"
