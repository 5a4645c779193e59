#!/bin/sh
# fuzz/run.sh - run the session fuzzer for SECONDS (0: no time limit, e.g. with -runs=N) with the
# dictionary, on a scratch copy of fuzz/corpus (so the committed seeds stay small), at nice 19.
# Prints executions, exec/s and the final cov:/ft: figures; exits non-zero on a crash, leak or
# timeout, whose reproducer is left in fuzz/crashes/.
# Usage: fuzz/run.sh SECONDS [libFuzzer flags...]   e.g. fuzz/run.sh 60   fuzz/run.sh 0 -runs=10000000
# Env: FUZZ_WORK=dir (scratch dir, default a new mktemp -d; kept), FUZZ_KEEP=1 keeps the default
# one too, FUZZ_NO_BUILD=1 skips the rebuild, EXTRA_CFLAGS is passed to fuzz/build.sh.
set -u
here=$(cd "$(dirname "$0")" && pwd)
secs=${1:?usage: fuzz/run.sh SECONDS [libFuzzer flags...]}
shift
# Rebuild every time (a few seconds) so a stale binary never fuzzes old sources.
[ "${FUZZ_NO_BUILD:-}" = 1 ] && [ -x "$here/odmrd_fuzz" ] || "$here/build.sh" || exit 2
work=${FUZZ_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/odmrd-fuzz-run.XXXXXX")}
mkdir -p "$work/corpus" "$here/crashes"
cp "$here"/corpus/* "$work/corpus/"
log="$work/fuzz.log"
echo "fuzz/run.sh: ${secs}s, work dir $work, log $log"
nice -n 19 "$here/odmrd_fuzz" "$work/corpus" \
	-dict="$here/odmrd.dict" -max_len=16384 -max_total_time="$secs" -timeout=10 \
	-print_final_stats=1 -error_exitcode=77 -timeout_exitcode=78 \
	-artifact_prefix="$here/crashes/" "$@" >"$log" 2>&1
rc=$?
# The last status line ("#N DONE cov: X ft: Y ...", or the last pulse) and the final stats.
last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
cov=$(printf '%s\n' "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
ft=$(printf '%s\n' "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
corp=$(printf '%s\n' "$last" | sed -n 's/.* corp: \([^ ]*\).*/\1/p')
echo "executions: ${execs:-?}"
echo "exec/s:     ${eps:-?}"
echo "cov:        ${cov:-?}"
echo "ft:         ${ft:-?}"
echo "corpus:     ${corp:-?} (units/size) in $work/corpus"
echo "last line:  $last"
if [ "$rc" -ne 0 ]; then
	echo "FAILED (exit $rc): see $log; reproducer(s):"
	grep -E 'Test unit written to|invariant failed|ERROR: ' "$log" | head -n 5
	exit 1
fi
[ "${FUZZ_KEEP:-}" = 1 ] || [ -n "${FUZZ_WORK:-}" ] || rm -rf "$work"
exit 0
