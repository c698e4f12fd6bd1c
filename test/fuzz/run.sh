#!/usr/bin/env bash
# run.sh - build the fuzz targets and run each of them for a while.
#
#   test/fuzz/run.sh [SECONDS [TARGET...]]
#
# SECONDS (default 60) is the total time, split evenly across the targets
# (every fuzz_*.c, or the TARGETs named), which run one after the other.
# Each target starts from its seeds in test/fuzz/corpus/TARGET plus what
# earlier runs found (test/fuzz/out/corpus/TARGET, which also receives the
# new inputs: the seeds in git are never modified), with its dictionary
# test/fuzz/dict/TARGET.dict if there is one.
#
# Exit status 1 if any target crashed, leaked, timed out or broke an
# invariant: the input is saved as test/fuzz/out/artifacts/TARGET-crash-...
# and the report (with the stack) is in test/fuzz/out/TARGET.log, whose last
# lines are printed.  Reproduce with:  test/fuzz/out/TARGET INPUT_FILE
#
# Environment:
#   FUZZ_ARGS   extra libFuzzer flags (e.g. "-max_len=65536" or "-jobs=2")
#   SKIP_BUILD=1  use the binaries in test/fuzz/out as they are
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=$HERE/out
TOTAL=${1:-60}
shift || true

case $TOTAL in '' | *[!0-9]*) echo "run.sh: SECONDS must be a number" >&2; exit 2 ;; esac

if [ $# -gt 0 ]; then
	targets=("$@")
else
	targets=()
	for f in "$HERE"/fuzz_*.c; do
		targets+=("$(basename "$f" .c)")
	done
fi

if [ "${SKIP_BUILD:-0}" != 1 ]; then
	"$HERE/build.sh" "${targets[@]}" || exit 1
fi

per=$((TOTAL / ${#targets[@]}))
[ "$per" -ge 1 ] || per=1
mkdir -p "$OUT/artifacts"
failed=0
# shellcheck disable=SC2206  # word splitting of the user's flags is wanted
extra=(${FUZZ_ARGS:-})

for t in "${targets[@]}"; do
	bin=$OUT/$t
	log=$OUT/$t.log
	work=$OUT/corpus/$t
	seeds=$HERE/corpus/$t
	dict=()
	[ -x "$bin" ] || { echo "not ok - $t: no binary $bin"; failed=1; continue; }
	mkdir -p "$work" "$seeds"
	[ -f "$HERE/dict/$t.dict" ] && dict=(-dict="$HERE/dict/$t.dict")
	echo "# $t: ${per}s"
	# -timeout: one input may take at most 10 s; -rss_limit_mb: no input may
	# make the target use more than 2 GB (a length taken on trust would).
	"$bin" -max_total_time="$per" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$OUT/artifacts/$t-" "${dict[@]}" "${extra[@]}" \
		"$work" "$seeds" >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	cov=$(grep -E '^#[0-9]+' "$log" | tail -n 1 | grep -oE 'cov: [0-9]+ ft: [0-9]+' || true)
	if [ "$rc" -eq 0 ]; then
		echo "ok - $t: ${per}s, ${execs:-?} executions, $cov, no crash"
	else
		failed=1
		echo "not ok - $t: exit status $rc after ${execs:-?} executions (log: $log)"
		grep -E -A 40 '==[0-9]+==ERROR|runtime error:|invariant broken|ERROR: libFuzzer' "$log" |
			head -n 60 | sed 's/^/#   /'
		grep -E 'Test unit written to' "$log" | sed 's/^/#   /'
	fi
done
exit "$failed"
