#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# example_weights.sh MNIST_CLEAN BACKDOOR_LAB DATA_DIR: --save-weights then --load-weights round trip.
# A short mnist_clean run saves its weights as safetensors; mnist_clean --load-weights FILE --epochs 0 and
# backdoor_lab evaluate --model FILE must report the same test accuracy as the run that saved them; the file is
# written atomically (no temporary left), and a file for another architecture is refused naming the tensor.
set -u
clean=$1 lab=$2
source "$(dirname "$0")/mnist_data.sh" "$3"
w=$(mktemp -d)
trap 'rm -rf "$w"' EXIT
run() { "$@" > "$w/log" 2>&1 || { echo "failed: $*"; cat "$w/log"; exit 1; }; }
acc() { sed -n 's/.*"clean_accuracy": *\([0-9.e-]*\).*/\1/p' "$1"; }
run "$clean" --data "$data" --limit 2000 --batch-size 100 --epochs 1 --threads 2 --save-weights "$w/net.safetensors" --report "$w/trained.json"
[ -s "$w/net.safetensors" ] || { echo "no weights written"; exit 1; }
ls "$w" | grep -q '\.tmp\.' && { echo "temporary files left behind"; ls "$w"; exit 1; }
run "$clean" --data "$data" --epochs 0 --threads 2 --load-weights "$w/net.safetensors" --report "$w/loaded.json"
grep -q "weights loaded from $w/net.safetensors" "$w/log" || { echo "no load message"; cat "$w/log"; exit 1; }
run "$lab" evaluate --model "$w/net.safetensors" --data "$data" --threads 2 --report "$w/evaluated.json"
a=$(acc "$w/trained.json") b=$(acc "$w/loaded.json") c=$(acc "$w/evaluated.json")
echo "test accuracy: trained $a, loaded into mnist_clean $b, backdoor_lab evaluate $c"
[ -n "$a" ] && [ "$a" = "$b" ] && [ "$a" = "$c" ] || { echo "accuracies differ"; exit 1; }
# the same file as another architecture: refused, naming the file and the architecture
out=$("$lab" evaluate --model "$w/net.safetensors" --arch mnist_cnn_bn --data "$data" 2>&1) && { echo "loaded as mnist_cnn_bn"; exit 1; }
grep -qF "$w/net.safetensors: the safetensors tensors do not fit architecture 'mnist_cnn_bn'" <<<"$out" || { echo "unclear error: $out"; exit 1; }
echo "weights round trip OK"
