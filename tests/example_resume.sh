#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# example_resume.sh MNIST_CLEAN DATA_DIR: an interrupted and resumed mnist_clean run must end with a checkpoint
# byte-identical to the uninterrupted run's; resuming with other settings or from a corrupt file must fail clearly.
set -u
exe=$1
source "$(dirname "$0")/mnist_data.sh" "$2"
w=$(mktemp -d)
trap 'rm -rf "$w"' EXIT
run() { "$exe" --data "$data" --limit 1500 --batch-size 100 "$@" > "$w/log" 2>&1 || { echo "failed: $*"; cat "$w/log"; exit 1; }; }
run --epochs 2 --save "$w/straight.ckpt"
run --epochs 1 --save "$w/resumed.ckpt"
run --epochs 2 --resume "$w/resumed.ckpt" --save "$w/resumed.ckpt"
grep -q "resumed from $w/resumed.ckpt after epoch 1" "$w/log" || { echo "no resume message"; cat "$w/log"; exit 1; }
cmp "$w/straight.ckpt" "$w/resumed.ckpt" || { echo "resumed run differs from the uninterrupted one"; exit 1; }
ls "$w" | grep -q '\.tmp\.' && { echo "temporary files left behind"; ls "$w"; exit 1; }

out=$("$exe" --data "$data" --limit 1500 --batch-size 50 --epochs 2 --resume "$w/resumed.ckpt" 2>&1) && { echo "resumed with another batch size"; exit 1; }
grep -q "cannot resume: the checkpoint has batch_size = '100', this run has '50'" <<<"$out" || { echo "unclear error: $out"; exit 1; }
# the same settings on other data (one training label changed) are refused, naming the data
mkdir "$w/other"
cp "$data"/* "$w/other/"
chmod u+w "$w/other"/*
printf '\x07' | dd of="$w/other/train-labels-idx1-ubyte" bs=1 seek=20 conv=notrunc status=none
out=$("$exe" --data "$w/other" --limit 1500 --batch-size 100 --epochs 2 --resume "$w/resumed.ckpt" 2>&1) && { echo "resumed on other data"; exit 1; }
grep -q "cannot resume: the checkpoint has data = 'train-images-idx3-ubyte:" <<<"$out" || { echo "unclear error: $out"; exit 1; }
printf 'garbage' | dd of="$w/resumed.ckpt" bs=1 seek=200 conv=notrunc status=none
out=$("$exe" --data "$data" --limit 1500 --batch-size 100 --epochs 3 --resume "$w/resumed.ckpt" 2>&1) && { echo "loaded a corrupt checkpoint"; exit 1; }
grep -q "$w/resumed.ckpt: checksum mismatch" <<<"$out" || { echo "unclear error: $out"; exit 1; }
echo "resume OK: byte-identical checkpoints; bad resumes (other batch size, other data, corrupt file) refused"
