#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# same_output.sh PROGRAM...: runs each program and passes when all of them succeed and print the same output
# (tune_invariance built for several -mtune values: the library's results must not depend on the tuning).
set -uo pipefail
[ $# -ge 2 ] || { echo "usage: same_output.sh PROGRAM PROGRAM..." >&2; exit 2; }
first=$("$1") || { echo "same_output.sh: $1 failed" >&2; exit 1; }
echo "$1:"; echo "$first"
status=0
for program in "${@:2}"; do
  out=$("$program") || { echo "same_output.sh: $program failed" >&2; exit 1; }
  echo "$program:"; echo "$out"
  if [ "$out" != "$first" ]; then
    echo "same_output.sh: $program printed other results than $1" >&2
    status=1
  fi
done
exit $status
