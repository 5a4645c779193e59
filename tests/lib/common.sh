# shellcheck shell=bash
# tests/lib/common.sh - shared helpers for odmrd's shell test suites (tests/t-*.sh).
#
# Why: every suite needs the same scaffolding - a private work directory, pass/fail counters with
# names, a private sasldb and customer map, an odmrd.conf whose log goes to a file the test can
# read, and odmrd started "the way inetd does" (tests/lib/inetd1.py: socket on fd 0 and 1) - and
# must never leave a process behind. Source it at the top of a suite:
#     . "$(dirname "$0")/lib/common.sh"
# then call t_summary at the end (prints "N passed, N failed", exits non-zero on failure).
#
# Variables: TOP (repo root), LIB, SUITE, WORK (tests/work/SUITE, emptied at start), ODMRD,
# ODMRD_MAP, PY. After start_odmrd: PORT, INETD_PID, INETD_LOG, ODMRD_STDERR.
# ODMRD / ODMRD_MAP (environment) override the binaries under test.
# ODMRD_WRAPPER (environment, optional) prefixes odmrd, e.g. "valgrind -q --error-exitcode=99".
# WORK is kept after the run for inspection (tests/work/ is in .gitignore).

set -u

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
LIB=$TOP/tests/lib
SUITE=$(basename "$0" .sh)
WORK=$TOP/tests/work/$SUITE
ODMRD=${ODMRD:-$TOP/odmrd}
ODMRD_MAP=${ODMRD_MAP:-$TOP/odmrd-map}
PY=${PY:-python3}
T_PASSED=0
T_FAILED=0
T_XFAIL=0
T_BG_PIDS=()
T_INETD_LOGS=()

# Two runs of one suite in a shared tree would share WORK: the second waits (bounded) for the first.
mkdir -p "$TOP/tests/work"
exec {T_LOCK_FD}>"$TOP/tests/work/.$SUITE.common.lock"
if ! flock -w "${T_LOCK_WAIT:-600}" "$T_LOCK_FD"; then
	echo "$SUITE: another run holds tests/work/.$SUITE.common.lock; giving up"
	echo "0 passed, 1 failed"
	exit 1
fi
rm -rf "$WORK"
mkdir -p "$WORK"
chmod 755 "$WORK"

# fetchmail exits ("Cannot find my own host in hosts database to qualify it!") when the host's
# own name does not resolve, as in some containers. Then T_FETCHMAIL runs it in a private mount
# namespace whose /etc/hosts adds that name (the host's /etc is never changed). Use
# "${T_FETCHMAIL[@]}" where the command would be fetchmail; the pid stays fetchmail's.
T_FETCHMAIL=(fetchmail)
if ! getent hosts "$(hostname)" >/dev/null 2>&1; then
	{ cat /etc/hosts; printf '127.0.1.1 %s\n' "$(hostname)"; } >"$WORK/.hosts"
	# shellcheck disable=SC2016 # expanded by the inner sh
	T_FETCHMAIL=(unshare -m sh -c 'mount --bind "$0" /etc/hosts && exec fetchmail "$@"' "$WORK/.hosts")
fi

# --- results -----------------------------------------------------------------------------------

# ok NAME: record a passing case.
ok() {
	T_PASSED=$((T_PASSED + 1))
	printf 'ok %d - %s\n' $((T_PASSED + T_FAILED)) "$1"
}

# fail NAME [DETAIL...]: record a failing case with what was seen.
fail() {
	T_FAILED=$((T_FAILED + 1))
	printf 'FAIL %d - %s\n' $((T_PASSED + T_FAILED)) "$1"
	shift
	[ $# -gt 0 ] && printf '    %s\n' "$@"
	return 0
}

# check NAME COMMAND...: pass if COMMAND exits 0.
check() {
	local name=$1
	shift
	if "$@"; then ok "$name"; else fail "$name" "command failed: $*"; fi
}

# expect_eq NAME GOT WANT
expect_eq() {
	if [ "$2" = "$3" ]; then ok "$1"; else fail "$1" "got:  '$2'" "want: '$3'"; fi
}

# expect_match NAME STRING ERE
expect_match() {
	if printf '%s\n' "$2" | grep -Eq -- "$3"; then ok "$1"; else fail "$1" "got:  '$2'" "want: /$3/"; fi
}

# expect_eq_bug BUG NAME GOT WANT: like expect_eq for a case that fails today because of a bug
# already reported in the C code (BUG: a short tag). A mismatch prints "XFAIL" and is counted
# neither as passed nor as failed (STRICT=1 counts it as failed); a match passes and asks for the
# marker to be removed.
expect_eq_bug() {
	local bug=$1 name=$2
	if [ "$3" = "$4" ]; then
		ok "$name (known bug '$bug' is fixed: turn this back into expect_eq)"
	elif [ "${STRICT:-0}" != 0 ]; then
		fail "$name [known bug: $bug]" "got:  '$3'" "want: '$4'"
	else
		T_XFAIL=$((T_XFAIL + 1))
		printf 'XFAIL - %s [known bug: %s]\n    got:  %s\n    want: %s\n' "$name" "$bug" "'$3'" "'$4'"
	fi
}

# t_summary: the suite's last line, and its exit status.
t_summary() {
	[ "$T_XFAIL" -gt 0 ] && echo "$T_XFAIL known-bug case(s) XFAIL, not counted (STRICT=1 counts them as failed)"
	echo "$T_PASSED passed, $T_FAILED failed"
	if [ "$T_FAILED" -ne 0 ] || [ "$T_PASSED" -eq 0 ]; then
		T_STATUS=1
	else
		T_STATUS=0
	fi
	exit "$T_STATUS"
}

# --- processes ---------------------------------------------------------------------------------

# Descendants of PID, deepest last (by parent id only, never by name).
t_descendants() {
	local p
	for p in $(pgrep -P "$1" 2>/dev/null); do
		echo "$p"
		t_descendants "$p"
	done
}

# kill_tree PID: SIGTERM PID and its descendants, then SIGKILL what is left after ~2 s.
kill_tree() {
	local pids
	pids="$1 $(t_descendants "$1" | tr '\n' ' ')"
	# shellcheck disable=SC2086
	kill -TERM $pids 2>/dev/null
	for _ in $(seq 20); do
		# shellcheck disable=SC2086
		kill -0 $pids 2>/dev/null || break
		sleep 0.1
	done
	# shellcheck disable=SC2086
	kill -KILL $pids 2>/dev/null
	wait "$1" 2>/dev/null
	return 0
}

# spawn COMMAND...: start COMMAND in the background, remembered for the exit trap; sets BG_PID.
spawn() {
	"$@" &
	BG_PID=$!
	T_BG_PIDS+=("$BG_PID")
}

t_cleanup() {
	local rc=$? p
	for p in "${T_BG_PIDS[@]}"; do
		kill_tree "$p"
	done
	exit "$rc"
}
trap t_cleanup EXIT
trap 'exit 130' INT TERM

# wait_for SECONDS COMMAND...: poll COMMAND every 0.05 s until it succeeds; 1 on timeout.
wait_for() {
	local end=$((SECONDS + $1))
	shift
	while ! "$@"; do
		[ "$SECONDS" -ge "$end" ] && return 1
		sleep 0.05
	done
	return 0
}

# --- SASL, map, config -------------------------------------------------------------------------

# mk_sasldb DB REALM USER PASSWORD [USER PASSWORD...]: a private sasldb (saslpasswd2 -f -u -c -p).
mk_sasldb() {
	local db=$1 realm=$2
	shift 2
	while [ $# -ge 2 ]; do
		printf '%s' "$2" | timeout 20 saslpasswd2 -f "$db" -u "$realm" -p -c "$1" || return 1
		shift 2
	done
	chmod 600 "$db"
}

# mk_map SRC LINE...: write the map source (one "user domain[, domain]" per argument) and build
# SRC.db with ./odmrd-map: mode 0640, group $ODMRD_MAP_GROUP (nogroup: odmrd runs as root or
# nobody in the suites). -f /dev/null: never the host's /etc/odmrd/odmrd.conf.
ODMRD_MAP_GROUP=${ODMRD_MAP_GROUP:-nogroup}
mk_map() {
	local src=$1
	shift
	printf '%s\n' "$@" >"$src"
	timeout 20 "$ODMRD_MAP" -f /dev/null -g "$ODMRD_MAP_GROUP" "$src"
}

# t_customers: the suites' usual customers - $WORK/sasldb2 (realm provider.test: alice with
# password alice-secret, bob with bob-secret) and the map $WORK/customers.db (alice: a.example,
# b.example; bob: c.example); a failure is recorded as a failed case.
t_customers() {
	mk_sasldb "$WORK/sasldb2" provider.test alice alice-secret bob bob-secret ||
		fail "saslpasswd2 could not build the sasldb"
	mk_map "$WORK/customers" 'alice a.example, b.example' 'bob c.example' ||
		fail "odmrd-map could not build the map"
}

# free_port: a loopback TCP port unused at this moment (a server binds it a moment later).
free_port() {
	"$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# t_fake_mta: $WORK/bin/postqueue and $WORK/bin/sendmail that report an empty queue and record
# their argv in $WORK/bin/CMD.calls, so a granted ATRN never reaches the system's MTA (453).
t_fake_mta() {
	local c
	mkdir -p "$WORK/bin"
	for c in postqueue sendmail; do
		cat >"$WORK/bin/$c" <<-FAKE
			#!/bin/sh
			# fake $c for odmrd tests: an empty queue; records its arguments
			echo "\$*" >>"$WORK/bin/$c.calls"
			exit 0
		FAKE
		chmod 755 "$WORK/bin/$c"
	done
}

# write_conf FILE [KEY=VALUE...]: an odmrd.conf for the test. Defaults below; an argument KEY=VALUE
# replaces the default for KEY (or adds KEY), "-KEY" drops it, "RAW:text" appends a raw line.
# The MTA commands are the fakes of t_fake_mta (empty queue) unless overridden; run_dir is made.
# atrn_interval = 0: the suites run one customer's sessions back to back (odmrd's default, 60 s,
# would answer the second one 450); a case about the interval sets it, or drops it for the default.
write_conf() {
	local file=$1 kv key
	shift
	local -a keys=(hostname customer_map sasl_realm sasl_pwcheck_method sasl_auxprop_plugin
		sasl_sasldb_path sasl_mech_list log_file auth_fail_delay_ms error_delay_ms greet_pause_ms
		idle_timeout session_timeout max_auth_failures soft_error_limit hard_error_limit atrn_interval
		run_dir mta postqueue sendmail)
	local -A val=(
		[hostname]=provider.test
		[customer_map]=$WORK/customers.db
		[sasl_realm]=provider.test
		[sasl_pwcheck_method]=auxprop
		[sasl_auxprop_plugin]=sasldb
		[sasl_sasldb_path]=$WORK/sasldb2
		[sasl_mech_list]="SCRAM-SHA-256 CRAM-MD5"
		[log_file]=$WORK/odmrd.log
		[auth_fail_delay_ms]=20
		[error_delay_ms]=20
		[greet_pause_ms]=0
		[idle_timeout]=20
		[session_timeout]=60
		[max_auth_failures]=3
		[soft_error_limit]=3
		[hard_error_limit]=10
		[atrn_interval]=0
		[run_dir]=$WORK/run
		[mta]=postfix
		[postqueue]=$WORK/bin/postqueue
		[sendmail]=$WORK/bin/sendmail
	)
	[ -x "$WORK/bin/postqueue" ] || t_fake_mta
	# run_dir as odmrd checks it: ours, no "other" bits, group of mta_user (postfix), set-group-ID.
	mkdir -p "$WORK/run"
	chgrp postfix "$WORK/run" 2>/dev/null
	chmod 2750 "$WORK/run"
	local -a raw=()
	for kv in "$@"; do
		case $kv in
		RAW:*) raw+=("${kv#RAW:}") ;;
		-*) unset "val[${kv#-}]" ;;
		*=*)
			key=${kv%%=*}
			[ -n "${val[$key]+set}" ] || keys+=("$key")
			val[$key]=${kv#*=}
			;;
		esac
	done
	{
		echo "# odmrd.conf written by tests/lib/common.sh for $SUITE"
		for key in "${keys[@]}"; do
			[ -n "${val[$key]+set}" ] && printf '%s = %s\n' "$key" "${val[$key]}"
		done
		for kv in "${raw[@]}"; do
			printf '%s\n' "$kv"
		done
	} >"$file"
}

# --- odmrd under inetd1.py ---------------------------------------------------------------------

# start_odmrd CONF [INETD1-OPTION...]: listen on a free loopback port and run "odmrd -f CONF" per
# connection with the socket on fd 0/1. Sets PORT, INETD_PID, INETD_LOG, ODMRD_STDERR.
T_NINETD=0
start_odmrd() {
	local conf=$1
	shift
	T_NINETD=$((T_NINETD + 1))
	local pf=$WORK/inetd$T_NINETD.port
	INETD_LOG=$WORK/inetd$T_NINETD.log
	ODMRD_STDERR=$WORK/inetd$T_NINETD.stderr
	rm -f "$pf"
	# shellcheck disable=SC2086
	spawn "$PY" "$LIB/inetd1.py" --port-file "$pf" --log "$INETD_LOG" --stderr "$ODMRD_STDERR" "$@" \
		-- ${ODMRD_WRAPPER:-} "$ODMRD" -f "$conf" >/dev/null
	INETD_PID=$BG_PID
	T_INETD_LOGS+=("$INETD_LOG")
	if ! wait_for 10 test -s "$pf"; then
		fail "inetd1.py did not start for $conf"
		return 1
	fi
	PORT=$(cat "$pf")
}

# stop_odmrd [PID]: stop an inetd1.py (default: the last one) and the sessions it runs.
stop_odmrd() {
	kill_tree "${1:-$INETD_PID}"
}

# odmrc ARGS...: run tests/lib/odmrclient.py against $PORT (bounded); prints its tokens.
odmrc() {
	timeout 60 "$PY" "$LIB/odmrclient.py" --timeout "${ODMRC_TIMEOUT:-10}" --port "$PORT" "$@"
}

# sessions_done [INETD_LOG]: true when every connection accepted so far has exited.
sessions_done() {
	local log=${1:-$INETD_LOG} c e
	c=$(grep -c '^conn ' "$log" 2>/dev/null)
	e=$(grep -c '^exit ' "$log" 2>/dev/null)
	[ "${c:-0}" -eq "${e:-0}" ]
}

# wait_sessions [SECONDS]: wait until the sessions of every inetd1.py started so far have exited.
wait_sessions() {
	local l
	for l in "${T_INETD_LOGS[@]}"; do
		wait_for "${1:-15}" sessions_done "$l" || return 1
	done
}

# log_count ERE [LOG]: lines of odmrd's log matching ERE.
log_count() {
	grep -cE -- "$1" "${2:-$WORK/odmrd.log}" 2>/dev/null || true
}

# log_wait ERE [SECONDS] [LOG]: wait until odmrd's log has a line matching ERE.
log_wait() {
	wait_for "${2:-10}" grep -qE -- "$1" "${3:-$WORK/odmrd.log}"
}

# check_no_crashes: one case - no odmrd run by any inetd1.py died from a signal or exited 127.
check_no_crashes() {
	local bad
	wait_sessions 15
	bad=$(cat "${T_INETD_LOGS[@]}" 2>/dev/null | grep -E '^exit .* status=(-[0-9]+|127|99)$' || true)
	if [ -z "$bad" ]; then ok "no odmrd process crashed"; else fail "odmrd process crashed" "$bad"; fi
}
