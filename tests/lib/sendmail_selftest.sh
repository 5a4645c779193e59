#!/bin/bash
# tests/lib/sendmail_selftest.sh -- check the private Sendmail harness
# (tests/lib/sendmail.sh) against tests/lib/fake_smtp_socket_server.py, and
# print the evidence behind the facts listed in sendmail.sh's header.
# Run as root.  KEEP=1 keeps the work directory for inspection.
set -u
# Check bodies are single-quoted on purpose: eval expands them when run.
# shellcheck disable=SC2016

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/lib/sendmail.sh
. "$here/sendmail.sh"

passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok - $*"; }
not_ok() { failed=$((failed + 1)); echo "FAIL - $*"; }
check() {
	local desc=$1
	shift
	if "$@"; then ok "$desc"; else not_ok "$desc"; fi
}
eq() { [[ $1 == "$2" ]] || { echo "#   got '$1', want '$2'"; return 1; }; }
info() { printf '# %s\n' "$@"; }

# Under /var/cache, not /tmp: sendmail rejects sockets and maps below a
# world-writable directory (see sm_safe_path).
mkdir -p /var/cache/odmrd-test
BASE=$(mktemp -d /var/cache/odmrd-test/selftest.XXXXXX)
chmod 0755 "$BASE"
RUNDIR=$BASE/run
FAKE_PID=

fake_start() { # OUTDIR DOMAIN... -- serve DOMAIN sockets until fake_stop
	local out=$1 i
	shift
	python3 "$here/fake_smtp_socket_server.py" "$RUNDIR" "$out" "$@" &
	FAKE_PID=$!
	for ((i = 0; i < 100; i++)); do
		[[ -e $out/ready ]] && return 0
		sleep 0.1
	done
	echo "# fake server did not start" >&2
	return 1
}
fake_stop() {
	[[ -n $FAKE_PID ]] || return 0
	kill "$FAKE_PID" 2>/dev/null
	wait "$FAKE_PID" 2>/dev/null
	FAKE_PID=
}
cleanup() {
	fake_stop
	sm_stop
	if [[ ${KEEP:-} == 1 ]]; then echo "# kept $BASE"; else rm -rf "$BASE"; fi
}
trap cleanup EXIT

msg() { printf 'Subject: %s\n\nbody of %s\n.leading dot\n' "$1" "$1"; }
send() { # SUBJECT RCPT...
	local s=$1
	shift
	msg "$s" | sm_send sender@sender.example "$@"
}
# Sorted recipients the fake server stored in OUTDIR, one per line.
delivered() { cat "$1"/*.msg 2>/dev/null | sed -n 's/^rcpt //p' | sort | paste -sd' '; }
# sm_queue_run DOMAIN, leaving its exit status in RC, elapsed ms in MS and
# its output (sendmail reports socket errors on stdout) in OUTPUT.
timed_run() {
	local t0=$EPOCHREALTIME
	sm_queue_run "$1" >"$BASE/run-output" 2>&1
	RC=$?
	OUTPUT=$(paste -sd' ' "$BASE/run-output")
	MS=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d", (b - a) * 1000 }')
}
# Connections that opened while another connection was still open.
overlaps() {
	awk '$3 == "open" { for (c in o) printf "%s opened while %s open\n", $2, c; o[$2] = 1 }
	     $3 == "close" { delete o[$2] }' "$1/events.log"
}

echo "# 1. set-up"
t0=$EPOCHREALTIME
check "sm_setup a.example b.example c.example" sm_setup "$BASE/work" "$RUNDIR" a.example b.example c.example
info "set-up took $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }') s"
check "socket directory is 0750" eq "$(stat -c %a "$RUNDIR")" 750
check "sm_setup refuses a RUNDIR under /tmp" \
	eval '! (sm_setup "$BASE/w2" /tmp/odmrd-selftest-run x.example) 2>/dev/null'
t0=$EPOCHREALTIME
"$SM_SENDMAIL" -C "$SM_CF" -bp >/dev/null
check "sendmail starts without the 60 s host name stall" \
	awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { exit !(b - a < 5) }'

echo "# 2. mail stays queued while no socket exists"
for i in 1 2 3 4 5; do send "a$i" "a$i@a.example"; done
send c1 c1@c.example
send c2 c2@c.example
send mixed-ac mix@a.example mix@c.example
check "8 envelopes queued" sm_wait_queued 8
check "6 recipients queued for a.example" eq "$(sm_count_for_domain a.example)" 6
check "3 recipients queued for c.example" eq "$(sm_count_for_domain c.example)" 3
check "0 recipients queued for b.example" eq "$(sm_count_for_domain b.example)" 0
info "probe with mail:  sendmail -C CF -bp -qR@c.example" && sm_queue_listing c.example | sed 's/^/#   /'
info "probe, empty:     sendmail -C CF -bp -qR@b.example" && sm_queue_listing b.example | sed 's/^/#   /'
timed_run a.example
info "-qf -qR@a.example without sockets: exit $RC, ${MS} ms, output: $OUTPUT"
check "a run without socket returns within 5 s" test "$MS" -lt 5000
check "exit 70 when a selected envelope meets a missing socket of another domain" eq "$RC" 70
check "a.example mail still queued after that run" eq "$(sm_count_for_domain a.example)" 6

echo "# 3. queue run for a.example with only a.example's socket"
OUT=$BASE/out-a
fake_start "$OUT" a.example
timed_run a.example
info "-qf -qR@a.example with socket: exit $RC, ${MS} ms, output: $OUTPUT"
check "exit 70 although all a.example mail went out (mixed envelope, no c.example socket)" eq "$RC" 70
check "a.example recipients delivered exactly once" eq "$(delivered "$OUT")" \
	"<a1@a.example> <a2@a.example> <a3@a.example> <a4@a.example> <a5@a.example> <mix@a.example>"
check "nothing queued for a.example" eq "$(sm_count_for_domain a.example)" 0
check "3 recipients still queued for c.example" eq "$(sm_count_for_domain c.example)" 3
check "mixed envelope's c.example recipient still queued" \
	eval 'sm_queue_listing c.example | grep -q "mix@c.example"'
check "leading dot of a body line survives dot-stuffing" eval 'grep -q "^\.leading dot" "$OUT"/0001.msg'
fake_stop
info "events seen by the a.example socket:" && sed 's/^/#   /' "$OUT/events.log"
check "one connection for the whole run" eq "$(grep -c ' open ' "$OUT/events.log")" 1
check "EHLO name is the instance's \$j" eval 'grep -q "c1 < EHLO mta.odmrd.test$" "$OUT/events.log"'
check "RSET before each later transaction on the connection" \
	eq "$(grep -c ' RSET$' "$OUT/events.log")" 5
check "QUIT at the end of the run" eval 'tail -n 2 "$OUT/events.log" | grep -q " QUIT$"'

echo "# 4. a.example and b.example sockets open at once"
send a6 a6@a.example
send b1 b1@b.example
send mixed-ab ab@a.example ab@b.example
send a7 a7@a.example
send b2 b2@b.example
send a89 a8@a.example a9@a.example
check "9 envelopes queued (3 c.example + 6 new)" sm_wait_queued 9
OUT=$BASE/out-ab
fake_start "$OUT" a.example b.example
timed_run a.example
info "-qf -qR@a.example: exit $RC, ${MS} ms"
check "exit 0 when no socket was missing" eq "$RC" 0
check "run for a.example delivered a.example mail and the mixed envelope's b.example recipient" \
	eq "$(delivered "$OUT")" "<a6@a.example> <a7@a.example> <a8@a.example> <a9@a.example> <ab@a.example> <ab@b.example>"
timed_run b.example
info "-qf -qR@b.example: exit $RC, ${MS} ms"
check "all a.example and b.example mail delivered exactly once" eq "$(delivered "$OUT")" \
	"<a6@a.example> <a7@a.example> <a8@a.example> <a9@a.example> <ab@a.example> <ab@b.example> <b1@b.example> <b2@b.example>"
check "two recipients of one domain go in one transaction" \
	eval 'grep -l "^rcpt <a8@a.example>" "$OUT"/*.msg | xargs grep -q "^rcpt <a9@a.example>"'
check "queue left with the 3 c.example envelopes only" sm_wait_queued 3 5
check "each message went to its own domain's socket" \
	eval '! grep -l "^domain a.example" "$OUT"/*.msg | xargs grep -q "^rcpt <[^@]*@b.example>" &&
	      ! grep -l "^domain b.example" "$OUT"/*.msg | xargs grep -q "^rcpt <[^@]*@a.example>"'
fake_stop
info "events seen by the a.example and b.example sockets (both runs):" && sed 's/^/#   /' "$OUT/events.log"
check "second RCPT and DATA are pipelined (sent before the previous reply)" \
	eval 'grep -q "+ RCPT To:<a9@a.example>" "$OUT/events.log" && grep -q "+ DATA$" "$OUT/events.log"'
overlap=$(overlaps "$OUT")
info "overlapping connections: ${overlap:-none}"
check "sendmail opened the second domain's socket while the first connection was open" \
	test -n "$overlap"

echo "# 5. sm_stop ends a queue run stuck on a silent socket"
python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen(4)
conns = []
while True:  # accept, never greet
    conns.append(s.accept()[0])
' "$RUNDIR/c.example" &
silent=$!
for ((i = 0; i < 50; i++)); do [[ -S $RUNDIR/c.example ]] && break; sleep 0.1; done
# Its shell reports the KILL on stderr; that is expected here.
sm_queue_run c.example 2>/dev/null &
for ((i = 0; i < 50; i++)); do [[ -n $(sm_pids) ]] && break; sleep 0.1; done
check "stuck queue run is found by sm_pids" test -n "$(sm_pids)"
info "probe during that run:" && sm_queue_listing c.example | sed 's/^/#   /'
check "probe marks the queue file being delivered with '*'" \
	eval 'sm_queue_listing c.example | grep -Eq "^[[:alnum:]]+\*"'
t0=$EPOCHREALTIME
sm_stop
check "sm_stop leaves no process of the instance" test -z "$(sm_pids)"
check "sm_stop returns within 4 s" awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { exit !(b - a < 4) }'
wait %% 2>/dev/null
kill "$silent"
wait "$silent" 2>/dev/null
rm -f "$RUNDIR/c.example"
check "c.example mail still queued" eq "$(sm_count_for_domain c.example)" 3

echo "# 6. why one mailer per domain: a shared [IPC] mailer mixes customers"
# One mailer for every domain, the socket path from the route's host part
# (A=FILE RUNDIR/$h): routing is right, but the connection cache keys on
# "localhost", so the first connection carries every later domain's mail.
sm_stop
SHRUN=$BASE/run-shared
sm_setup "$BASE/shared" "$SHRUN" a.example b.example c.example >/dev/null 2>&1 || not_ok "sm_setup for the shared-mailer instance"
sed -i '/^include(/d' "$SM_WORK/sendmail.mc"
{
	printf 'MAILER_DEFINITIONS\n'
	printf 'Modmr, P=[IPC], F=mDFMuXa, S=EnvFromSMTP/HdrFromSMTP, R=EnvToSMTP, E=\\r\\n, L=990,\n'
	printf '\t\tT=DNS/RFC822/SMTP, A=FILE %s/$h\n' "$SHRUN"
	printf 'LOCAL_RULE_0\n'
	for d in a.example b.example c.example; do
		printf 'R$* < @ %s . > $*\t$#odmr $@ %s $: $1 < @ %s . > $2\n' "$d" "$d" "$d"
		printf 'R$* < @ %s > $*\t$#odmr $@ %s $: $1 < @ %s > $2\n' "$d" "$d" "$d"
	done
} >>"$SM_WORK/sendmail.mc"
cfdir=$SM_CACHE/usr/share/sendmail/cf
m4 -D_CF_DIR_="$cfdir/" "$cfdir/m4/cf.m4" "$SM_WORK/sendmail.mc" >"$SM_CF"
check "the shared mailer routes b.example with host b.example" \
	eval 'printf "/parse u@b.example\n" | "$SM_SENDMAIL" -C "$SM_CF" -bt | grep -q "mailer odmr, host b.example"'
send sa sa@a.example
send sb sb@b.example
send sc sc@c.example
check "3 envelopes queued" sm_wait_queued 3
OUT=$BASE/out-shared
RUNDIR=$SHRUN fake_start "$OUT" a.example b.example
"$SM_SENDMAIL" -C "$SM_CF" -qf -qRexample -v </dev/null >"$BASE/shared-run" 2>&1
fake_stop
info "delivered (socket: recipients):" &&
	for f in "$OUT"/*.msg; do printf '#   %s: %s\n' "$(sed -n 's/^domain //p' "$f")" "$(sed -n 's/^rcpt //p' "$f" | paste -sd,)"; done
# True if some message reached a socket other than its recipient domain's.
mixed() {
	local f d
	for f in "$1"/*.msg; do
		d=$(sed -n 's/^domain //p' "$f")
		sed -n 's/^rcpt //p' "$f" | grep -qv "@$d>" && return 0
	done
	return 1
}
check "mail for another domain went into one customer's socket (mixed)" mixed "$OUT"
grep -E 'Using cached' "$BASE/shared-run" | head -2 | sed 's/^/#   /'
sm_stop

echo "$passed passed, $failed failed"
((failed == 0))
