#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# doc_example_sync.sh DOC FILE: the code block of DOC between the markers
# "<!-- begin FILE-NAME -->" and "<!-- end ... -->" must be FILE, byte for byte,
# so that the guide shows code that compiles and is tested.
set -euo pipefail
doc=$1 file=$2
name=examples/$(basename "$file")
block=$(awk -v b="<!-- begin $name -->" '$0 == b {on = 1; next} /^<!-- end / {on = 0} on' "$doc" | sed '1d;$d')
if [ "$block" != "$(cat "$file")" ]; then
  echo "$doc: the code block for $name differs from $file:" >&2
  diff <(printf '%s\n' "$block") "$file" >&2 || true
  exit 1
fi
echo "$doc shows $file unchanged"
