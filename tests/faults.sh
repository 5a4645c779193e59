#!/bin/bash
# tests/faults.sh - odmrd when things break: its data files, SASL, the MTA's commands, and kills
# in the middle of a delivery (`make check-faults`).
#
# Why: a provider's odmrd must fail *safe*. Before the turn, a broken customer map or password
# store must give a temporary answer (451/454) and a log line that names the cause, never a 250 and
# never a crash. After the turn, whatever dies - the MTA's delivery agent (Postfix's lmtp client,
# Sendmail's queue runner), the MTA itself, odmrd, the customer (a scripted one, or real fetchmail,
# or fetchmail's local SMTP server) - every message must end up delivered exactly once over the
# following ATRN sessions, or still be queued; and a SIGKILLed odmrd must not block the customer's
# next session (flock locks die with the process, stale sockets are unlinked and re-bound).
#
# Parts (FAULTS_PARTS, default "pre mta kill sm"):
#   pre   customer map missing/locked by a GDBM writer/empty/truncated/corrupt (+ seeded random
#         corruption), unreadable map and sasldb for a non-root odmrd (user = nobody), sasldb a
#         directory or corrupt, saslauthd down (PLAIN, under TLS), and what a broken sasldb does when fd 2
#         is the customer's socket (as under xinetd).
#   mta   postqueue missing or failing (451 before any 250, with mail queued), releasing
#         (postqueue -s and -i) failing (451), Postfix stopped (451).
#   kill  20 messages of 1 MB queued per case; kill at a known point (the customer stops on cue:
#         tests/lib/faults_customer.py), restart what was killed, run ATRN until the queue is
#         empty; prints queued / delivered in session 1 / delivered later / duplicates / lost.
#   sm    the same kill matrix against a private Sendmail (tests/lib/sendmail.sh) with its
#         daemon running: queue runner SIGKILLed, odmrd SIGKILLed, customer SIGKILLed inside
#         DATA, Sendmail stopped (daemon and every process of the instance), and the RFC 1047
#         window for odmrd and the queue runner. Judged by what the customer stored and what
#         stays queued, never by Sendmail's command lines.
# Real private Postfix (tests/lib/postfix.sh) and Sendmail, odmrd under inetd1.py, Python customer
# or real fetchmail. Needs root. FAULTS_LIMIT (seconds, default 600) bounds the whole suite.
# Prints one ok/FAIL line per case and "N passed, N failed".
. "$(dirname "$0")/lib/common.sh"
. "$LIB/postfix.sh"
. "$LIB/sendmail.sh"
. "$LIB/e2e.sh"
. "$LIB/tls.sh"

PARTS=" ${FAULTS_PARTS:-pre mta kill sm} "
# shellcheck disable=SC2034 # used by tests/lib/postfix.sh
PF_TIMEOUT=30
RUNDIR=$WORK/run
PW=alice-secret
A=alice:$PW
NMSG=${FAULTS_NMSG:-20}
STATS=()
MTA=postfix   # the MTA the kill cases run against: postfix, then sendmail
SMBASE=

faults_cleanup() {
	local rc=$? p
	for p in "${T_BG_PIDS[@]}"; do
		kill_tree "$p"
	done
	[ -n "${PF_CONF:-}" ] && pf_stop
	if [ -n "$SMBASE" ]; then
		sm_stop
		if [ "${KEEP:-0}" = 1 ]; then echo "# kept $SMBASE"; else rm -rf "$SMBASE"; fi
	fi
	exit "$rc"
}
trap faults_cleanup EXIT

spawn bash -c "sleep ${FAULTS_LIMIT:-600}; echo 'faults: FAULTS_LIMIT reached' >&2; kill -TERM $$"
WATCHDOG=$BG_PID

for tool in postfix postqueue saslpasswd2 fetchmail gcc; do
	command -v "$tool" >/dev/null || { fail "$tool is installed"; t_summary; }
done
[ "$(id -u)" = 0 ] || { fail "faults.sh runs as root (private Postfix, user = nobody)"; t_summary; }

mk_sasldb "$WORK/sasldb2" provider.test alice "$PW" || fail "saslpasswd2"
mk_map "$WORK/customers" 'alice a.example' || fail "odmrd-map"
cp "$WORK/customers.db" "$WORK/customers.good"

# tc NAME WANT STEP...: one odmrclient.py connection against $PORT.
tc() {
	local name=$1 want=$2
	shift 2
	expect_eq "$name" "$(odmrc "$@" 2>&1)" "$want"
}

# logged NAME ERE: odmrd's log (since e2e_log_mark) gets a line matching ERE. Matched against
# the log with "\x20" read as a space (odmrd may escape spaces in text from libraries).
log_new_plain() { e2e_log_new | sed 's/\\x20/ /g'; }
log_has_plain() { log_new_plain | grep -qE -- "$1"; }
logged() {
	if wait_for 5 log_has_plain "$2"; then ok "$1"; else fail "$1" "no log line /$2/; new lines:" "$(e2e_log_new | tail -5)"; fi
}

# ================================================================================================
# Part 1: before the turn
# ================================================================================================
if [[ $PARTS == *" pre "* ]]; then
	PRE_INETDS=()
	pre_start() { start_odmrd "$@" || t_summary; PRE_INETDS+=("$INETD_PID"); }
	write_conf "$WORK/pre.conf"
	pre_start "$WORK/pre.conf"

	e2e_log_mark
	tc "map intact: ATRN answered from the (empty, fake) queue -> 453" "220 250 235 453 221" \
		ehlo cram=$A atrn=a.example quit

	# --- the customer map -------------------------------------------------------------------
	mv "$WORK/customers.db" "$WORK/customers.away"
	e2e_log_mark
	tc "map missing -> 451" "220 250 235 451 221" ehlo cram=$A atrn=a.example quit
	logged "map missing: log names the file and ENOENT" \
		': 451 customer map [^ ]*/customers\.db: .*No such file or directory'
	mv "$WORK/customers.away" "$WORK/customers.db"

	# A GDBM writer holds the map (odmrd-map rewriting in place would): readers are refused.
	cat >"$WORK/gdbmhold.c" <<-'EOF'
		/* Hold a GDBM writer open on argv[1]; create argv[2] once it is held; wait for a signal. */
		#include <gdbm.h>
		#include <stdio.h>
		#include <unistd.h>
		int main(int argc, char **argv)
		{
			if (argc != 3)
				return 2;
			GDBM_FILE db = gdbm_open(argv[1], 0, GDBM_WRITER, 0, NULL);
			if (db == NULL) {
				fprintf(stderr, "gdbm_open: %s\n", gdbm_strerror(gdbm_errno));
				return 1;
			}
			FILE *f = fopen(argv[2], "w");
			if (f == NULL || fputs("held\n", f) < 0 || fclose(f) != 0)
				return 1;
			pause();
			return 0;
		}
	EOF
	if gcc -o "$WORK/gdbmhold" "$WORK/gdbmhold.c" -lgdbm 2>"$WORK/gdbmhold.err"; then
		spawn "$WORK/gdbmhold" "$WORK/customers.db" "$WORK/gdbmhold.held"
		HOLD=$BG_PID
		if wait_for 5 test -s "$WORK/gdbmhold.held"; then
			e2e_log_mark
			tc "map locked by a GDBM writer -> 451" "220 250 235 451 221" ehlo cram=$A atrn=a.example quit
			logged "map locked: log says so (gdbm: Can't be reader)" ": 451 customer map .*Can't be reader"
		else
			fail "gdbmhold could not open the map as writer" "$(cat "$WORK/gdbmhold.err")"
		fi
		kill_tree "$HOLD"
		tc "map released by the writer -> 453 again" "220 250 235 453 221" ehlo cram=$A atrn=a.example quit
	else
		fail "compile the GDBM writer (gcc -lgdbm)" "$(cat "$WORK/gdbmhold.err")"
	fi

	# corrupt CASE WANT-CODE LOG-ERE PYTHON-EXPR: write a damaged copy of the good map
	# (d = bytearray of it) and expect WANT-CODE with a log line matching LOG-ERE.
	corrupt() {
		"$PY" - "$WORK/customers.good" "$WORK/customers.db" "$4" <<-'EOF'
			import sys
			d = bytearray(open(sys.argv[1], "rb").read())
			exec(sys.argv[3])
			open(sys.argv[2], "wb").write(bytes(d))
		EOF
		e2e_log_mark
		tc "map $1 -> $2" "220 250 235 $2 221" ehlo cram=$A atrn=a.example quit
		[ -n "$3" ] && logged "map $1: log line /$3/" "$3"
	}
	corrupt "empty (0 bytes)" 451 ': 451 customer map .*Empty database' 'd = d[:0]'
	corrupt "truncated to 100 bytes" 451 ': 451 customer map .*Malformed database file header' 'd = d[:100]'
	corrupt "truncated to half" 451 ': 451 customer map .*(Malformed|Bad|Invalid|Unexpected|header)' \
		'd = d[:len(d) // 2]'
	corrupt "header garbage after the magic" 451 ': 451 customer map .*Bad magic number|: 451 customer map ' \
		'd[64:] = b"\xa5" * (len(d) - 64)'
	corrupt "directory block garbage" 451 ': 451 customer map .*(Invalid directory entry|Malformed)' \
		'd[4096:] = b"\xa5" * (len(d) - 4096)'
	corrupt "bucket block garbage" 451 ': 451 customer map .*Malformed bucket header' \
		'd[8192:8192 + 2048] = b"\xa5" * 2048'

	# Seeded random damage: any temporary answer is fine, a crash, a hang or a 250 is not.
	cp "$WORK/customers.good" "$WORK/customers.db"
	bad=""
	for seed in $(seq 1 20); do
		"$PY" - "$WORK/customers.good" "$WORK/customers.db" "$seed" <<-'EOF'
			import random, sys
			d = bytearray(open(sys.argv[1], "rb").read())
			r = random.Random(int(sys.argv[3]))
			for _ in range(r.choice((1, 4, 32, 256))):
			    d[r.randrange(len(d))] = r.randrange(256)
			if r.random() < 0.3:
			    d = d[:r.randrange(len(d))]
			open(sys.argv[2], "wb").write(bytes(d))
		EOF
		out=$(ODMRC_TIMEOUT=5 odmrc ehlo cram=$A atrn=a.example quit 2>&1)
		case $out in
		"220 250 235 "45[013]" 221") ;;
		*) bad="$bad seed=$seed:'$out'" ;;
		esac
	done
	wait_sessions 15
	crashed=$(grep -E '^exit .* status=(-[0-9]+|127)$' "$INETD_LOG" || true)
	expect_eq "20 seeded random corruptions of the map: always 450/451/453, never a crash" \
		"$bad$crashed" ""
	cp "$WORK/customers.good" "$WORK/customers.db"

	# --- SASL ---------------------------------------------------------------------------------
	e2e_log_mark
	write_conf "$WORK/sasldir.conf" sasl_sasldb_path="$WORK"
	pre_start "$WORK/sasldir.conf"
	tc "sasldb path is a directory -> 454" "220 250 454 221" ehlo cram=$A quit
	logged "sasldb a directory: log line from libsasl2" 'sasl: unable to open Berkeley db .*Is a directory'
	head -c 8192 /dev/zero | tr '\0' '\245' >"$WORK/sasldb.corrupt"
	write_conf "$WORK/saslbad.conf" sasl_sasldb_path="$WORK/sasldb.corrupt"
	pre_start "$WORK/saslbad.conf"
	e2e_log_mark
	tc "sasldb corrupt -> 454" "220 250 454 221" ehlo cram=$A quit
	logged "sasldb corrupt: log line from libsasl2" 'sasl: unable to open Berkeley db .*sasldb\.corrupt'
	write_conf "$WORK/saslnone.conf" sasl_sasldb_path="$WORK/no-such-sasldb"
	pre_start "$WORK/saslnone.conf"
	e2e_log_mark
	# libsasl2 alone would call a missing sasldb "no such user" (535); odmrd checks the path.
	tc "sasldb file missing -> 454, not 535" "220 250 454 221" ehlo cram=$A quit
	logged "sasldb missing: log names the path" '454 sasl_sasldb_path .*no-such-sasldb: No such file'

	e2e_log_mark
	# PLAIN is offered only under TLS: the session does STARTTLS first (a throwaway test CA).
	tls_mk_pki "$WORK/pki" >/dev/null || fail "test PKI (openssl)"
	write_conf "$WORK/saslauthd.conf" sasl_pwcheck_method=saslauthd sasl_saslauthd_path=/nonexistent/mux \
		sasl_mech_list="PLAIN CRAM-MD5" tls_cert_file="$WORK/pki/srv-ec.crt" \
		tls_key_file="$WORK/pki/srv-ec.key" tls_module="$TOP/odmrd-tls.so"
	pre_start "$WORK/saslauthd.conf"
	tc "saslauthd down (sasl_saslauthd_path missing): AUTH PLAIN (under TLS) -> 454" "220 250 220 250 454 221" \
		ehlo starttls ehlo plain=$A quit
	logged "saslauthd down: log says so" 'sasl: cannot connect to saslauthd server'
	tc "saslauthd down: CRAM-MD5 still works from the auxprop sasldb -> 235" "220 250 235 221" \
		ehlo cram=$A quit

	# Under xinetd fds 0, 1 and 2 are all the socket. Berkeley DB (inside libsasl2's sasldb
	# plugin) prints its errors on fd 2: they must not reach the customer.
	cat >"$WORK/odmrd-stderr-is-socket" <<-EOF
		#!/bin/sh
		# odmrd as xinetd starts it: stderr is the client's socket too.
		exec $ODMRD "\$@" 2>&1
	EOF
	chmod 755 "$WORK/odmrd-stderr-is-socket"
	ODMRD=$WORK/odmrd-stderr-is-socket pre_start "$WORK/sasldir.conf"
	TR=$WORK/stderr-socket.transcript
	out=$(odmrc --transcript "$TR" ehlo cram=$A quit 2>&1)
	expect_eq "fd 2 is the socket, sasldb a directory: customer sees only SMTP replies" \
		"$out" "220 250 454 221"
	grep -q 'BDB' "$TR" && sed -n 's/^S: \(BDB.*\)/    customer saw: \1/p' "$TR" | head -3

	# --- non-root odmrd (user = nobody): file modes matter ------------------------------------
	# (As root the modes below would be ignored, so these cases need the privilege drop.)
	cp "$WORK/sasldb2" "$WORK/sasldb2.nobody"
	chown nobody "$WORK/sasldb2.nobody"
	write_conf "$WORK/nobody.conf" user=nobody sasl_sasldb_path="$WORK/sasldb2.nobody"
	pre_start "$WORK/nobody.conf"
	tc "user = nobody, everything readable: AUTH -> 235" "220 250 235 221" ehlo cram=$A quit
	chmod 000 "$WORK/customers.db"
	e2e_log_mark
	tc "user = nobody, map mode 000 -> 451" "220 250 235 451 221" ehlo cram=$A atrn=a.example quit
	logged "map unreadable: log names the file and EACCES" ': 451 customer map .*Permission denied'
	chmod 644 "$WORK/customers.db"
	chown root "$WORK/sasldb2.nobody"
	chmod 000 "$WORK/sasldb2.nobody"
	e2e_log_mark
	tc "user = nobody, sasldb mode 000 -> 454" "220 250 454 221" ehlo cram=$A quit
	logged "sasldb unreadable: log names the path and EACCES" '454 sasl_sasldb_path .*Permission denied'
	wait_sessions 15
	crashed=$(cat "${T_INETD_LOGS[@]}" | grep -E '^exit .* status=(-[0-9]+|127|99)$' || true)
	expect_eq "pre-turn faults: no odmrd crashed" "$crashed" ""
	for p in "${PRE_INETDS[@]}"; do stop_odmrd "$p"; done
	T_INETD_LOGS=()
fi

[[ $PARTS == *" mta "* || $PARTS == *" kill "* || $PARTS == *" sm "* ]] || t_summary

# ================================================================================================
# Postfix, odmrd, customers
# ================================================================================================
if [[ $PARTS == *" mta "* || $PARTS == *" kill "* ]]; then
pf_setup "$WORK/pf" "$RUNDIR" a.example b.example || { fail "pf_setup"; t_summary; }
# A killed lmtp costs Postfix a pause: qmgr suspends the transport for transport_retry_time and,
# if the process died before finishing its first delivery, master throttles the odmrl service
# for service_throttle_time ("bad command startup -- throttling"); both default to 60 s. A session
# in progress then idles that long (mail is still "moving") and completes afterwards. Short
# values keep the suite fast; nothing else depends on them.
postconf -c "$PF_CONF" -e transport_retry_time=2s service_throttle_time=2s
pf_start || { fail "private Postfix starts"; t_summary; }

write_conf "$WORK/odmrd.conf" run_dir="$RUNDIR" postqueue=/usr/sbin/postqueue postfix_config_dir="$PF_CONF" \
	idle_timeout=60 session_timeout=600
start_odmrd "$WORK/odmrd.conf" || t_summary
MAIN_PORT=$PORT
MAIN_INETD_LOG=$INETD_LOG
fi

"$PY" - >"$WORK/body-1m" <<'EOF'
import hashlib, base64, sys
out = sys.stdout.buffer
n = i = 0
while n < 1024 * 1024:
    line = b"%06d " % i + base64.b64encode(hashlib.sha256(b"%d" % i).digest())[:60]
    if i % 101 == 0:
        line = b"." + line
    out.write(line + b"\n")
    n += len(line) + 2
    i += 1
EOF
for i in 1 2 3 4 5 6 7 8; do sed "s/^/$i/" "$WORK/body-1m"; done >"$WORK/body-8m"

# inject_n CASE N [BIG]: N messages, ids CASE-01.., to CASE-NN@a.example, manifest per case; all
# of 1 MB except number BIG (if given): 8 MB, "BIG" in its Subject - larger than everything the
# path can buffer (loopback TCP send buffers grow to 4 MB, plus socket buffers), so a customer
# that stops reading it holds Postfix inside DATA, before its final ".".
inject_n() {
	local c=$1 n=$2 big=${3:-0} i id
	E2E_MANIFEST=$WORK/manifest-$c
	mkdir -p "$E2E_MANIFEST"
	for i in $(seq -w 1 "$n"); do
		id=$c-$i
		if [ "$((10#$i))" = "$big" ]; then
			{ printf 'From: s@x.test\nTo: %s@a.example\nSubject: %s BIG\n\n' "$id" "$id"; cat "$WORK/body-8m"; }
		else
			{ printf 'From: s@x.test\nTo: %s@a.example\nSubject: %s\n\n' "$id" "$id"; cat "$WORK/body-1m"; }
		fi | e2e_inject mta_send "$id" s@x.test "$id@a.example" || return 1
	done
}

# --- the MTA under test ($MTA): what the kill cases need from it ---------------------------------
# mta_send FROM RCPT... < message: queue a message. Sendmail: queue only (-odq), so nothing is
# tried before an ATRN asks for it.
mta_send() {
	if [ "$MTA" = sendmail ]; then
		timeout 30 "$SM_SENDMAIL" -C "$SM_CF" -odq -oi -f "$1" -- "${@:2}"
	else
		pf_send "$@"
	fi
}
# mta_wait_held N: exactly N messages held, none in delivery.
mta_wait_held() {
	if [ "$MTA" = sendmail ]; then sm_wait_queued "$1" 60; else pf_wait_queued "$1" deferred; fi
}
# mta_queue_dump: the first entries of the queue, for a failure message.
mta_queue_dump() {
	if [ "$MTA" = sendmail ]; then sm_queue_listing | head -8; else pf_queue_json | head -3; fi
}
# queued_a: recipients queued for a.example.
queued_a() {
	if [ "$MTA" = sendmail ]; then sm_count_for_domain a.example; else pf_count_for_domain a.example; fi
}
# settle_all: wait (bounded) until nothing is being delivered.
settle_all() {
	if [ "$MTA" = sendmail ]; then sm_settle; else pf_settle; fi
}
# mta_leftovers: what a finished session must not leave (e2e_leftovers, and for Sendmail: any
# process of the instance but its daemon is a leftover queue runner).
mta_leftovers() {
	if [ "$MTA" = sendmail ]; then
		e2e_leftovers "$RUNDIR" '^faults: sendmail runners are found by sm_runners$'
		wait_for 10 sm_no_runner || echo "sendmail still running: $(sm_runners | tr '\n' ' ')"
	else
		e2e_leftovers "$RUNDIR" "^[^ ]*postqueue -c $PF_CONF"
	fi
	return 0
}

# Sendmail's daemon (-bd, no queue interval: the only queue runs are odmrd's, so nothing else
# delivers at an unknown moment): its pid, start, and the instance's other processes.
sm_daemon_pid() { head -1 "$SM_WORK/sendmail.pid" 2>/dev/null; }
sm_daemon_start() {
	rm -f "$SM_WORK/sendmail.pid"
	"$SM_SENDMAIL" -C "$SM_CF" -bd </dev/null >/dev/null 2>&1 || return 1
	wait_for 10 sh -c "p=\$(head -1 '$SM_WORK/sendmail.pid' 2>/dev/null) && [ -n \"\$p\" ] && kill -0 \$p"
}
# sm_runners: processes of the instance other than the daemon (queue runs, probes).
sm_runners() { sm_pids | grep -vx -- "$(sm_daemon_pid)"; }
sm_no_runner() { [ -z "$(sm_runners)" ]; }
# sm_settle: no runner and no locked queue file, twice in a row.
sm_settle() {
	local i same=0
	for ((i = 0; i < 150; i++)); do
		if sm_no_runner && sm_queued_total >/dev/null 2>&1; then
			same=$((same + 1))
			[ "$same" -ge 2 ] && return 0
		else
			same=0
		fi
		sleep 0.2
	done
	echo "sm_settle: still delivering: $(sm_runners | tr '\n' ' ')" >&2
	return 1
}

# Postfix: moving = messages not (yet) in the deferred queue.
moving() { pf__jq 'print(sum(1 for m in msgs if m["queue_name"] != "deferred"))'; }
# pf_settle: every queued message deferred, three readings in a row (postqueue -j may miss a
# message that moves between queues while it lists).
pf_settle() {
	local i same=0 prev=x n m
	for ((i = 0; i < 150; i++)); do
		m=$(moving) || return 1
		n=$(queued_a)
		if [ "$m" = 0 ] && [ "$n" = "$prev" ]; then
			same=$((same + 1))
			[ "$same" -ge 2 ] && return 0
		else
			same=0
		fi
		prev=$([ "$m" = 0 ] && echo "$n" || echo x)
		sleep 0.2
	done
	echo "settle_all: still moving: $m" >&2
	return 1
}

# customer NAME [OPTION...]: the scripted customer (alice, a.example) against $MAIN_PORT, in the
# background; its output in $WORK/cust-NAME.out, its messages in $WORK/sink-NAME. Sets CUST_PID.
customer() {
	local name=$1
	shift
	rm -rf "$WORK/sink-$name" "$WORK/cust-$name".*
	spawn "$PY" "$LIB/faults_customer.py" --port "$MAIN_PORT" --user alice --password "$PW" \
		--domains a.example --outdir "$WORK/sink-$name" --log "$WORK/cust-$name.log" \
		--state-file "$WORK/cust-$name.state" --release-file "$WORK/cust-$name.release" \
		"$@" >"$WORK/cust-$name.out" 2>"$WORK/cust-$name.err"
	CUST_PID=$BG_PID
}
# customer_wait NAME [SECONDS]: wait for the customer to finish; prints its result line.
customer_wait() {
	wait_for "${2:-120}" sh -c "! kill -0 $CUST_PID 2>/dev/null" || kill_tree "$CUST_PID"
	wait "$CUST_PID" 2>/dev/null
	cat "$WORK/cust-$1.out" 2>/dev/null
}
# session NAME: one whole ATRN session with the scripted customer (no pause); prints its result.
session() {
	customer "$1"
	customer_wait "$1" 180
	wait_sessions 30
}

# odmrd_pid: the odmrd process of the newest connection of the main inetd1.py.
odmrd_pid() { sed -n 's/^conn [0-9]* pid=\([0-9]*\) .*/\1/p' "$MAIN_INETD_LOG" | tail -1; }
# lmtp_pids: the instance's lmtp processes (the odmrl transport).
lmtp_pids() {
	local p
	for p in $(pf_procs); do
		tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q '^lmtp ' && echo "$p"
	done
}

# count CASE SINKDIRS-SESSION1 SINKDIRS-LATER: "queued=N s1=N later=N dup=N lost=N" + id lists.
count() {
	"$PY" - "$LIB" "$WORK/manifest-$1" "$2" "$3" <<-'EOF'
		import collections, glob, os, re, sys
		sys.path.insert(0, sys.argv[1])
		from smtpsink import read_message
		ids = sorted(os.path.basename(p)[:-4] for p in glob.glob(os.path.join(sys.argv[2], "*.env")))
		def scan(dirs):
		    c = collections.Counter()
		    for d in filter(None, dirs.split(":")):
		        for p in glob.glob(os.path.join(d, "*.msg")):
		            m = re.search(rb"(?mi)^X-E2E-Id: *(\S+)\r?$", read_message(p)["data"].split(b"\r\n\r\n", 1)[0])
		            c[m.group(1).decode() if m else "?"] += 1
		    return c
		s1, later = scan(sys.argv[3]), scan(sys.argv[4])
		tot = s1 + later
		dup = sorted(i for i in tot if tot[i] > 1)
		lost = [i for i in ids if tot[i] == 0]
		print("queued=%d s1=%d later=%d dup=%d lost=%d" % (len(ids), len(s1), len([i for i in later if i not in s1]),
		      sum(tot[i] - 1 for i in dup), len(lost)))
		print("dup_ids=%s" % ",".join(dup))
		print("lost_ids=%s" % ",".join(lost))
		print("unknown=%d" % tot["?"])
	EOF
}

# ================================================================================================
# Part 2: the MTA's commands fail
# ================================================================================================
if [[ $PARTS == *" mta "* ]]; then
	inject_n mta 3 || fail "inject 3 messages"
	check "mta: 3 messages held" pf_wait_queued 3 deferred

	mkdir -p "$WORK/bin"
	for pq in /nonexistent/postqueue /bin/false; do
		tag=$(basename "$pq")
		write_conf "$WORK/pq-$tag.conf" run_dir="$RUNDIR" postqueue="$pq" postfix_config_dir="$PF_CONF"
		start_odmrd "$WORK/pq-$tag.conf" || t_summary
		e2e_log_mark
		out=$(ODMRC_TIMEOUT=20 odmrc ehlo cram=$A atrn=a.example quit 2>&1)
		expect_eq "postqueue = $pq, mail queued -> 451 (no 250)" "$out" "220 250 235 451 221"
		logged "postqueue = $pq: 451 logged with the command" ": 451 queue probe failed \\($pq\\)"
	done

	# postqueue -j works, releasing (postqueue -s, then -i per queue ID) fails: both run before
	# the 250, so the customer gets 451, nothing is sent and the mail stays queued.
	cat >"$WORK/bin/postqueue-norelease" <<-'EOF'
		#!/bin/sh
		# postqueue whose flush (-s) and release (-i) fail with EX_TEMPFAIL; -j is the real one.
		for a in "$@"; do case $a in -s|-i) echo "postqueue-norelease: refusing $a" >&2; exit 75 ;; esac; done
		exec /usr/sbin/postqueue "$@"
	EOF
	chmod 755 "$WORK/bin/postqueue-norelease"
	write_conf "$WORK/norelease.conf" run_dir="$RUNDIR" postqueue="$WORK/bin/postqueue-norelease" \
		postfix_config_dir="$PF_CONF"
	start_odmrd "$WORK/norelease.conf" || t_summary
	NORELEASE_PORT=$PORT
	e2e_log_mark
	MAIN_PORT_SAVED=$MAIN_PORT
	MAIN_PORT=$NORELEASE_PORT
	out=$(session norelease)
	MAIN_PORT=$MAIN_PORT_SAVED
	expect_eq "postqueue -s and -i fail -> 451, no 250" "$out" "atrn=451 stored=0 end=-"
	logged "postqueue -i failure logged" 'postqueue -i failed \(status 75\)'
	logged "postqueue -i failure: 451 logged with the reason" ': 451 cannot start the queue run'
	expect_eq "postqueue -s and -i fail: the 3 messages are still queued" "$(queued_a)" 3

	# Postfix stopped. As root, postqueue -j reads the queue directly when showq is down
	# ("Mail system is down -- accessing queue directly", exit 0), so the probe sees the mail;
	# postqueue -s and -i then fail with 69 ("Cannot flush mail queue - mail system is down").
	pf_stop
	e2e_log_mark
	out=$(session pfdown)
	expect_eq "Postfix stopped, mail in its queue -> 451, no 250" "$out" "atrn=451 stored=0 end=-"
	logged "Postfix stopped: the failing release is logged (status 69)" 'postqueue -i failed \(status 69\)'
	logged "Postfix stopped: 451 logged with the reason" ': 451 cannot start the queue run'
	pf_start || { fail "Postfix restarts"; t_summary; }
	check "mta: after the restart the 3 messages are held again" settle_all
	out=$(session mta-final)
	expect_eq "mta: then one ATRN delivers them" "$out" "atrn=250 stored=3 end=quit"
	if out=$(e2e_verify "$WORK/sink-mta-final" 'mta-*'); then
		ok "mta: each of the 3 exactly once, intact"
	else
		fail "mta: each of the 3 exactly once, intact" "$out"
	fi
	expect_eq "mta: nothing left queued" "$(queued_a)" 0
fi

# ================================================================================================
# Part 3: kills in the middle of a delivery
# ================================================================================================

# customer_fm NAME [FAULTS_CUSTOMER-OPTION...]: the customer as most providers see it - real
# fetchmail (alice, a.example) relaying into faults_customer.py --listen (its local SMTP server,
# messages in $WORK/sink-NAME). CUST_PID = fetchmail, LSINK_PID = its SMTP server.
customer_fm() {
	local name=$1 home=$WORK/fm-$1
	shift
	rm -rf "$WORK/sink-$name" "$WORK/cust-$name".* "$home"
	spawn "$PY" "$LIB/faults_customer.py" --listen --port-file "$WORK/cust-$name.port" \
		--outdir "$WORK/sink-$name" --log "$WORK/cust-$name.log" \
		--state-file "$WORK/cust-$name.state" --release-file "$WORK/cust-$name.release" \
		"$@" >/dev/null 2>"$WORK/cust-$name.err"
	LSINK_PID=$BG_PID
	wait_for 10 test -s "$WORK/cust-$name.port" || { echo "listen sink did not start" >"$WORK/cust-$name.out"; return 1; }
	mkdir -p "$home"
	chmod 700 "$home"
	cat >"$home/fetchmailrc" <<-EOF
		poll 127.0.0.1 protocol odmr service $MAIN_PORT timeout 60
		    user "alice" password "$PW" fetchdomains a.example
		    smtphost 127.0.0.1/$(cat "$WORK/cust-$name.port")
	EOF
	chmod 600 "$home/fetchmailrc"
	spawn env HOME="$home" FETCHMAILHOME="$home" "${T_FETCHMAIL[@]}" -f "$home/fetchmailrc" --nosyslog -v --pidfile "$home/fetchmail.pid" \
		</dev/null >"$home/out" 2>&1
	CUST_PID=$BG_PID
}

# kill_case CASE KIND PAUSE DESCRIPTION KILL-FUNCTION [EXPECT-DUP]
# NMSG messages queued (the 5th of 8 MB). KIND: script (faults_customer.py as the ODMR customer)
# or fetchmail (real fetchmail + faults_customer.py --listen). PAUSE: big (stop inside the 8 MB
# message's DATA, right after its header) or reply:N (stop after storing the Nth message, before
# its 250: the RFC 1047 window). KILL-FUNCTION does the damage and arranges the restart; the
# customer is released; then ATRN sessions (scripted customer, at most 3) until the queue is empty.
# Duplicates must be 0, or with EXPECT-DUP=window exactly 1: the message stored in the window.
kill_case() {
	local c=$1 kind=$2 pause=$3 what=$4 fn=$5 dupwant=${6:-} out n left later="" k res t0=$SECONDS
	local -a popt
	echo "# --- $c: $what"
	case $pause in
	big) popt=(--pause-in-data-match '(?m)^Subject: .*BIG') ;;
	reply:*) popt=(--pause-before-reply "${pause#reply:}") ;;
	esac
	e2e_log_mark
	inject_n "$c" "$NMSG" 5 || { fail "$c: inject $NMSG messages"; return; }
	mta_wait_held "$NMSG" >/dev/null 2>&1 || { fail "$c: $NMSG messages held" "$(mta_queue_dump)"; return; }
	echo "#   $NMSG messages queued in $((SECONDS - t0)) s"
	if [ "$kind" = fetchmail ]; then customer_fm "$c-1" "${popt[@]}"; else customer "$c-1" "${popt[@]}"; fi
	if ! wait_for 120 test -s "$WORK/cust-$c-1.state"; then
		fail "$c: customer reached its pause point ($pause)" "$(cat "$WORK/cust-$c-1.err")" "$(e2e_log_new | tail -5)"
		touch "$WORK/cust-$c-1.release"
		customer_wait "$c-1" 30 >/dev/null
		return
	fi
	ok "$c: customer stopped at '$(cat "$WORK/cust-$c-1.state")' (after $(find "$WORK/sink-$c-1" -name '*.msg' | wc -l) stored)"
	KILL_POST_RELEASE=:
	later=:$WORK/sink-$c-down  # a session the kill function ran while the MTA was down, if any
	"$fn" "$c"
	touch "$WORK/cust-$c-1.release"
	res=$(customer_wait "$c-1" 60)
	[ "$kind" = fetchmail ] && res="fetchmail: $(grep -v '^$' "$WORK/fm-$c-1/out" | tail -1 | head -c 100)"
	wait_sessions 30 || fail "$c: odmrd session 1 ended within 30 s"
	[ "$kind" = fetchmail ] && kill_tree "$LSINK_PID"
	$KILL_POST_RELEASE "$c"
	settle_all || fail "$c: queue settles after the failure"
	n=$(queued_a)
	echo "#   session 1: customer '$res'; odmrd: $(e2e_log_new | grep -o 'reversed peer=.*' | tail -1 | cut -d' ' -f2-)"
	echo "#   left queued after session 1: $n"
	for k in 2 3 4; do
		[ "$n" = 0 ] && break
		res=$(session "$c-$k")
		later="$later:$WORK/sink-$c-$k"
		settle_all
		n=$(queued_a)
		echo "#   session $k: customer '$res'; left queued: $n"
	done
	out=$(count "$c" "$WORK/sink-$c-1" "$later")
	local line=${out%%$'\n'*} dupids lostids
	dupids=$(sed -n 's/^dup_ids=//p' <<<"$out")
	lostids=$(sed -n 's/^lost_ids=//p' <<<"$out")
	echo "#   $c: $line${dupids:+ dup_ids=$dupids}${lostids:+ lost_ids=$lostids} ($((SECONDS - t0)) s)"
	STATS+=("$(printf '%-16s %-58s %s' "$c" "$what" "$line")")
	expect_eq "$c: nothing left queued after at most 3 more sessions" "$n" 0
	expect_match "$c: no message lost" "$line" ' lost=0$'
	if [ -z "$dupwant" ]; then
		expect_match "$c: no duplicate" "$line" ' dup=0 '
		if out=$(e2e_verify "$WORK/sink-$c-1$later" "$c-*"); then
			ok "$c: every message exactly once over the sessions, intact (${out%%$'\n'*})"
		else
			fail "$c: every message exactly once, intact" "$out"
		fi
	else
		# The duplicate must be the message the customer stored while paused (RFC 1047).
		local inwin
		inwin=$("$PY" - "$LIB" "$WORK/sink-$c-1" "${pause#reply:}" <<-'PYEOF'
			import os, re, sys
			sys.path.insert(0, sys.argv[1])
			from smtpsink import read_message
			p = os.path.join(sys.argv[2], "%06d.msg" % int(sys.argv[3]))
			m = re.search(rb"(?mi)^X-E2E-Id: *(\S+)\r?$", read_message(p)["data"]) if os.path.exists(p) else None
			print(m.group(1).decode() if m else "?")
		PYEOF
		)
		expect_eq "$c: exactly one duplicate: the message stored in the RFC 1047 window" \
			"$(sed 's/.* dup=/dup=/' <<<"$line")/$dupids" "dup=1 lost=0/$inwin"
	fi
	left=$(mta_leftovers)
	expect_eq "$c: no odmrd, MTA runner, socket or lock left after the last session" "$left" ""
}

# --- the kill functions: do the damage, arrange the restart ---------------------------------------
# k_agent: the MTA's delivery agent (Postfix's lmtp client, Sendmail's queue runner) dies.
k_agent() {
	local p what="Postfix lmtp"
	if [ "$MTA" = sendmail ]; then
		what="Sendmail queue runner"
		p=$(sm_runners | tr '\n' ' ')
	else
		p=$(lmtp_pids | tr '\n' ' ')
	fi
	if [ -n "$p" ]; then ok "$1: $what process(es) $p killed with SIGKILL"; else fail "$1: $what process found"; fi
	# shellcheck disable=SC2086
	kill -KILL $p 2>/dev/null
	# Nothing to restart: master starts a new lmtp on demand, the next ATRN a new queue run.
}
k_postfix() {
	pf_stop
	expect_eq "$1: Postfix is down" "$(pf_procs)" ""
	KILL_POST_RELEASE=k_postfix_restart
}
k_postfix_restart() {
	local out
	out=$(session "$1-down")
	expect_eq "$1: ATRN while Postfix is down -> 451" "$out" "atrn=451 stored=0 end=-"
	pf_start || fail "$1: Postfix restarts"
}
k_odmrd() {
	local p
	p=$(odmrd_pid)
	kill -KILL "$p"
	ok "$1: odmrd session process $p killed with SIGKILL"
	KILL_POST_RELEASE=k_odmrd_after
}
k_odmrd_after() {
	local st
	wait_sessions 30
	expect_match "$1: inetd1 saw odmrd die from signal 9" "$(tail -1 "$MAIN_INETD_LOG")" 'status=-9$'
	st=$(cd "$RUNDIR" && ls -A | sed 's/^\.user\..*/.user.*/' | sort | tr '\n' ' ')
	expect_eq "$1: the dead session left its socket and lock files (stale) behind" "$st" \
		".dom.a.example .user.* a.example "
	# The next sessions (kill_case runs them) must not be blocked by these: flocks die with the
	# process, the socket is unlinked and bound again. The session results check that.
}
k_customer() {
	{ kill -KILL "$CUST_PID" && wait "$CUST_PID"; } 2>/dev/null
	ok "$1: customer process $CUST_PID killed with SIGKILL"
}
k_sink() {
	{ kill -KILL "$LSINK_PID" && wait "$LSINK_PID"; } 2>/dev/null
	ok "$1: fetchmail's SMTP server (pid $LSINK_PID) killed with SIGKILL"
}

if [[ $PARTS == *" kill "* ]]; then
	postsuper -c "$PF_CONF" -d ALL >/dev/null 2>&1
	kill_case lmtp-kill script big "Postfix lmtp (odmrl) SIGKILLed inside DATA" k_agent
	kill_case postfix-stop script big "Postfix stopped inside DATA, restarted" k_postfix
	kill_case odmrd-kill script big "odmrd SIGKILLed inside DATA" k_odmrd
	kill_case cust-kill script big "scripted customer SIGKILLed inside DATA" k_customer
	kill_case fetchmail-kill fetchmail big "fetchmail SIGKILLed inside DATA" k_customer
	kill_case fmsink-kill fetchmail big "fetchmail's SMTP server SIGKILLed inside DATA" k_sink
	kill_case odmrd-1047 script reply:5 "odmrd SIGKILLed after customer stored msg 5, before 250" \
		k_odmrd window
	kill_case lmtp-1047 script reply:5 "lmtp SIGKILLed after customer stored msg 5, before 250" \
		k_agent window
fi

# ================================================================================================
# Part 4: the same kills against Sendmail
# ================================================================================================
k_smstop() {
	local d
	d=$(sm_daemon_pid)
	sm_stop
	expect_eq "$1: Sendmail is down: daemon $d and every process of the instance" "$(sm_pids)" ""
	KILL_POST_RELEASE=k_smstop_restart
}
k_smstop_restart() {
	local out
	# odmrd starts its own queue runs (no daemon involved): an ATRN now still delivers.
	out=$(session "$1-down")
	expect_match "$1: ATRN while Sendmail's daemon is down -> 250, mail delivered" "$out" \
		'^atrn=250 stored=[1-9][0-9]* end=quit$'
	sm_daemon_start || fail "$1: the Sendmail daemon restarts"
}

if [[ $PARTS == *" sm "* ]]; then
	# sendmail refuses maps and sockets below a group/world-writable directory (/tmp): the
	# instance lives in /var/cache/odmrd-test, as t-31's does.
	mkdir -p /var/cache/odmrd-test
	chmod 755 /var/cache/odmrd-test
	SMBASE=$(mktemp -d /var/cache/odmrd-test/faults.XXXXXX) && chmod 755 "$SMBASE" || { fail "mktemp"; t_summary; }
	if sm_setup "$SMBASE/sm" "$SMBASE/run" a.example >"$WORK/sm_setup.out" 2>&1; then
		ok "sm: private Sendmail instance $SM_WORK"
		MTA=sendmail
		RUNDIR=$SMBASE/run
		if sm_daemon_start; then
			ok "sm: its daemon runs (pid $(sm_daemon_pid), -bd on loopback)"
		else
			fail "sm: its daemon starts"
		fi
		write_conf "$WORK/sm.conf" mta=sendmail sendmail="$SM_SENDMAIL" sendmail_cf="$SM_CF" \
			run_dir="$RUNDIR" -postqueue idle_timeout=60 session_timeout=600
		start_odmrd "$WORK/sm.conf" || t_summary
		MAIN_PORT=$PORT
		MAIN_INETD_LOG=$INETD_LOG
		kill_case sm-runner-kill script big "Sendmail queue runner SIGKILLed inside DATA" k_agent
		kill_case sm-odmrd-kill script big "odmrd SIGKILLed inside DATA (Sendmail)" k_odmrd
		kill_case sm-cust-kill script big "scripted customer SIGKILLed inside DATA (Sendmail)" k_customer
		kill_case sm-stop script big "Sendmail stopped inside DATA, restarted" k_smstop
		kill_case sm-odmrd-1047 script reply:5 "odmrd SIGKILLed after customer stored msg 5 (Sendmail)" \
			k_odmrd window
		kill_case sm-runner-1047 script reply:5 "queue runner SIGKILLed after customer stored msg 5" \
			k_agent window
	else
		fail "sm_setup: private Sendmail instance" "$(tail -20 "$WORK/sm_setup.out")"
	fi
fi

echo "# kill cases (queued, delivered in session 1, delivered later, duplicates, lost):"
[ ${#STATS[@]} -gt 0 ] && printf '#   %s\n' "${STATS[@]}"
kill_tree "$WATCHDOG"
t_summary
