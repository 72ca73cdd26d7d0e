#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# expect_fail.sh PATTERN COMMAND...: passes when COMMAND exits non-zero and its output contains PATTERN (fixed string).
pattern=$1; shift
out=$("$@" 2>&1); rc=$?
if [ $rc -eq 0 ]; then echo "expected a failure, got exit 0; output:"; echo "$out"; exit 1; fi
if ! grep -qF -- "$pattern" <<<"$out"; then echo "exit $rc, but the output lacks '$pattern':"; echo "$out"; exit 1; fi
echo "exit $rc with: $(grep -F -- "$pattern" <<<"$out" | head -1)"
