#!/bin/bash
# tests/t-50-hostile.sh - hostile customers: odmrd answers each with the right code and a clean exit.
#
# Why: t-10 checks every reply code once; this suite attacks the process. Each case runs one
# misbehaving customer (tests/lib/hostile.py) against ./odmrd under tests/lib/inetd1.py, checks
# the reply tokens, and then checks the odmrd process that served this very connection (found in
# inetd1.py's log by the client's local port): it exited with status 0 (no crash, no signal)
# within the case's bound (no hang), it logged its summary line, and it did not hand the
# connection to the MTA (no "reversing" in its log lines) unless the case says so. Covered: data
# before the greeting, pipelining, bytes after ATRN (also while the queue probe runs), line
# lengths at and beyond 512 and 12288 octets, NUL/bare CR/bare LF/8-bit octets, odd AUTH
# mechanisms and responses, PLAIN with a foreign authzid, the AUTH failure limit, 535 timing for
# unknown user vs wrong password (auth_fail_delay_ms 200), SCRAM user enumeration, ATRN domain
# syntax edges, disconnects at every step, a one-octet-every-2-s drip (session deadline), a
# customer that never reads (write timeout), log injection, and the open file descriptors of a
# live session. Finally: no odmrd of this suite is left and run_dir is empty.
#
# The never-reading customer needs odmrd's socket send buffer to fill: on loopback Linux grows
# it to tcp_wmem[2] (4 MB), so that case runs inetd1.py, odmrd and the client in a private
# network namespace (unshare -n) whose tcp_wmem is 4096 (the host's settings are untouched).
# Needs root for that one case; it is skipped otherwise. Bounded: < 3 min (T50_TIMEOUT).
# Prints "N passed, N failed".

if [ -z "${T50_TIMED:-}" ]; then
	T50_TIMED=1 exec timeout --foreground --kill-after=10 "${T50_TIMEOUT:-170}" bash "$0" "$@"
fi
. "$(dirname "$0")/lib/common.sh"

[ -x "$ODMRD" ] && [ -x "$ODMRD_MAP" ] || { fail "odmrd and odmrd-map are built (run make)"; t_summary; }

A=alice:alice-secret
LOG=$WORK/odmrd.log
EVIL_USER=$'ali\x1bce\r\nfake line'   # a SASL user whose name carries ESC, CR and LF
EVIL_USER_ESC='ali\x1bce\r\nfake line' # the same, as hostile.py's escapes

# --- fixtures -----------------------------------------------------------------------------------

mk_sasldb "$WORK/sasldb2" provider.test alice alice-secret bob bob-secret "$EVIL_USER" evil-secret ||
	fail "saslpasswd2 could not build the sasldb"
mk_map "$WORK/customers" 'alice a.example, b.example' 'bob c.example' ||
	fail "odmrd-map could not build the map"

# A second fake postqueue that reports one deferred message for a.example (so a granted ATRN
# really hands off: 250, "reversing"), takes 0.5 s to list the queue (a window for bytes that
# arrive while odmrd probes the queue), and records its arguments.
mkdir -p "$WORK/mailbin"
cat >"$WORK/mailbin/postqueue" <<EOF
#!/bin/sh
# fake postqueue for t-50: one deferred message for a.example
echo "\$*" >>"$WORK/mailbin/postqueue.calls"
if [ "\$1" = -j ]; then
	sleep 0.5
	echo '{"queue_name":"deferred","queue_id":"T50","recipients":[{"address":"u@a.example","delay_reason":"deferred transport"}]}'
fi
exit 0
EOF
chmod 755 "$WORK/mailbin/postqueue"

common_keys=(idle_timeout=3 session_timeout=6 auth_fail_delay_ms=200 error_delay_ms=50 greet_pause_ms=0)
write_conf "$WORK/main.conf" "${common_keys[@]}"
write_conf "$WORK/pause.conf" "${common_keys[@]}" greet_pause_ms=300
write_conf "$WORK/plain.conf" "${common_keys[@]}" sasl_mech_list="CRAM-MD5 PLAIN"
write_conf "$WORK/defmech.conf" "${common_keys[@]}" -sasl_mech_list
write_conf "$WORK/mail.conf" "${common_keys[@]}" postqueue="$WORK/mailbin/postqueue"
# The same with the reversed state capped at 5 s (max_session_time), for the trickling customer.
write_conf "$WORK/mailcap.conf" "${common_keys[@]}" postqueue="$WORK/mailbin/postqueue" max_session_time=5
# The never-reading customer: a long session deadline, so what ends it is the write timeout.
write_conf "$WORK/flood.conf" "${common_keys[@]}" session_timeout=60

# --- servers ------------------------------------------------------------------------------------

declare -A SRV_PORT SRV_LOG SRV_PID
# serve NAME CONF: an inetd1.py running odmrd -f CONF; "use NAME" points the cases at it.
serve() {
	start_odmrd "$2" || t_summary
	SRV_PORT[$1]=$PORT
	SRV_LOG[$1]=$INETD_LOG
	SRV_PID[$1]=$INETD_PID
}
use() {
	PORT=${SRV_PORT[$1]}
	INETD_LOG=${SRV_LOG[$1]}
}
serve main "$WORK/main.conf"
serve pause "$WORK/pause.conf"
serve plain "$WORK/plain.conf"
serve defmech "$WORK/defmech.conf"
serve mail "$WORK/mail.conf"
serve mailcap "$WORK/mailcap.conf"

# --- one hostile case ---------------------------------------------------------------------------

# hostile BOUND ARG...: run hostile.py against $PORT (client timeout BOUND s); prints its two lines.
hostile() {
	local bound=$1
	shift
	# shellcheck disable=SC2086 # HX_NS is a command prefix (nsenter ...), split on purpose
	timeout $((bound + 30)) ${HX_NS:-} "$PY" "$LIB/hostile.py" --port "$PORT" --timeout "$bound" "$@" 2>&1
}

# served_by LPORT: "N PID" of the connection from 127.0.0.1:LPORT in $INETD_LOG (the last one).
served_by() {
	grep -E "^conn [0-9]+ pid=[0-9]+ peer=127\.0\.0\.1:$1\$" "$INETD_LOG" | tail -1 |
		sed -E 's/^conn ([0-9]+) pid=([0-9]+) .*/\1 \2/'
}

# clean_exit NAME LPORT BOUND: the odmrd that served LPORT exited 0 within BOUND s, logged its
# summary line and did not hand off (unless HX_HANDOFF=1). Sets HX_PID.
clean_exit() {
	local name=$1 lport=$2 bound=$3 n pid st bad=()
	HX_PID=
	if ! wait_for 5 grep -qE "peer=127\.0\.0\.1:$lport\$" "$INETD_LOG"; then
		fail "$name: clean exit" "no connection from port $lport in $INETD_LOG"
		return
	fi
	read -r n pid <<<"$(served_by "$lport")"
	HX_PID=$pid
	if ! wait_for "$bound" grep -qE "^exit $n pid=$pid status=" "$INETD_LOG"; then
		fail "$name: clean exit" "odmrd pid $pid still running after $bound s (hang)"
		return
	fi
	st=$(grep -E "^exit $n pid=$pid status=" "$INETD_LOG" | sed 's/.*status=//')
	[ "$st" = 0 ] || bad+=("exit status $st (negative: killed by signal -status)")
	grep -q "odmrd\[$pid\]: session peer=" "$LOG" || bad+=("no summary line 'session peer=' for pid $pid")
	if [ "${HX_HANDOFF:-0}" = 0 ] && grep -q "odmrd\[$pid\]: .*reversing" "$LOG"; then
		bad+=("handed off: $(grep "odmrd\[$pid\]: .*reversing" "$LOG")")
	fi
	if [ ${#bad[@]} -eq 0 ]; then
		ok "$name: odmrd exited 0$([ "${HX_HANDOFF:-0}" = 0 ] && echo ', no handoff'), summary logged"
	else
		fail "$name: clean exit" "${bad[@]}"
	fi
}

# hx NAME WANT BOUND HOSTILE-ARG...: one case - the reply tokens, then clean_exit.
# Sets HX_OUT (tokens), HX_SECS (client's duration), HX_PID.
hx() {
	local name=$1 want=$2 bound=$3 out info lport
	shift 3
	out=$(hostile "$bound" "$@")
	HX_OUT=$(sed -n 1p <<<"$out")
	info=$(sed -n 2p <<<"$out")
	lport=$(sed -nE 's/^lport=([0-9]+) .*/\1/p' <<<"$info")
	HX_SECS=$(sed -nE 's/.* secs=([0-9.]+)$/\1/p' <<<"$info")
	expect_eq "$name" "$HX_OUT" "$want"
	if [ -z "$lport" ]; then
		fail "$name: clean exit" "hostile.py did not report its port: $out"
		return
	fi
	clean_exit "$name" "$lport" "$bound"
}

# pid_log PID: odmrd's log lines of one process.
pid_log() { grep "odmrd\[$1\]: " "$LOG"; }

# secs_below SECS LIMIT: true if SECS (decimal) < LIMIT.
secs_below() { awk -v s="$1" -v l="$2" 'BEGIN { exit !(s != "" && s + 0 < l + 0) }'; }

use main

# --- before the greeting, pipelining, bytes after ATRN ------------------------------------------

use pause
hx "data before the greeting (greet_pause_ms 300) -> 554, closed" "554 EOF" 5 \
	--early 'EHLO x.test\r\n' eof
use main
hx "EHLO, AUTH, ATRN pipelined in one write -> 554, closed" "220 554 EOF" 5 \
	'raw=EHLO x.test\r\nAUTH CRAM-MD5\r\nATRN a.example\r\n' eof

use mail
# Control: with mail queued the fake MTA really leads to a handoff, so "no reversing" below means
# something. The customer then hangs up instead of greeting: no queue run may start.
HX_HANDOFF=1 hx "control: ATRN with mail queued -> 250 (handoff), customer hangs up" "220 250 235 250 CLOSED" 10 \
	ehlo cram=$A atrn=a.example close
expect_match "control: odmrd logged the handoff" "$(pid_log "$HX_PID")" 'granted=a\.example: reversing$'
expect_match "control: ... and ended it with result=customer-lost" "$(pid_log "$HX_PID" | grep 'session peer=')" \
	'atrn=250 code=250 result=customer-lost tls=- cert=-$'
: >"$WORK/mailbin/postqueue.calls"
hx "ATRN followed by more bytes in the same packet -> 554, no handoff" "220 250 235 554 EOF" 10 \
	ehlo cram=$A 'raw=ATRN a.example\r\n220 eager.test ESMTP\r\n' eof
hx "ATRN, then bytes 0.2 s later while odmrd probes the queue -> 554, no handoff" "220 250 235 554 EOF" 10 \
	ehlo cram=$A 'send=ATRN a.example\r\n' sleep=0.2 'raw=220 eager.test ESMTP\r\n' eof
# Refusing the ATRN must also mean the MTA was not told to deliver: a queue run towards sockets
# that are closed a moment later costs the customer a deferral (and Postfix may throttle the
# destination). odmrd must look for early bytes before it starts the queue run.
expect_eq "... the queue was probed (postqueue -j) but no queue run was started (no postqueue -s)" \
	"$(sort -u "$WORK/mailbin/postqueue.calls" | tr '\n' ' ')" "-j "
use main

# --- line framing -------------------------------------------------------------------------------

hx "512-octet command line (CRLF included) is accepted" "220 250 221 EOF" 5 bigline=512,'NOOP ' quit eof
for n in 513 2000 100000; do
	hx "$n-octet command line -> 500, closed" "220 500 EOF" 5 bigline=$n,'NOOP ' eof
done
hx "NUL in a command -> 500, closed" "220 500 EOF" 5 'raw=EHLO a\x00b.test\r\n' eof
hx "bare LF -> 500, closed" "220 500 EOF" 5 'raw=EHLO a.test\n' eof
hx "bare CR -> 500, closed" "220 500 EOF" 5 'raw=EHLO a\rb.test\r\n' eof
hx "8-bit octet in a command -> 500, session goes on (QUIT 221)" "220 500 221 EOF" 5 \
	'raw=EHLO caf\xe9.test\r\n' quit eof

# --- AUTH ---------------------------------------------------------------------------------------

hx "AUTH with a 200-octet mechanism, ';;;;' and control octets -> 504 504 504" "220 250 504 504 504 221 EOF" 5 \
	ehlo bigline=207,'AUTH ' 'line=AUTH ;;;;' 'raw=AUTH \x01\x02\r\n' quit eof
# 12288 octets of base64, CRLF not counted: RFC 4954's size for a SASL response or an initial
# response (as Postfix's smtpd_sasl_response_limit counts it). hostile.py's bigline=N counts the
# CRLF, and pads with "A" (valid base64: zero octets).
hx "AUTH response of 12288 octets of base64 (+ CRLF): read and given to SASL -> 535, not 500" \
	"220 250 334 535 221 EOF" 5 ehlo 'line=AUTH CRAM-MD5' bigline=12290, quit eof
hx "AUTH response of 12289 octets (+ CRLF) -> 500, closed" "220 250 334 500 EOF" 5 \
	ehlo 'line=AUTH CRAM-MD5' bigline=12291, eof
hx "AUTH CRAM-MD5 with a 12288-octet initial response: read and given to SASL (501), not 500" \
	"220 250 501 221 EOF" 5 ehlo bigline=$((14 + 12288 + 2)),'AUTH CRAM-MD5 ' quit eof
check "... the 501 is libsasl2's (CRAM-MD5 takes no initial response), not a framing or base64 error" \
	grep -q "odmrd\[$HX_PID\]: AUTH CRAM-MD5 failed from 127\.0\.0\.1 user=-: 501 initial response not allowed" "$LOG"
hx "AUTH CRAM-MD5 with a 12289-octet initial response -> 500, closed" "220 250 500 EOF" 5 \
	ehlo bigline=$((14 + 12289 + 2)),'AUTH CRAM-MD5 ' eof
hx "invalid base64 AUTH response -> 501" "220 250 334 501 221 EOF" 5 ehlo 'line=AUTH CRAM-MD5' 'line=!!!!' quit eof
hx "'*' AUTH response -> 501" "220 250 334 501 221 EOF" 5 ehlo 'line=AUTH CRAM-MD5' 'line=*' quit eof
use plain
# PLAIN is offered only under TLS (issue 10): the authzid cases run in t-60-tls; here, in the
# clear, a PLAIN attempt never reaches libsasl2.
hx "PLAIN (admin-enabled) in the clear -> 504, not offered" "220 250 504 221 EOF" 5 \
	ehlo plainz=bob:alice:alice-secret quit eof
use main
hx "three wrong passwords -> 535 535 535, then 421, closed" "220 250 535 535 535 421 EOF" 8 \
	ehlo cram=alice:w1 cram=alice:w2 cram=alice:w3 read eof

# 535 timing: unknown user and wrong password must not be told apart by the clock.
timing=$(timeout 60 "$PY" "$LIB/hostile.py" timing --port "$PORT" --n 20 \
	--known alice:wrong-password --unknown mallory:alice-secret 2>&1)
read -r t_known t_unknown c_known c_unknown <<<"$timing"
echo "# 535 latency, medians of 20 (auth_fail_delay_ms 200): wrong password ${t_known} ms, unknown user ${t_unknown} ms"
expect_eq "timing: every attempt got 535 (wrong password: $c_known, unknown user: $c_unknown)" \
	"$c_known $c_unknown" "535 535"
if awk -v a="$t_known" -v b="$t_unknown" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a >= 195 && b >= 195 && d <= 50) }'; then
	ok "timing: medians ${t_known} ms vs ${t_unknown} ms, both >= 200 ms delay, within 50 ms"
else
	fail "timing: medians within 50 ms of each other, both delayed ~200 ms" "wrong password ${t_known} ms, unknown user ${t_unknown} ms"
fi

# SCRAM-SHA-256 and user enumeration: libsasl2's SCRAM answers an unknown user's client-first
# message with a failure and a known user's with a 334 (salt, iterations), so a prober could tell
# who exists. odmrd therefore does not offer SCRAM unless the admin lists it: with the default
# mechanism list both users get the same 504, before libsasl2 sees anything.
first() { printf 'n,,n=%s,r=t50nonce0123456789' "$1" | base64 -w0; }
use defmech
hx "default mechanisms: SCRAM-SHA-256 for known user alice -> 504" "220 250 504 221 EOF" 5 \
	ehlo "line=AUTH SCRAM-SHA-256 $(first alice)" quit eof
hx "default mechanisms: SCRAM-SHA-256 for unknown user mallory -> 504 (no user enumeration)" "220 250 504 221 EOF" 5 \
	ehlo "line=AUTH SCRAM-SHA-256 $(first mallory)" quit eof
use main

# --- ATRN arguments -----------------------------------------------------------------------------

label63=$(printf 'a%.0s' $(seq 63))
name253=$(printf '%s.%s.%s.%s' "$label63" "$label63" "$label63" "$(printf 'b%.0s' $(seq 61))")
name254=$(printf '%s.%s.%s.%s' "$label63" "$label63" "$label63" "$(printf 'b%.0s' $(seq 62))")
name300=$(printf '%s.%s.%s.%s.%s' "$label63" "$label63" "$label63" "$label63" "$(printf 'c%.0s' $(seq 44))")
atrn_case() { # NAME WANT-LAST ATRN-ARG
	hx "ATRN $1 -> $2" "220 250 235 $2 221 EOF" 5 ehlo cram=$A "line=ATRN $3" quit eof
}
atrn_case "a..com" 501 'a..com'
atrn_case "-a.com" 501 '-a.com'
atrn_case "a_b.com" 501 'a_b.com'
atrn_case "a.com, (trailing comma)" 501 'a.com,'
atrn_case "with a 64-character label" 501 "a${label63}.com"
atrn_case "with a 63-character label (valid; not alice's)" 450 "${label63}.com"
atrn_case "with a 253-character name (valid; not alice's)" 450 "$name253"
atrn_case "with a 254-character name" 501 "$name254"
atrn_case "with a 300-character name" 501 "$name300"
atrn_case "'a.com;rm -rf /'" 501 'a.com;rm -rf /'
atrn_case "for bob's domain c.example (someone else's)" 450 'c.example'
atrn_case "for alice's a.example and bob's c.example" 450 'a.example,c.example'
# UTF-8 is 8-bit: refused by the command reader before the ATRN parser sees it; not fatal.
hx "ATRN with UTF-8 (b\\xc3\\xbccher.example) -> 500 (8-bit octets), session goes on" "220 250 235 500 221 EOF" 5 \
	ehlo cram=$A 'raw=ATRN b\xc3\xbccher.example\r\n' quit eof
d33=$(seq -f 'd%g.example' 1 33 | paste -sd,)
atrn_case "naming 33 domains in ${#d33} octets (max_domains 32)" 501 "$d33"
# 1000 domains cannot fit in a 512-octet command line (even "a.b," is 4 octets: at most 126
# names fit): the line reader refuses the line (500, close) before the ATRN parser could say 501.
d1000=$(seq -f 'd%g.example' 1 1000 | paste -sd,)
hx "ATRN naming 1000 domains ($(( ${#d1000} + 7 )) octets) -> 500 line too long, closed" "220 250 235 500 EOF" 5 \
	ehlo cram=$A "line=ATRN $d1000" eof
hx "ATRN argument with ESC and CSI '\\x1b[31m' -> 501" "220 250 235 501 221 EOF" 5 \
	ehlo cram=$A 'raw=ATRN a\x1b[31m.example\r\n' quit eof
check "log: the ATRN argument is logged escaped (a\\x1b[31m.example)" \
	grep -qF "odmrd[$HX_PID]: ATRN syntax error from 127.0.0.1: a\\x1b[31m.example" "$LOG"

# --- ATRN asked again and again -----------------------------------------------------------------
# Every ATRN that reaches the MTA costs a full-queue listing (postqueue -j). A fake postqueue with
# an empty queue counts its runs; one session sends up to 300 "ATRN a.example". Refused ATRNs feed
# the error limit (hard_error_limit 10 -> 421), and the default atrn_interval (60 s; the suites
# otherwise set 0) turns every ATRN after the first one into a 450 that never reaches the MTA.
mkdir -p "$WORK/count" "$WORK/run-interval" && chmod 0700 "$WORK/run-interval"  # run_dir closed to others
cat >"$WORK/count/postqueue" <<EOF
#!/bin/sh
# fake postqueue for t-50: an empty queue; one line per run in postqueue.calls
echo "\$*" >>"$WORK/count/postqueue.calls"
exit 0
EOF
chmod 755 "$WORK/count/postqueue"
write_conf "$WORK/count0.conf" "${common_keys[@]}" postqueue="$WORK/count/postqueue" atrn_interval=0
write_conf "$WORK/countdef.conf" "${common_keys[@]}" postqueue="$WORK/count/postqueue" -atrn_interval \
	run_dir="$WORK/run-interval"
serve count0 "$WORK/count0.conf"
serve countdef "$WORK/countdef.conf"
# atrn_many N: one session as alice sending up to N ATRNs while they are refused; prints the reply
# codes with repeats counted ("453*10 421"), then how the session ended (EOF, or OPEN).
atrn_many() {
	timeout 90 "$PY" - "$LIB" "$PORT" "$1" <<-'EOF'
		import sys
		sys.path.insert(0, sys.argv[1])
		from odmrclient import Client
		c = Client("127.0.0.1", int(sys.argv[2]), timeout=10)
		c.ehlo("many.test")
		if c.auth_cram("alice", "alice-secret").code != 235:
		    sys.exit("AUTH failed")
		codes = []
		for _ in range(int(sys.argv[3])):
		    r = c.cmd("ATRN a.example")
		    codes.append(r.token)
		    if r.code not in (450, 451, 453):
		        break
		runs = []
		for t in codes:
		    if runs and runs[-1][0] == t:
		        runs[-1][1] += 1
		    else:
		        runs.append([t, 1])
		end = c.read_reply(timeout=3).token
		print(" ".join(t if n == 1 else "%s*%d" % (t, n) for t, n in runs), "EOF" if end == "EOF" else "OPEN")
	EOF
}
: >"$WORK/count/postqueue.calls"
use count0
expect_eq "300 ATRNs, atrn_interval 0: ten 453s, the last with 421 (hard_error_limit 10), closed" \
	"$(atrn_many 300)" "453*10 421 EOF"
expect_eq "... and the queue was listed 10 times, not 300" "$(grep -c -- '-j' "$WORK/count/postqueue.calls")" 10
: >"$WORK/count/postqueue.calls"
use countdef
expect_eq "300 ATRNs, default atrn_interval: 453, then 450 'try again later' nine times, 421, closed" \
	"$(atrn_many 300)" "453 450*9 421 EOF"
expect_eq "... and the queue was listed once" "$(grep -c -- '-j' "$WORK/count/postqueue.calls")" 1
check "... the 450s name atrn_interval in the log" \
	grep -q 'asked=a\.example: 450 asked again within atrn_interval (60 s)' "$LOG"
# A request refused because another session holds one of its domains never reached the MTA: it
# must not start the customer's atrn_interval (odmrd.conf(5): "requests ... that reach the MTA").
mkdir -p "$WORK/run-busy" && chmod 0700 "$WORK/run-busy"
write_conf "$WORK/busy.conf" "${common_keys[@]}" postqueue="$WORK/count/postqueue" -atrn_interval \
	run_dir="$WORK/run-busy"
serve busy "$WORK/busy.conf"
: >"$WORK/count/postqueue.calls"
# The domain's lock, as a session delivering it holds it (rundir.c: flock on .dom.DOMAIN).
exec {busy_fd}>"$WORK/run-busy/.dom.a.example"
flock -n "$busy_fd" || fail "the test takes a.example's lock"
hx "ATRN while another session delivers a.example -> 450" "220 250 235 450 221 EOF" 5 \
	ehlo cram=$A 'line=ATRN a.example' quit eof
exec {busy_fd}>&-
hx "... the same customer at once after that session: asks the MTA -> 453, not 450 (atrn_interval)" \
	"220 250 235 453 221 EOF" 5 ehlo cram=$A 'line=ATRN a.example' quit eof
expect_eq "... and the queue was listed once, by the second request" "$(grep -c -- '-j' "$WORK/count/postqueue.calls")" 1
use main

# --- disconnects at every step ------------------------------------------------------------------

hx "disconnect right after connect (before the greeting is read)" "- CLOSED" 5 --no-greeting close
hx "reset (RST) right after connect" "- RST" 5 --no-greeting reset
use pause
hx "disconnect during greet_pause_ms" "- CLOSED" 5 --no-greeting close
use main
hx "disconnect in the middle of the EHLO line" "220 CLOSED" 8 'send=EHL' close
hx "disconnect in the middle of the AUTH exchange, after 334" "220 250 334 CLOSED" 8 \
	ehlo 'line=AUTH CRAM-MD5' close
hx "RST in the middle of the AUTH exchange, after 334" "220 250 334 RST" 8 \
	ehlo 'line=AUTH CRAM-MD5' reset
hx "disconnect right after sending ATRN (empty queue)" "220 250 235 CLOSED" 8 \
	ehlo cram=$A 'send=ATRN a.example\r\n' close
# A hang-up already visible when ATRN is answered counts like bytes after ATRN (554, no queue run);
# one that arrives a moment later finds the session answering (453 here), then lost.
expect_match "... its summary line says atrn=554 (hang-up seen first) or result=lost" \
	"$(pid_log "$HX_PID" | grep 'session peer=')" '(atrn=554 code=554 result=-|result=lost) tls=- cert=-$'
use mail
# With mail queued, a FIN that arrives just after odmrd checked for it (POLLRDHUP) looks like a
# customer about to greet: odmrd may answer 250 and log "reversing", then find it gone. These
# cases allow the handoff; they check the clean exit and that nothing was relayed. Whether the
# MTA was asked for a queue run anyway is printed as a note (see the report).
for how in close reset; do
	: >"$WORK/mailbin/postqueue.calls"
	tok=CLOSED
	[ $how = reset ] && tok=RST
	HX_HANDOFF=1 hx "$how right after sending ATRN (mail queued)" "220 250 235 $tok" 8 \
		ehlo cram=$A 'send=ATRN a.example\r\n' $how
	check "... nothing relayed (no 'reversed' line with messages > 0)" \
		sh -c "! grep -q 'odmrd\[$HX_PID\]: reversed .* messages=[1-9]' '$LOG'"
	echo "# note: $how after ATRN with mail queued: postqueue -s ran $(grep -c -- '-s' "$WORK/mailbin/postqueue.calls") time(s);" \
		"odmrd: $(pid_log "$HX_PID" | grep -oE 'reversing|write to client failed|result=[a-z-]+' | tr '\n' ' ')"
done
use main

# --- slow and stuck customers -------------------------------------------------------------------

hx "one octet every 2 s (idle_timeout 3, session_timeout 6) -> 421, closed" "220 421 EOF" 12 \
	--drip-interval 2 'drip=EHLO slow.example.test\r\n' eof
if secs_below "$HX_SECS" 10; then ok "... closed after ${HX_SECS} s (< 10 s)"; else fail "... closed after ${HX_SECS} s, want < 10 s"; fi
check "... logged as the session deadline, not idle" grep -q "odmrd\[$HX_PID\]: session timeout for 127\.0\.0\.1" "$LOG"

# A customer that only says NOOP/RSET/EHLO keeps nothing going: junk_command_limit (default 100,
# like Postfix's smtpd_junk_command_limit) of them are answered, the next gets 421.
junk=()
for i in $(seq 50); do junk+=(line=NOOP line=RSET); done
hx "EHLO, then 100 NOOP/RSET, then EHLO again (junk_command_limit 100) -> 100 x 250, 421, closed" \
	"220 250 $(printf '250 %.0s' $(seq 100))421 EOF" 10 ehlo "${junk[@]}" 'line=EHLO again.test' eof
check "... logged as commands without progress" \
	grep -q "odmrd\[$HX_PID\]: 101 commands without progress (NOOP, RSET, EHLO again) from 127\.0\.0\.1; closing" "$LOG"

if [ "$(id -u)" = 0 ] && unshare -n true 2>/dev/null && command -v nsenter >/dev/null && command -v ip >/dev/null; then
	cat >"$WORK/nspy" <<-'EOF'
		#!/bin/sh
		# python3 in a private network namespace whose TCP send buffers stay at 4096 octets
		exec unshare -n sh -c 'ip link set lo up && sysctl -qw net.ipv4.tcp_wmem="4096 4096 4096" && exec python3 "$@"' nspy "$@"
	EOF
	chmod 755 "$WORK/nspy"
	PY=$WORK/nspy serve flood "$WORK/flood.conf"
	use flood
	HX_NS="nsenter -t ${SRV_PID[flood]} -n" hx "customer that never reads (EHLO every 20 ms, 2304-octet receive buffer) -> odmrd gives up" \
		"220 SENDFAIL" 20 --rcvbuf 1024 flood=30
	check "... because its write timed out (idle_timeout 3)" grep -q "odmrd\[$HX_PID\]: write to client failed; closing" "$LOG"
	if secs_below "$HX_SECS" 15; then ok "... odmrd closed after ${HX_SECS} s (< 15 s)"; else fail "... odmrd closed after ${HX_SECS} s, want < 15 s"; fi
	use main
else
	echo "SKIP - customer that never reads (needs root, unshare -n, nsenter and ip)"
fi

# --- log injection ------------------------------------------------------------------------------

hx "EHLO name with ESC -> 501" "220 501 221 EOF" 5 'raw=EHLO a\x1b[2Jb.test\r\n' quit eof
expect_match "log: the refused EHLO name is not logged at all (summary helo=-)" \
	"$(pid_log "$HX_PID" | grep 'session peer=')" ' helo=- '
hx "EHLO name with CR -> 500, closed" "220 500 EOF" 5 'raw=EHLO a\rfake line\r\n' eof
hx "EHLO name with LF -> 500, closed" "220 500 EOF" 5 'raw=EHLO a\nfake line\r\n' eof
hx "CRAM-MD5 user 'ali\\x1bce\\r\\nfake line' (unknown password) -> 535" "220 250 535 221 EOF" 5 \
	ehlo "cramx=$EVIL_USER_ESC:wrong" quit eof
hx "CRAM-MD5 user 'ali\\x1bce\\r\\nfake line' that exists in the sasldb -> 235" "220 250 235 450 221 EOF" 5 \
	ehlo "cramx=$EVIL_USER_ESC:evil-secret" atrn=a.example quit eof
check "log: that user name is logged escaped (ali\\x1bce\\x0d\\x0afake\\x20line)" \
	grep -qF "odmrd[$HX_PID]: AUTH CRAM-MD5 ok from 127.0.0.1: user=ali\\x1bce\\x0d\\x0afake\\x20line@provider.test" "$LOG"
check "log: ... also in the ATRN refusal and the summary line" \
	test "$(pid_log "$HX_PID" | grep -cF 'user=ali\x1bce\x0d\x0afake\x20line@provider.test')" -ge 3
check "log: no line starts with the injected 'fake line'" sh -c "! grep -q '^fake line' '$LOG'"

# --- file descriptors of a live session ---------------------------------------------------------

# fds_ok PID: every fd of PID is 0, 1, 2 or odmrd's log file; prints the offenders.
fds_ok() {
	local f t extra=
	for f in /proc/"$1"/fd/*; do
		case ${f##*/} in 0 | 1 | 2) continue ;; esac
		t=$(readlink "$f")
		[ "$t" = "$LOG" ] || extra="$extra ${f##*/}->$t"
	done
	echo "${extra# }"
}
LPF=$WORK/fd.lport
rm -f "$LPF" "$LPF.mark"
hostile 15 --lport-file "$LPF" ehlo mark=ehlo hold=0.7 cram=alice:wrong mark=authfail hold=0.7 \
	cram=$A mark=auth hold=0.7 atrn=c.example mark=atrn450 hold=0.7 atrn=a.example mark=atrn453 hold=0.7 \
	quit eof >"$WORK/fd.out" &
fd_client=$!
if wait_for 5 test -s "$LPF" && wait_for 5 grep -qE "peer=127\.0\.0\.1:$(cat "$LPF")\$" "$INETD_LOG"; then
	read -r _ fd_pid <<<"$(served_by "$(cat "$LPF")")"
	for m in ehlo authfail auth atrn450 atrn453; do
		if wait_for 5 grep -qx "$m" "$LPF.mark"; then
			expect_eq "fds of a live odmrd after $m: only 0, 1, 2 and the log file" "$(fds_ok "$fd_pid")" ""
		else
			fail "fds after $m: the client did not get there" "$(cat "$WORK/fd.out")"
		fi
	done
else
	fail "fd check: client did not connect"
fi
wait "$fd_client"
expect_eq "fd check session: 220 250 535 235 450 453 221 EOF" "$(sed -n 1p "$WORK/fd.out")" "220 250 535 235 450 453 221 EOF"

# --- a hostile MTA in the reversed state ---------------------------------------------------------
# The relay forwards message data verbatim but only with CRLF line ends: a bare LF could end the
# message at one side and not the other. odmrd must drop the customer unfinished and the MTA
# without a reply (so the MTA keeps the message), never pass on an end-of-data.
use mail
out=$(timeout 30 "$PY" "$LIB/hostile_mta.py" "$PORT" "$WORK/run/a.example" 2>&1)
expect_eq "hostile MTA: ATRN 250, LHLO/MAIL/RCPT/DATA relayed, then bare LF in DATA" \
	"$(grep -oE 'atrn=[0-9]+ lhlo=[0-9]+ mail=[0-9]+ rcpt=[0-9]+ data=[0-9]+' <<<"$out")" \
	"atrn=250 lhlo=250 mail=250 rcpt=250 data=354"
expect_match "hostile MTA: the customer is dropped and never sees an end of data" "$out" \
	'customer=(EOF|RESET) customer_saw_end=no'
expect_match "hostile MTA: the MTA gets no reply to its data (it keeps the message)" "$out" \
	'mta_after_data=EOF '
expect_match "hostile MTA: odmrd forwarded the MTA's commands verbatim" "$out" \
	'forwarded=MAIL FROM:<s@x\.test>\|RCPT TO:<u@a\.example>\|DATA$'
log_wait 'bare CR or LF in DATA' 5
check "hostile MTA: logged, session result=aborted" grep -q 'granted=a\.example atrn=250 code=250 result=aborted' "$LOG"

# --- a customer trickling octets in the reversed state (issue 11 #5) -------------------------------
# Each customer reply has one deadline for the whole reply, not one per read: a 25-octet greeting
# sent one octet per second used to take 25 s with idle_timeout = 3 (37.5 s with 2 in the report).
use mail
out=$(timeout 60 "$PY" "$LIB/hostile_mta.py" "$PORT" "$WORK/run/a.example" trickle-greeting 2>&1)
expect_match "trickled greeting: odmrd gives up within its 3 s greeting deadline, sends nothing" "$out" \
	'atrn=250 customer=(EOF|RESET) closed_after_s=[34] sent_to_customer=-$'
log_wait 'customer greeting -1, giving up' 5
check "trickled greeting: session result=customer-lost" \
	grep -q 'granted=a\.example atrn=250 code=250 result=customer-lost' "$LOG"
# max_session_time caps the whole reversed state: a customer answering RCPT one octet every 0.7 s
# (each within atrn_timeout, 600 s) is cut off at 5 s; the MTA's open transaction is dropped
# unanswered (it keeps the mail) and the customer gets nothing after the RCPT in flight.
use mailcap
out=$(timeout 60 "$PY" "$LIB/hostile_mta.py" "$PORT" "$WORK/run/a.example" trickle-rcpt 2>&1)
expect_match "max_session_time: MAIL relayed, RCPT forwarded, then the trickling answer" "$out" \
	'^atrn=250 lhlo=250 forwarded=MAIL FROM:<s@x\.test>\|RCPT TO:<u@a\.example> mail=250 '
# The client's clock starts when it reads the 250, which may be late on a loaded machine: 4 s
# (whole seconds, truncated) is the cap seen from a client that read the 250 up to a second late.
expect_match "max_session_time: the reversed state ends at 5 s, nothing more to the customer" "$out" \
	'customer=(EOF|RESET) closed_after_s=[456] sent_to_customer=- '
expect_match "max_session_time: the MTA gets no answer to RCPT (it keeps the mail)" "$out" \
	'mta_after_rcpt=EOF$'
log_wait 'max_session_time \(5 s\) reached' 5
check "max_session_time: logged, session result=expired" \
	grep -q 'granted=a\.example atrn=250 code=250 result=expired' "$LOG"

# --- the whole log, and what is left -------------------------------------------------------------

wait_sessions 20
check_no_crashes
expect_eq "log: no raw control character or 8-bit octet anywhere (only printable ASCII and LF)" \
	"$(LC_ALL=C tr -d '\n\040-\176' <"$LOG" | od -An -c | tr -s ' \n' ' ' | sed 's/^ //; s/ $//')" ""
nconn=$(cat "${T_INETD_LOGS[@]}" | grep -c '^conn ')
expect_eq "log: one summary line per connection ($nconn)" "$(log_count ': session peer=')" "$nconn"
check "odmrd wrote nothing to stderr" sh -c "! cat '$WORK'/inetd*.stderr | grep -q ."
for s in "${!SRV_PID[@]}"; do
	stop_odmrd "${SRV_PID[$s]}"
done
left=""
for p in /proc/[0-9]*; do
	cmd=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") || continue
	case $cmd in *"$ODMRD -f $WORK/"*) left="$left ${p#/proc/}:$cmd" ;; esac
done
expect_eq "no odmrd process of this suite is left" "${left# }" ""
expect_eq "run_dir is empty (no socket, lock or stamp file left)" "$(ls -A "$WORK/run")" ""

t_summary
