#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Every source file the repository tracks carries "SPDX-License-Identifier: MIT" in its first three lines
# (C++ headers and sources, CMake files, shell, Python, CMake templates).
#
#   scripts/check_spdx.sh         list the files without it; exit 1 if any (the CTest `spdx_headers`)
#   scripts/check_spdx.sh --fix   add the line to them: after a #! line if there is one, in the file's
#                                 comment syntax ("//" for C++, "#" otherwise)
# Not covered: Markdown, data, fuzz corpora, images, LICENSE and the notices (which are the licence texts).
set -euo pipefail
cd "$(dirname "$0")/.."
fix=0
case "${1:-}" in
  --fix) fix=1 ;;
  "") ;;
  *) echo "check_spdx.sh: unknown option '$1' (known: --fix)" >&2; exit 2 ;;
esac
tag="SPDX-License-Identifier: MIT"
missing=0
while IFS= read -r f; do
  [ -f "$f" ] || continue
  head -n 3 "$f" | grep -q "$tag" && continue
  if [ $fix -eq 0 ]; then
    echo "missing SPDX line: $f"
    missing=$((missing + 1))
    continue
  fi
  case "$f" in
    *.cpp|*.hpp|*.h) line="// $tag" ;;
    *) line="# $tag" ;;
  esac
  tmp=$(mktemp "$f.spdx.XXXXXX")
  if head -n 1 "$f" | grep -q '^#!'; then
    { head -n 1 "$f"; echo "$line"; tail -n +2 "$f"; } > "$tmp"
  else
    { echo "$line"; cat "$f"; } > "$tmp"
  fi
  chmod --reference="$f" "$tmp"
  mv "$tmp" "$f"
  echo "added: $f"
done < <(git ls-files -- '*.cpp' '*.hpp' '*.h' '*.sh' '*.py' '*.cmake' '*.in' 'CMakeLists.txt' '*/CMakeLists.txt' '.ci/run' | sort -u)
if [ $fix -eq 0 ] && [ $missing -gt 0 ]; then
  echo "check_spdx.sh: $missing file(s) without '$tag' in their first 3 lines (scripts/check_spdx.sh --fix adds it)"
  exit 1
fi
[ $fix -eq 1 ] || echo "check_spdx.sh: every source file carries '$tag'"
