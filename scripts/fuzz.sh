#!/usr/bin/env bash
# Build the libFuzzer targets with clang (AddressSanitizer + UndefinedBehaviorSanitizer)
# and run each for a bounded time from the seed corpus in fuzz/corpus.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]      (default 60)
#
# A crash, leak, timeout or allocation over the limits below fails the run; the
# input is saved in build-fuzz/ (crash-*, leak-*, oom-*, timeout-*). Fix the bug and
# copy the input to fuzz/regressions/<target>/, which tests/test_fuzz_inputs replays.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
targets=${FUZZ_TARGETS:-idx checkpoint model safetensors}  # a subset: FUZZ_TARGETS="model" scripts/fuzz.sh 60
out=build-fuzz
mkdir -p "$out"
flags=(-std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -Iinclude -I/usr/include/eigen3 -I/usr/include/stb)  # nlohmann/json.hpp (safetensors) is in /usr/include
for target in $targets; do
  clang++ "${flags[@]}" "fuzz/fuzz_$target.cpp" -o "$out/fuzz_$target" -lz
done
for target in $targets; do
  work="$out/corpus_$target"
  mkdir -p "$work"
  echo "== fuzz_$target for $secs s"
  rc=0
  (cd "$out" && ./"fuzz_$target" -max_total_time="$secs" -rss_limit_mb=2048 -malloc_limit_mb=512 -timeout=10 \
      -print_final_stats=1 "corpus_$target" "../fuzz/corpus/$target") > "$out/fuzz_$target.log" 2>&1 || rc=$?
  grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+==ERROR|SUMMARY)" "$out/fuzz_$target.log" || true
  [ "$rc" -eq 0 ] || { echo "fuzz_$target failed (exit $rc); see $out/fuzz_$target.log"; tail -30 "$out/fuzz_$target.log"; exit 1; }
done
echo "fuzzing finished without findings"
