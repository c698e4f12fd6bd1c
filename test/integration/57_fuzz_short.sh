#!/usr/bin/env bash
# 57_fuzz_short: a short libFuzzer run (10 s per target) of the startup
# packet parser, the codec and response tracker, SCRAM and the hba parser,
# so that a change that breaks one of their invariants fails the suite.
# The long runs are described in doc/fuzzing.md.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if ! command -v clang >/dev/null 2>&1; then
	echo "not ok - clang is installed (scripts/deps.sh installs it)"
	exit 1
fi
# SKIP_BUILD is the suite's switch for pgchorus itself; the fuzz targets are always built.
out=$(SKIP_BUILD=0 "$here/../fuzz/run.sh" 40 2>&1)
status=$?
printf '%s\n' "$out" | grep -E '^(ok|not ok) - ' || true
if [ "$status" -eq 0 ]; then
	echo "ok - every fuzz target ran without a crash, leak or broken invariant"
else
	printf '%s\n' "$out" | tail -20 | sed 's/^/# /'
	echo "not ok - fuzz run exited with status $status"
fi
