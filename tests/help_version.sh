#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# help_version.sh PROGRAM...: each program answers --help and --version with exit 0 and some text on stdout,
# and writes no file (each runs in an empty scratch folder that must stay empty).
set -u
status=0
for program in "$@"; do
  for flag in --help --version; do
    scratch=$(mktemp -d)
    out=$(cd "$scratch" && "$program" "$flag" 2>/dev/null); rc=$?
    name=$(basename "$program")
    if [ $rc -ne 0 ]; then echo "FAIL: $name $flag exited $rc"; status=1
    elif [ -z "$out" ]; then echo "FAIL: $name $flag printed nothing on stdout"; status=1
    elif [ -n "$(ls -A "$scratch")" ]; then echo "FAIL: $name $flag wrote: $(ls -A "$scratch" | tr '\n' ' ')"; status=1
    else echo "ok: $name $flag: $(head -1 <<<"$out")"; fi
    rm -rf "$scratch"
  done
done
exit $status
