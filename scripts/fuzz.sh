#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Build the libFuzzer targets with clang (AddressSanitizer + UndefinedBehaviorSanitizer)
# and run each for a bounded time from the seed corpus in fuzz/corpus, one target per core at a time.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]      (default 60)
#
# A crash, leak, timeout or allocation over the limits below fails the run; the
# input is saved in build-fuzz/ (crash-*, leak-*, oom-*, timeout-*). Fix the bug and
# copy the input to fuzz/regressions/<target>/, which tests/test_fuzz_inputs replays.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
targets=${FUZZ_TARGETS:-idx checkpoint model safetensors cifar10 model_file image}  # a subset: FUZZ_TARGETS="model" scripts/fuzz.sh 60
out=build-fuzz
mkdir -p "$out"
flags=(-std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -fsanitize-ignorelist=scripts/ubsan-ignorelist.txt -DEIGENCNN_STB_SHIFT_IGNORELIST  # one stb_image function's shift of 0
       -Iinclude -I/usr/include/eigen3 -I/usr/include/stb)  # nlohmann/json.hpp (safetensors) is in /usr/include
jobs=$(nproc)  # targets are built and fuzzed this many at a time
# The targets' code (fuzz/targets.cpp) is compiled once and linked into each small entry point (fuzz/fuzz_*.cpp).
build_one() { clang++ "${flags[@]}" "fuzz/fuzz_$1.cpp" "$out/targets.o" -o "$out/fuzz_$1" -lz; }
run_one() {
  local target=$1 work="$out/corpus_$1" rc=0
  mkdir -p "$work"
  (cd "$out" && ./"fuzz_$target" -max_total_time="$secs" -rss_limit_mb=2048 -malloc_limit_mb=512 -timeout=10 \
      -print_final_stats=1 "corpus_$target" "../fuzz/corpus/$target") > "$out/fuzz_$target.log" 2>&1 || rc=$?
  echo "$rc" > "$out/fuzz_$target.rc"
}
# Run FUNCTION over the targets, $jobs at a time; fail if any did.
each_target() {
  local fn=$1 running=0 failed=0 pids=()
  for target in $targets; do
    "$fn" "$target" & pids+=($!)
    if [ "${#pids[@]}" -ge "$jobs" ]; then wait "${pids[0]}" || failed=1; pids=("${pids[@]:1}"); fi
  done
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
  return "$failed"
}
clang++ "${flags[@]}" -c fuzz/targets.cpp -o "$out/targets.o"
each_target build_one
echo "== fuzzing each of: $targets for $secs s, $jobs at a time"
each_target run_one
status=0
for target in $targets; do
  echo "== fuzz_$target"
  grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+==ERROR|SUMMARY)" "$out/fuzz_$target.log" || true
  rc=$(cat "$out/fuzz_$target.rc")
  if [ "$rc" -ne 0 ]; then echo "fuzz_$target failed (exit $rc); see $out/fuzz_$target.log"; tail -30 "$out/fuzz_$target.log"; status=1; fi
done
[ "$status" -eq 0 ] || exit 1
echo "fuzzing finished without findings"
