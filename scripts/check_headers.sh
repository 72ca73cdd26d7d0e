#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Every public header compiles on its own with strict warnings as errors, under g++ and clang++, with and
# without OpenMP, as C++17 and C++20 (third-party headers on -isystem).
#
#   scripts/check_headers.sh [--wide | --full] [COMPILER...]      (default compilers: clang++ g++, those installed)
#
# Default (the CTest `header_check`, label headers: about 4 minutes on two cores):
#   - each header alone, with the first compiler, C++17 and OpenMP: a header that misses an #include fails here
#     (clang first: with all eight combinations together, the default check took 450 s of CPU time, g++ first 640 s);
#   - one translation unit including every header, for compilers x {C++17, C++20} x {OpenMP, none} pairwise (below):
#     a warning that only one compiler, standard or the lack of OpenMP shows (an unknown #pragma omp) fails here.
# --wide: each header alone also with the last compiler, C++20 and no OpenMP (the opposite of every default
#   setting: a missing #include that another standard library mode or the lack of <omp.h> hides), and every
#   header together in all eight combinations (208 checks: 9 min 39 s on two idle cores, 2026-12-03).
# --full compiles each header alone in every combination (808 checks: 73 minutes of CPU time, so about 37 minutes
#   on two idle cores; the lab's headers take 15-25 s each).
set -uo pipefail
cd "$(dirname "$0")/.."
full=0 wide=0
[ "${1:-}" = "--full" ] && { full=1; shift; }
[ "${1:-}" = "--wide" ] && { wide=1; shift; }
compilers=()
for cxx in "${@:-clang++ g++}"; do
  for c in $cxx; do
    if command -v "$c" >/dev/null; then compilers+=("$c"); else echo "check_headers: $c not installed, skipped"; fi
  done
done
[ ${#compilers[@]} -gt 0 ] || { echo "check_headers: no compiler"; exit 1; }
strict="-Wall -Wextra -Wpedantic -Wshadow -Wconversion -Werror"
headers=$(cd include && find eigencnn -name '*.hpp' | sort)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# One check per line: COMPILER STD OPENMP_FLAG HEADER ("all": every header in one translation unit).
for h in $headers; do echo "${compilers[0]} c++17 -fopenmp $h"; done > "$work/jobs"
[ $wide -eq 1 ] && for h in $headers; do echo "${compilers[${#compilers[@]}-1]} c++20 -fno-openmp $h"; done >> "$work/jobs"
# Every header together: with --full, in every combination of compiler, standard and OpenMP; by default so that
# each pair of settings meets once (the first compiler with C++17 + OpenMP and C++20 without, the second with C++17
# without and C++20 with: compiler, standard and OpenMP indices summing to an even number; all four with a single
# compiler): a warning that needs two of them shows, at half the cost.
c=0
for cxx in "${compilers[@]}"; do
  s=0
  for std in c++17 c++20; do
    o=0
    for omp in -fopenmp -fno-openmp; do
      if [ $full -eq 1 ] || [ $wide -eq 1 ] || [ ${#compilers[@]} -eq 1 ] || [ $(( (c + s + o) % 2 )) -eq 0 ]; then
        echo "$cxx $std $omp all" >> "$work/jobs"
      fi
      [ $full -eq 1 ] && for h in $headers; do echo "$cxx $std $omp $h"; done >> "$work/jobs"
      o=$((o + 1))
    done
    s=$((s + 1))
  done
  c=$((c + 1))
done
for h in $headers; do echo "#include <$h>"; done > "$work/all.hpp"

check() {  # COMPILER STD OPENMP HEADER; prints FAIL lines, returns non-zero on failure
  local cxx=$1 std=$2 omp=$3 h=$4 src defs=""
  if [ "$h" = all ]; then src="#include \"$work/all.hpp\""; else src="#include <$h>"; fi
  # A header alone checks that it includes what it uses; the layers it registers need not be compiled for double
  # too (12-35% of the check of a header that registers layers), which the translation units of every header
  # together still do (--full: always).
  [ "$h" != all ] && [ "$full" -eq 0 ] && defs=-DEIGENCNN_REGISTER_FLOAT_ONLY
  if ! out=$(echo "$src" | "$cxx" -std="$std" "$omp" $defs -fsyntax-only -x c++ $strict \
             -Iinclude -isystem /usr/include/eigen3 -isystem /usr/include/stb - 2>&1); then
    echo "FAIL: $cxx -std=$std $omp $h"
    echo "$out" | grep -E "error" | head -5
    return 1
  fi
}
export -f check
export strict work full
sort -u "$work/jobs" > "$work/jobs.unique"
total=$(wc -l < "$work/jobs.unique")
xargs -P "$(nproc)" -L 1 bash -c 'check "$@"' _ < "$work/jobs.unique" > "$work/out"
failed=$(grep -c '^FAIL' "$work/out")
cat "$work/out"
echo "check_headers: $((total - failed)) of $total checks passed (${#compilers[@]} compiler(s), $(echo "$headers" | wc -l) headers)"
[ "$failed" -eq 0 ]
