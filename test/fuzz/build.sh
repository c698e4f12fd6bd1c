#!/usr/bin/env bash
# build.sh - compile the libFuzzer targets of test/fuzz/ with clang.
#
#   test/fuzz/build.sh [TARGET...]     default: every fuzz_*.c in test/fuzz/
#
# Each target is linked from its own fuzz_*.c and the few pgchorus sources it
# exercises (no configure, no libuv), with -fsanitize=fuzzer,address,undefined,
# into test/fuzz/out/TARGET (the directory is ignored by git).
#
# Environment:
#   CC          a clang with libFuzzer (default: clang, else clang-14)
#   FUZZ_CFLAGS extra compiler flags, e.g. -Werror, -O2, or -DFUZZ_TRACE
#               (fuzz_scram prints the result of each step: handy to check
#               what a seed reaches)
#
# clang and libFuzzer on Debian/Ubuntu: apt-get install clang libclang-rt-14-dev
# (the runtime is part of the clang package on older releases).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
OUT=$HERE/out

die() {
	echo "build.sh: $*" >&2
	exit 1
}

if [ -z "${CC:-}" ]; then
	if command -v clang >/dev/null 2>&1; then
		CC=clang
	elif command -v clang-14 >/dev/null 2>&1; then
		CC=clang-14
	else
		die "clang not found (apt-get install clang libclang-rt-14-dev)"
	fi
fi

# The pgchorus sources each target needs, and its extra libraries.
target_sources() {
	case $1 in
	fuzz_startup) echo "src/proto/startup.c src/proto/codec.c src/proto/msg.c src/util/bufpool.c" ;;
	fuzz_codec) echo "src/proto/codec.c src/proto/msg.c src/util/bufpool.c src/server/restrack.c" ;;
	fuzz_scram) echo "src/proto/scram.c" ;;
	fuzz_hba) echo "src/config/hba.c" ;;
	*) return 1 ;;
	esac
}

target_libs() {
	case $1 in
	fuzz_scram) echo "-lcrypto -lpthread" ;;
	*) echo "" ;;
	esac
}

# The project's warnings, without -Werror: a warning only clang gives about a
# source must not stop the fuzzing (FUZZ_CFLAGS=-Werror makes them fatal).
# shellcheck disable=SC2054  # the commas belong to -fsanitize=
CFLAGS=(-std=gnu11 -g -O1 -fno-omit-frame-pointer
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
	-Wall -Wextra -Wshadow -Wno-unused-parameter -Wstrict-prototypes -Wmissing-prototypes
	-I"$TOP/include")
# shellcheck disable=SC2206  # word splitting of the user's flags is wanted
EXTRA=(${FUZZ_CFLAGS:-})

if [ $# -gt 0 ]; then
	targets=("$@")
else
	targets=()
	for f in "$HERE"/fuzz_*.c; do
		targets+=("$(basename "$f" .c)")
	done
fi

# A quick check that this clang can link libFuzzer at all.
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
	'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);' \
	'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }' \
	>"$probe/p.c"
"$CC" -fsanitize=fuzzer "$probe/p.c" -o "$probe/p" 2>"$probe/err" ||
	{
		cat "$probe/err" >&2
		die "$CC cannot link libFuzzer (apt-get install libclang-rt-14-dev)"
	}

mkdir -p "$OUT"
for t in "${targets[@]}"; do
	srcs=$(target_sources "$t") || die "unknown target $t"
	echo "build.sh: $t"
	# shellcheck disable=SC2046,SC2086  # the source and library lists are split on purpose
	(cd "$TOP" && "$CC" "${CFLAGS[@]}" "${EXTRA[@]}" -o "$OUT/$t" "$HERE/$t.c" $srcs $(target_libs "$t"))
done
