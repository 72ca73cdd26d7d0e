#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# lab_defend.sh BACKDOOR_LAB DATA_DIR DEFENSE "CHECKS" [FLAGS...]: a short backdoor_lab defend run on a subset of
# MNIST (FLAGS choose the attack, its rate, the subset and the epochs). CHECKS is an awk condition over the
# figures the program prints: before_asr, after_asr (ASR, true label != target), before_acc, after_acc (C-Acc),
# der, and for data-filtering defenses tpr, precision, f1 (all as fractions), and for the pruning defenses
# pruned (the report's count of pruned channels or neurons). Passes when the run succeeds, the report is written
# and CHECKS holds.
set -u
exe=$1 defense=$3 checks=$4
source "$(dirname "$0")/mnist_data.sh" "$2"
shift 4
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$exe" defend --defense "$defense" "$@" --data "$data" --batch-size 100 --report "$out/r.json" >"$out/log" 2>&1 || { cat "$out/log"; exit 1; }
pct() { sed -n "s/^$1 *C-Acc *\([0-9.]*\)%.*ASR (true label != target) *\([0-9.]*\)%.*/\1 \2/p" "$out/log"; }
read -r before_acc before_asr <<<"$(pct 'before defense')"
read -r after_acc after_asr <<<"$(pct 'after defense')"
der=$(sed -n 's/^DER \([0-9.]*\).*/\1/p' "$out/log")
read -r tpr precision f1 <<<"$(sed -n 's/^detection:.*TPR \([0-9.]*\)%.*precision \([0-9.]*\)%.*F1 \([0-9.]*\)$/\1 \2 \3/p' "$out/log")"
pruned=$(grep -o '"pruned":[0-9]*' "$out/r.json" | head -1 | cut -d: -f2)
summary="pruned=${pruned:-} before_acc=$before_acc before_asr=$before_asr after_acc=$after_acc after_asr=$after_asr der=$der tpr=${tpr:-} precision=${precision:-} f1=${f1:-}"
echo "$defense: $summary (percentages as printed)"
[ -n "$before_asr" ] && [ -n "$after_asr" ] && [ -n "$der" ] || { echo "the output lacks a figure:"; cat "$out/log"; exit 1; }
grep -q '"der"' "$out/r.json" || { echo "the report lacks der"; exit 1; }
awk -v before_acc="$before_acc" -v before_asr="$before_asr" -v after_acc="$after_acc" -v after_asr="$after_asr" -v der="$der" \
    -v tpr="${tpr:-0}" -v precision="${precision:-0}" -v f1="${f1:-0}" -v pruned="${pruned:-0}" \
    "BEGIN { before_acc /= 100; before_asr /= 100; after_acc /= 100; after_asr /= 100; tpr /= 100; precision /= 100; exit !($checks) }" ||
  { echo "does not hold: $checks"; exit 1; }
echo "OK"
