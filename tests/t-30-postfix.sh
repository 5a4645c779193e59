#!/bin/bash
# tests/t-30-postfix.sh - odmrd end to end: a real private Postfix holding the mail, odmrd under
# inetd1.py (mta = postfix), real fetchmail as the ODMR customer relaying into smtpsink.py.
#
# Why: the unit and protocol suites stop at the turn. This is the path a provider runs: held mail
# must reach the right customer exactly once with envelope and body intact (dot-stuffing, 8-bit,
# 5 MB, 200 messages in one session), never cross to another customer, stay queued whenever the
# customer did not take it (4xx, dropped in DATA), bounce on 5xx, and every session must end with
# no odmrd, no postqueue, no socket and no lock left behind. Also the refusals (453, 450, 451) and
# a second concurrent ATRN of the same customer (450), another customer's session meanwhile, and a
# postqueue that hangs.
#
# Customers: alice (a.example, b.example), bob (c.example); d.example belongs to dave, who never
# logs in (the sender domain of the bounce case, so bounces stay in the queue to be inspected).
# Postfix's transport table and relay_domains are odmrd-map's output from that same customer list.
# Prints one ok/FAIL line per case, a table of per-session counts, and "N passed, N failed".
# Needs root (private Postfix instance), fetchmail, Postfix, sasl2-bin. T30_LIMIT (seconds,
# default 600) bounds the whole suite.

# One run at a time: common.sh takes a per-suite lock before it empties the work directory.
. "$(dirname "$0")/lib/common.sh"
. "$LIB/postfix.sh"
. "$LIB/e2e.sh"
. "$LIB/tls.sh"

PF_TIMEOUT=30
RUNDIR=$WORK/run
RUNNER_ERE="^[^ ]*postqueue -c $WORK/pf/etc"
ODMRD_ERE="^[^ ]*odmrd -f $WORK/[^/]*\.conf" # not $WORK/hang/odmrd.conf, which runs alongside
declare -A PW=([alice]=alice-secret [bob]=bob-secret [carol]=carol-secret [erin]=erin-secret [frank]=frank-secret)
STATS=()
PF_STARTED=

t30_cleanup() {
	local rc=$? p
	for p in "${T_BG_PIDS[@]}"; do
		kill_tree "$p"
	done
	[ -n "$PF_STARTED" ] && pf_stop
	exit "$rc"
}
trap t30_cleanup EXIT

# Whole-suite watchdog: every step below is bounded too, this is the backstop.
spawn bash -c "sleep ${T30_LIMIT:-600}; echo 't-30-postfix: T30_LIMIT reached' >&2; kill -TERM $$"

for tool in fetchmail postfix postqueue saslpasswd2 sqlite3; do
	command -v "$tool" >/dev/null || { fail "$tool is installed"; t_summary; }
done

# --- helpers -------------------------------------------------------------------------------------

# Recipients still queued in DOMAIN.
queued() { pf_count_for_domain "$1"; }

# The queue as "queue_id rcpt,rcpt" lines, sorted (queue names ignored: retries move mail around).
queue_snapshot() {
	pf__jq '
for m in sorted(msgs, key=lambda m: m["queue_id"]):
    print(m["queue_id"], ",".join(sorted(r["address"] for r in m["recipients"])))'
}

# Wait until the queue holds exactly N messages, all deferred (what postqueue -s can flush).
settle() {
	pf_wait_queued "$1" deferred 2>&1 || return 1
}

# sess LABEL USER DOMAINS WANT-FETCHMAIL-RC-ERE WANT-SUMMARY-ERE [ODMR-PORT]
# One fetchmail run and the checks every session gets: fetchmail's exit status, odmrd's summary
# line (code=NNN result=...), nothing left behind, and odmrd's per-message lines (issue 13): one
# result=sent line per message the sink stored, matching it and Postfix's lmtp lines. Sets MSGS
# (odmrd's "messages=" count) and SENT (its result=sent lines).
sess() {
	local label=$1 user=$2 doms=$3 wrc=$4 want=$5 port=${6:-$MAIN_PORT} fields left tail stored
	stored=$(e2e_sink_files)
	e2e_log_mark
	e2e_fetchmail "$label" "$user" "${PW[$user]}" "$doms" "$port"
	wait_sessions 30
	stored=$(($(e2e_sink_files) - stored))
	fields=$(e2e_session_fields)
	expect_match "$label: fetchmail exit status $wrc" "$FM_RC" "^$wrc\$"
	printf '%s\n' "$FM_RC" | grep -Eq "^$wrc\$" || sed 's/^/    fetchmail: /' "$FM_OUT" | tail -15
	expect_match "$label: odmrd logs one session, $want" "$fields" "^$want\$"
	left=$(e2e_leftovers "$RUNDIR" "$RUNNER_ERE" "$ODMRD_ERE")
	expect_eq "$label: no odmrd, postqueue, socket or lock left after the session" "$left" ""
	MSGS=$(e2e_log_new | sed -n 's/.*reversed peer=.* messages=\([0-9]*\).*/\1/p')
	SENT=$(e2e_log_new | grep -c ']: msg .* result=sent ')
	if [ "$stored" -gt 0 ] || [ "$SENT" -gt 0 ]; then
		msg_check "$label: one msg line per stored message ($stored), its from=, size=, accepted= and reply= match the sink and Postfix's lmtp lines" \
			"sent=$stored"
		expect_eq "$label: msg lines with result=sent = the summary's messages=" "$SENT" "${MSGS:-0}"
	fi	# Issue 12: QUIT as soon as the mail is out (was ~4 s: lmtp's cached connection + 2 s idle).
	tail=-
	if [[ $fields == *result=done* ]] && [ "$(e2e_sink_files)" -gt 0 ]; then
		tail=$(e2e_tail_ms)
		expect_eq "$label: QUIT within 300 ms of the last end-of-data reply (customer side: $tail ms)" \
			"$([ "$tail" != - ] && [ "$tail" -lt 300 ] && echo yes)" yes
	fi
	STATS+=("$(printf '%-26s %-9s %-20s rc=%-3s %-28s odmrd messages=%-4s sink files=%-4s %6d ms tail %s ms' \
		"$label" "$user" "$doms" "$FM_RC" "$fields" "${MSGS:--}" "$(e2e_sink_files)" "$FM_MS" "$tail")")
}

# msg_check LABEL WANT: e2e_msg_check on the current sink and Postfix's log (its lmtp lines are
# written by postlogd, maybe a moment after the session ended: waits up to 5 s for them).
msg_check() {
	local out
	wait_for 5 e2e_msg_check "$SINK_DIR" "$PF_LOG" >/dev/null
	out=$(e2e_msg_check "$SINK_DIR" "$PF_LOG")
	expect_eq "$1" "$out" "$2"
}

# verify LABEL SINKDIRS SPEC...: the sink(s) hold exactly the deliveries SPEC names, intact.
verify() {
	local label=$1 out
	shift
	if out=$(e2e_verify "$@"); then
		ok "$label (${out%%$'\n'*})"
	else
		fail "$label" "$out"
	fi
}

inj() { e2e_inject pf_send "$@"; }

# --- set-up --------------------------------------------------------------------------------------

mk_map "$WORK/customers" 'alice a.example, b.example' 'bob c.example' 'carol e.example' 'dave d.example' ||
	fail "odmrd-map"
pf_setup "$WORK/pf" "$RUNDIR" -m "$WORK/customers" || { fail "pf_setup"; t_summary; }
expect_eq "odmrd-map wrote Postfix's transport table from the customer list" \
	"$(postmap -c "$PF_CONF" -q c.example "hash:$PF_CONF/odmrd_transport")" "odmrl:unix:$RUNDIR/c.example"
expect_eq "the table holds exactly the customer domains" "$PF_DOMAINS" \
	"a.example b.example c.example d.example e.example"
expect_eq "Postfix uses it for relay_domains and transport_maps" \
	"$(postconf -c "$PF_CONF" -h relay_domains transport_maps | paste -sd' ')" \
	"hash:$PF_CONF/odmrd_transport hash:$PF_CONF/odmrd_transport"
# Retries well apart: with postfix.sh's 2-4 s backoff, Postfix re-tries a recipient the customer
# temp-failed every ~4 s *within* the session (see postfix.sh), so the queue never looks settled
# and the session's QUIT (after two listings showing nothing of ours on its way) comes late. The
# next ATRN's flush delivers regardless of backoff.
pf_conf minimal_backoff_time=30s maximal_backoff_time=60s || fail "pf_conf backoff"
PF_STARTED=1 # set before pf_start: a half-started instance must be stopped too
pf_start || { fail "private Postfix starts"; t_summary; }
mk_sasldb "$WORK/sasldb2" provider.test alice "${PW[alice]}" bob "${PW[bob]}" carol "${PW[carol]}" ||
	fail "saslpasswd2"

# A postqueue that hangs (90 s), for carol only, with its own run_dir, log and inetd1.py, started
# now and checked at the end so it costs no wall time: odmrd must give up after its 60 s
# command timeout (HO_CMD_TIMEOUT_MS), kill it and answer 451.
mkdir -p "$WORK/hang/run"
cat >"$WORK/hang/postqueue" <<EOF
#!/bin/sh
echo \$\$ >"$WORK/hang/postqueue.pid"
exec sleep 90
EOF
chmod 755 "$WORK/hang/postqueue"
write_conf "$WORK/hang/odmrd.conf" run_dir="$WORK/hang/run" postqueue="$WORK/hang/postqueue" \
	log_file="$WORK/hang/odmrd.log" session_timeout=300
spawn "$PY" "$LIB/inetd1.py" --port-file "$WORK/hang/port" --log "$WORK/hang/inetd.log" \
	--stderr "$WORK/hang/stderr" -- "$ODMRD" -f "$WORK/hang/odmrd.conf" >/dev/null
if wait_for 10 test -s "$WORK/hang/port"; then
	spawn bash -c 't0=$(date +%s%N); timeout 170 "$1" "$2" --port "$3" --timeout 150 \
		ehlo cram=carol:carol-secret atrn=e.example quit eof >"$4"
		echo $((($(date +%s%N) - t0) / 1000000)) >"$4.ms"' - \
		"$PY" "$LIB/odmrclient.py" "$(cat "$WORK/hang/port")" "$WORK/hang/client.out"
	HANG_CLIENT=$BG_PID
else
	fail "inetd1.py for the hung-postqueue case starts"
	HANG_CLIENT=
fi

write_conf "$WORK/odmrd.conf" run_dir="$RUNDIR" postqueue=/usr/sbin/postqueue \
	postfix_config_dir="$PF_CONF"
start_odmrd "$WORK/odmrd.conf" || t_summary
MAIN_PORT=$PORT
# 451 twice: a postqueue that fails, and a Postfix config directory that is no instance.
write_conf "$WORK/false.conf" run_dir="$RUNDIR" postqueue=/bin/false
start_odmrd "$WORK/false.conf" || t_summary
FALSE_PORT=$PORT
mkdir -p "$WORK/not-postfix"
write_conf "$WORK/nopf.conf" run_dir="$RUNDIR" postqueue=/usr/sbin/postqueue \
	postfix_config_dir="$WORK/not-postfix"
start_odmrd "$WORK/nopf.conf" || t_summary
NOPF_PORT=$PORT
# A postqueue that lists the queue (-j) but cannot flush it (-s), and one that can neither flush
# nor release a queue ID (-i).
mkdir -p "$WORK/bin"
cat >"$WORK/bin/postqueue-noflush" <<'EOF'
#!/bin/sh
for a; do [ "$a" = -s ] && { echo "postqueue-noflush: no flush (test)" >&2; exit 75; }; done
exec /usr/sbin/postqueue "$@"
EOF
cat >"$WORK/bin/postqueue-norelease" <<'EOF'
#!/bin/sh
for a; do case $a in -s|-i) echo "postqueue-norelease: no $a (test)" >&2; exit 75 ;; esac; done
exec /usr/sbin/postqueue "$@"
EOF
chmod 755 "$WORK/bin/postqueue-noflush" "$WORK/bin/postqueue-norelease"
write_conf "$WORK/noflush.conf" run_dir="$RUNDIR" postqueue="$WORK/bin/postqueue-noflush" \
	postfix_config_dir="$PF_CONF"
start_odmrd "$WORK/noflush.conf" || t_summary
NOFLUSH_PORT=$PORT
write_conf "$WORK/norelease.conf" run_dir="$RUNDIR" postqueue="$WORK/bin/postqueue-norelease" \
	postfix_config_dir="$PF_CONF"
start_odmrd "$WORK/norelease.conf" || t_summary
NORELEASE_PORT=$PORT
PORT=$MAIN_PORT

# --- 1. content: dot-stuffing, 8-bit, 5 MB, null sender, several recipients and domains ----------

inj dots s@x.test u1@a.example <<'EOF'
From: Sender <s@x.test>
To: u1@a.example
Subject: dot-stuffing

.
..
.leading dot
...three dots
 . space then dot
.	dot tab
. 
normal line
.
EOF
printf 'From: s@x.test\nTo: u2@b.example\nSubject: latin-1\nMIME-Version: 1.0\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: 8bit\n\ncaf\xe9 na\xefve \xfc\xdf \xa9\n%s\n%s\n' \
	"$("$PY" -c 'import sys; sys.stdout.buffer.write(bytes(range(0x80, 0x100)))')" \
	"$("$PY" -c 'import sys; sys.stdout.buffer.write(bytes(b for b in range(1, 0x80) if b not in (10, 13)))')" |
	inj latin1 s@x.test u2@b.example
printf 'From: s@x.test\nTo: u3@a.example\nSubject: utf-8\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nGr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln \xe2\x80\x94 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\x98\x80\n.\xc3\xa9 leading dot\n' |
	inj utf8 '"s p"@x.test' u3@a.example
# 5 MB in 76-octet lines of deterministic pseudo-random text, numbered so a lost or doubled
# line shows; some lines start with a dot.
"$PY" - >"$WORK/big.eml" <<'EOF'
import base64, hashlib, sys
out = sys.stdout.buffer
out.write(b"From: s@x.test\nTo: u4@a.example, u5@a.example\nSubject: five megabytes\n\n")
n, i = 0, 0
while n < 5 * 1024 * 1024:
    line = b"%07d " % i + base64.b64encode(hashlib.sha512(b"%d" % i).digest())[:68]
    if i % 97 == 0:
        line = b"." + line
    out.write(line + b"\n")
    n += len(line) + 2
    i += 1
EOF
inj big s@x.test u4@a.example u5@a.example <"$WORK/big.eml"
printf 'From: s@x.test\nTo: u6@a.example, u7@b.example\nSubject: two domains\n\nfor a.example and b.example\n' |
	inj twodom s@x.test u6@a.example u7@b.example
printf 'From: MAILER-DAEMON@x.test\nTo: u8@a.example\nSubject: null sender\n\nenvelope sender is <>\n' |
	inj nullsender '<>' u8@a.example
check "content: 6 messages held (deferred) for alice" settle 6

e2e_sink_start content
sess content alice a.example,b.example 0 'atrn=250 code=250 result=done'
verify "content: every recipient exactly once, envelope and body byte-for-byte" "$SINK_DIR" \
	dots latin1 utf8 big twodom nullsender
expect_eq "content: nothing left queued for a.example, b.example" "$(queued a.example) $(queued b.example)" "0 0"
expect_eq "content: odmrd counted 7 messages (one LMTP transaction per message and domain)" "$MSGS" 7
expect_eq "content: 7 msg lines, result=sent" "$SENT" 7
expect_match "content: a quoted sender with a space is logged escaped" \
	"$(e2e_log_new | grep ']: msg .*rcpts=1 accepted=<u3@a\.example>')" \
	' from=<\\x22s\\x20p\\x22@x\.test> size=[0-9]+ '
e2e_sink_stop

# --- 1b. 200 small messages in one session ----------------------------------------------------------

for i in $(seq -w 1 200); do
	printf 'From: s%s@x.test\nTo: bulk%s@a.example\nSubject: bulk %s\n\nbulk message %s\n.%s\n' \
		"$i" "$i" "$i" "$i" "$i" | inj "bulk-$i" "s$i@x.test" "bulk$i@a.example" ||
		{ fail "queue bulk message $i"; break; }
done
check "bulk: 200 messages held" settle 200
e2e_sink_start bulk
sess bulk alice a.example 0 'atrn=250 code=250 result=done'
BULK_MS=$FM_MS
verify "bulk: 200 messages in one session, each exactly once and intact" "$SINK_DIR" 'bulk-*'
expect_eq "bulk: nothing left queued for a.example" "$(queued a.example)" 0
echo "# 200-message session: ${BULK_MS} ms from fetchmail start to exit (odmrd messages=$MSGS)"
e2e_sink_stop

# --- 2. another customer's mail never crosses ------------------------------------------------------

printf 'From: s@x.test\nTo: m@a.example, m@c.example\nSubject: mixed\n\nfor alice and bob\n' |
	inj mixed s@x.test m@a.example m@c.example
printf 'From: s@x.test\nTo: u@c.example\nSubject: bob only\n\nfor bob\n' | inj bobonly s@x.test u@c.example
check "crossing: 2 messages held" settle 2
e2e_sink_start cross-alice
sess cross-alice alice a.example,b.example 0 'atrn=250 code=250 result=done'
verify "crossing: alice gets m@a.example only" "$SINK_DIR" mixed=m@a.example
expect_eq "crossing: m@c.example and u@c.example stay queued" "$(queued c.example)" 2
e2e_sink_stop
check "crossing: the c.example mail is held again" settle 2
e2e_sink_start cross-bob
sess cross-bob bob c.example 0 'atrn=250 code=250 result=done'
verify "crossing: bob gets m@c.example and u@c.example" "$SINK_DIR" mixed=m@c.example bobonly
expect_eq "crossing: nothing left queued for c.example" "$(queued c.example)" 0
e2e_sink_stop

# --- 5. refusals: 453, 450, 451 -------------------------------------------------------------------------

e2e_sink_start refusals
sess nomail alice a.example,b.example 0 'atrn=453 code=221 result=-'
printf 'From: s@x.test\nTo: v@c.example\nSubject: for bob\n\nheld for bob\n' | inj forbob s@x.test v@c.example
printf 'From: s@x.test\nTo: w@a.example\nSubject: for alice\n\nheld for alice\n' | inj foralice s@x.test w@a.example
check "refusals: 2 messages held" settle 2
before=$(queue_snapshot)
sess unauth alice c.example 4 'atrn=450 code=221 result=-'
sess unauth-mixed alice a.example,c.example 4 'atrn=450 code=221 result=-'
sess fail-postqueue alice a.example 8 'atrn=451 code=221 result=-' "$FALSE_PORT"
sess fail-confdir alice a.example 8 'atrn=451 code=221 result=-' "$NOPF_PORT"
expect_eq "refusals: the customer's SMTP server was never contacted" \
	"$(e2e_sink_conns) $(e2e_sink_files)" "0 0"
expect_eq "refusals: queue unchanged" "$(queue_snapshot)" "$before"
expect_match "refusals: 451 logged with the failing postqueue" "$(grep -E ': 451 ' "$E2E_ODMRD_LOG")" \
	'queue probe failed \(/bin/false\)'
e2e_sink_stop
# The queue probe works but releasing fails (postqueue -s and -i): odmrd releases before it
# answers ATRN, so this is a 451, nothing is sent and the mail stays queued.
e2e_sink_start release-fails
sess release-fails alice a.example 8 'atrn=451 code=221 result=-' "$NORELEASE_PORT"
expect_eq "release fails: the customer's SMTP server was never contacted" \
	"$(e2e_sink_conns) $(e2e_sink_files)" "0 0"
expect_eq "release fails: queue unchanged" "$(queue_snapshot)" "$before"
expect_match "release fails: logged with postqueue's status" "$(e2e_log_new)" 'postqueue -i failed \(status 75\)'
e2e_sink_stop
e2e_sink_start refusals-bob
sess refusals-bob bob c.example 0 'atrn=250 code=250 result=done'
e2e_sink_stop
# alice's through a postqueue whose fast flush (-s) fails: her mail is released by queue ID.
e2e_sink_start refusals-alice
sess refusals-alice alice a.example 0 'atrn=250 code=250 result=done' "$NOFLUSH_PORT"
expect_match "flush fails: not an error, the mail is released by queue ID (postqueue -i)" "$(e2e_log_new)" \
	'postqueue -s a\.example: status 75; releasing its mail by queue ID'
e2e_sink_stop
verify "refusals: the held mail is then delivered once to its owners" \
	"$WORK/sink-refusals-bob:$WORK/sink-refusals-alice" forbob foralice
verify "refusals: ... to its owner only (bob's sink)" "$WORK/sink-refusals-bob" forbob

# --- 3. 4xx stays queued and arrives next time; 5xx bounces ---------------------------------------

printf 'From: s@x.test\nTo: t1@a.example\nSubject: tempfail\n\ntemporarily refused\n' | inj tf s@x.test t1@a.example
printf 'From: s@d.example\nTo: r1@a.example\nSubject: reject\n\npermanently refused\n' | inj rj s@d.example r1@a.example
printf 'From: s@x.test\nTo: ok1@a.example\nSubject: ok\n\naccepted\n' | inj okm s@x.test ok1@a.example
printf 'From: s@d.example\nTo: ok2@a.example, t2@a.example, r2@a.example\nSubject: three verdicts\n\n250, 450 and 550\n' |
	inj verdicts s@d.example ok2@a.example t2@a.example r2@a.example
check "4xx/5xx: 4 messages held" settle 4
e2e_sink_start verdicts --tempfail-rcpt '^t[0-9]@' --reject-rcpt '^r[0-9]@'
sess verdicts-1 alice a.example 0 'atrn=250 code=250 result=done'
expect_match "4xx: the warning at QUIT counts what is left and quotes why" "$(e2e_log_new)" \
	'reversed: 2 recipient\(s\) for a\.example still queued at QUIT; e\.g\. host provider\.test\[[^]]*\] said: 450 4\.2\.1 <t[12]@a\.example>'
verify "4xx/5xx: only the accepted recipients arrive" "$SINK_DIR" okm verdicts=ok2@a.example
# Issue 13: each recipient's fate in odmrd's msg line, the customer's refusals with their codes.
expect_match "4xx/5xx: the msg line names the accepted recipient and the refused ones with their codes" \
	"$(e2e_log_new | grep ']: msg .* rcpts=3 ')" \
	' from=<s@d\.example> size=[0-9]+ rcpts=3 accepted=<ok2@a\.example> refused=(<t2@a\.example>:450,<r2@a\.example>:550|<r2@a\.example>:550,<t2@a\.example>:450) result=sent reply="250 2\.0\.0 Ok: stored as [0-9]+\.msg"$'
expect_eq "4xx/5xx: a message whose only recipient is refused: msg line result=data-refused, no size" \
	"$(e2e_log_new | grep -cE ']: msg .* from=<s@d\.example> size=- rcpts=1 accepted=- refused=<r1@a\.example>:550 result=data-refused reply="5[0-9][0-9] ')" 1
e2e_sink_stop
expect_eq "4xx/5xx: t1, t2 still queued, r1, r2 not" \
	"$(pf__jq 'print(" ".join(sorted(r["address"] for m in msgs for r in m["recipients"] if r["address"].endswith("@a.example"))))')" \
	"t1@a.example t2@a.example"
bounces() {
	# postqueue -j shows the null sender as "MAILER-DAEMON"
	pf__jq 'print(sum(1 for m in msgs if m["sender"] in ("", "MAILER-DAEMON")
                and [r["address"] for r in m["recipients"]] == ["s@d.example"]))'
}
bounced_2() { [ "$(bounces)" = 2 ]; }
check "5xx: Postfix queued 2 bounces from <> to the sender s@d.example" wait_for 20 bounced_2
expect_eq "5xx: maillog has status=bounced for r1 and r2" \
	"$(grep -oE 'to=<r[12]@a\.example>.*status=bounced' "$PF_LOG" | cut -d'>' -f1 | sort -u | tr '\n' ' ')" \
	"to=<r1@a.example to=<r2@a.example "
check "4xx: held again (2 messages + 2 bounces)" settle 4
e2e_sink_start verdicts-2
sess verdicts-2 alice a.example 0 'atrn=250 code=250 result=done'
verify "4xx: the temp-failed recipients arrive on the next ATRN, once" "$SINK_DIR" tf verdicts=t2@a.example
verify "4xx/5xx: over both sessions each accepted recipient exactly once" \
	"$WORK/sink-verdicts:$WORK/sink-verdicts-2" tf okm verdicts=ok2@a.example verdicts=t2@a.example
expect_eq "4xx: nothing left queued for a.example" "$(queued a.example)" 0
e2e_sink_stop
postsuper -c "$PF_CONF" -d ALL >/dev/null 2>&1

# --- 4. the customer drops in the middle of DATA ------------------------------------------------------

for i in 1 2 3; do
	printf 'From: s@x.test\nTo: d%s@a.example\nSubject: drop %s\n\nmessage %s\n' "$i" "$i" "$i" |
		inj "drop$i" s@x.test "d$i@a.example"
done
check "drop: 3 messages held" settle 3
e2e_sink_start drop-1 --drop-in-data 1
sess drop-1 alice a.example '[0-9]*' 'atrn=250 code=250 result=customer-lost'
dropped=$(awk '/< RCPT TO:</ { r = $0; sub(/.*< RCPT TO:</, "", r); sub(/>.*/, "", r) }
	/dropped connection/ { print r }' "$SINK_LOG")
expect_match "drop: the sink dropped a connection during DATA" "$dropped" '^d[123]@a\.example$'
expect_eq "drop: nothing stored by the sink" "$(e2e_sink_files)" 0
expect_eq "drop: one msg line says the message was dropped when the customer was lost" \
	"$(e2e_log_new | grep -cE ']: msg .* accepted=<d[123]@a\.example> refused=- result=dropped reason=customer-lost reply=-$')" 1
expect_eq "drop: all 3 still queued" "$(queued a.example)" 3
e2e_sink_stop
check "drop: held again" settle 3
e2e_sink_start drop-2
sess drop-2 alice a.example 0 'atrn=250 code=250 result=done'
verify "drop: the dropped message and the rest arrive exactly once on the next ATRN" \
	"$WORK/sink-drop-1:$WORK/sink-drop-2" 'drop?'
expect_eq "drop: nothing left queued" "$(queued a.example)" 0
e2e_sink_stop

# --- 6b. a second concurrent ATRN of the same customer -------------------------------------------------

printf 'From: s@x.test\nTo: cc@a.example\nSubject: concurrent\n\nheld while alice is busy\n' | inj conc s@x.test cc@a.example
printf 'From: s@x.test\nTo: cc@c.example\nSubject: bob meanwhile\n\nfor bob while alice holds her turn\n' |
	inj concbob s@x.test cc@c.example
check "concurrent: 2 messages held" settle 2
e2e_log_mark
# Session 1: ATRN a.example granted, then the "customer" sits on the turn without its greeting
# until the test creates $WORK/held.release (bounded at 60 s).
rm -f "$WORK/held.release"
cat >"$WORK/held.py" <<'EOF'
import os, sys, time
sys.path.insert(0, sys.argv[1])
from odmrclient import Client
c = Client("127.0.0.1", int(sys.argv[2]), timeout=20)
codes = [c.greeting.code, c.ehlo().code, c.auth_cram("alice", "alice-secret").code, c.atrn(["a.example"]).code]
end = time.time() + 60
while not os.path.exists(sys.argv[3]) and time.time() < end:
    time.sleep(0.05)
c.close()
print(" ".join(str(x) for x in codes))
EOF
# (a file, not a here-document: a background job's stdin is /dev/null)
spawn "$PY" "$WORK/held.py" "$LIB" "$MAIN_PORT" "$WORK/held.release" >"$WORK/held.out" 2>&1
HELD_PID=$BG_PID
if e2e_log_wait 'granted=a\.example: reversing' 20; then
	ok "concurrent: first session holds the turn"
	expect_eq "concurrent: while it runs, run_dir has its socket and locks" \
		"$(cd "$RUNDIR" && ls -A | sed 's/^\.user\..*/.user.*/' | sort | tr '\n' ' ')" \
		".dom.a.example .user.* a.example "
	expect_eq "concurrent: second ATRN of alice for the same domain -> 450" \
		"$(odmrc ehlo cram=alice:alice-secret atrn=a.example quit)" "220 250 235 450 221"
	expect_eq "concurrent: second ATRN of alice for her other domain -> 450" \
		"$(odmrc ehlo cram=alice:alice-secret atrn=b.example quit)" "220 250 235 450 221"
	expect_eq "concurrent: 450 logged as another session" \
		"$(e2e_log_new | grep -c 'another session for this customer is running')" 2
	# Bob's session meanwhile, in the background: it must not wait for alice's stalled turn.
	e2e_sink_start conc-bob
	rm -f "$WORK/conc-bob.res"
	(
		e2e_fetchmail conc-bob bob "${PW[bob]}" c.example
		echo "$FM_RC $FM_MS" >"$WORK/conc-bob.res"
	) &
	T_BG_PIDS+=("$!")
	# odmrd starts the flush just before its 250, so Postfix's lmtp client for alice's domain
	# waits at her socket for the greeting she has not sent; with the shipped master.cf
	# (odmrl maxproc default, one connection per destination) bob's delivery uses another
	# lmtp process and is not held up. Bob's session normally takes ~2 s.
	if wait_for 12 test -s "$WORK/conc-bob.res"; then
		got="done in $(cut -d' ' -f2 "$WORK/conc-bob.res") ms"
	else
		got="still running after 12 s"
		grep -E 'cc@(a|c)\.example' "$PF_LOG" | tail -2 | sed 's/^/    maillog: /'
	fi
	echo "# bob's session while alice holds her turn: $got"
	expect_eq "concurrent: bob's session meanwhile is not held up by alice's stalled turn" \
		"${got%% in *}" done
else
	fail "concurrent: first session holds the turn" "$(cat "$WORK/held.out")" "$(e2e_log_new)"
fi
touch "$WORK/held.release"
wait_for 30 sh -c "! kill -0 $HELD_PID 2>/dev/null"
if [ -n "${SINK_PID:-}" ]; then
	wait_for 60 test -s "$WORK/conc-bob.res"
	expect_eq "concurrent: bob's fetchmail exit status" "$(cut -d' ' -f1 "$WORK/conc-bob.res" 2>/dev/null)" 0
	verify "concurrent: bob got his message once" "$SINK_DIR" concbob
	e2e_sink_stop
fi
expect_eq "concurrent: first client saw 220 250 235 250" "$(cat "$WORK/held.out")" "220 250 235 250"
left=$(e2e_leftovers "$RUNDIR" "$RUNNER_ERE" "$ODMRD_ERE")
expect_eq "concurrent: nothing left after the abandoned turn" "$left" ""
expect_eq "concurrent: the message is still queued" "$(queued a.example)" 1
check "concurrent: held again" settle 1
e2e_sink_start conc
sess conc alice a.example 0 'atrn=250 code=250 result=done'
verify "concurrent: then delivered once" "$SINK_DIR" conc
e2e_sink_stop

# --- 7. mail queued before its domain was a fast-flush domain (issue 13) ------------------------
# postqueue -s only knows mail deferred after the domain entered fast_flush_domains (before, odmrd
# answered 250, moved nothing and logged messages=0). The probe's queue IDs are released with
# postqueue -i.
pf_conf fast_flush_domains= || fail "pf_conf fast_flush_domains="
printf 'From: s@x.test\nTo: e1@a.example, e2@b.example\nSubject: early\n\nqueued before the set-up\n' |
	inj early s@x.test e1@a.example e2@b.example
check "early: held while a.example and b.example are no fast-flush domains" settle 1
pf_conf 'fast_flush_domains=$relay_domains' || fail "pf_conf fast_flush_domains"
e2e_sink_start early
sess early alice a.example,b.example 0 'atrn=250 code=250 result=done'
verify "early: mail queued before the domain was set up is delivered, once" "$SINK_DIR" early
expect_eq "early: nothing left queued for a.example, b.example" "$(queued a.example) $(queued b.example)" "0 0"
e2e_sink_stop

# --- 8. mail injected during a session: delivered in it or left queued, never lost or doubled ---
for i in $(seq -w 1 30); do
	printf 'From: s@x.test\nTo: mid%s@a.example\nSubject: mid %s\n\nbefore the session\n' "$i" "$i" |
		inj "mid-$i" s@x.test "mid$i@a.example"
done
check "mid: 30 messages held" settle 30
e2e_sink_start mid
# Once the customer has stored its first message, one more is queued for a.example.
(
	wait_for 60 grep -q ' stored ' "$SINK_LOG" &&
		printf 'From: s@x.test\nTo: new@a.example\nSubject: mid new\n\nqueued during the session\n' |
		inj mid-new s@x.test new@a.example
) &
MID_INJ=$!
T_BG_PIDS+=("$MID_INJ")
sess mid alice a.example 0 'atrn=250 code=250 result=done'
wait "$MID_INJ"
check "mid: a message was queued during the session" test -f "$E2E_MANIFEST/mid-new.env"
if e2e_verify "$SINK_DIR" 'mid-*' >/dev/null; then
	echo "# mid: the message queued during the session arrived in that session"
else
	echo "# mid: the message queued during the session was left queued: $(queued a.example) recipient(s)"
	e2e_sink_stop
	settle 1 >/dev/null
	e2e_sink_start mid-2
	sess mid-2 alice a.example 0 'atrn=250 code=250 result=done'
fi
verify "mid: every message exactly once, the one queued during the session included" \
	"$(find "$WORK" -maxdepth 1 -type d -name 'sink-mid*' | sort | paste -sd:)" 'mid-*'
expect_eq "mid: nothing left queued" "$(queued a.example)" 0
e2e_sink_stop

# --- 9. a customer added while Postfix runs: one odmrd-map run, no reload ------------------------------

printf '%s\n' 'erin f.example' >>"$WORK/customers"
check "new customer: odmrd-map rebuilds the map and Postfix's table" pf_map "$WORK/customers"
printf '%s' "${PW[erin]}" | saslpasswd2 -f "$WORK/sasldb2" -u provider.test -p -c erin
# Postfix's daemons notice the changed hash: table and restart themselves: mail for f.example is
# held for odmrd (not refused as "relay access denied" or routed elsewhere).
printf 'From: s@x.test\nTo: n@f.example\nSubject: new customer\n\nfirst mail for erin\n' | inj newcust s@x.test n@f.example
check "new customer: held for odmrd without a Postfix reload" settle 1
expect_eq "new customer: held by defer_transports, i.e. routed to odmrl" \
	"$(pf__jq 'print(",".join(r.get("delay_reason", "") for m in msgs for r in m["recipients"]))')" \
	"deferred transport"
e2e_sink_start newcust
sess newcust erin f.example 0 'atrn=250 code=250 result=done'
verify "new customer: erin collects it" "$SINK_DIR" newcust
e2e_sink_stop

# --- 10. credentials from a shared store: Cyrus SASL's sql auxprop on SQLite --------------------------

# frank's password is in an SQLite table, not in a sasldb (libsasl2-modules-sql, sql_engine sqlite3):
# the same plugin reads PostgreSQL or MySQL with another sql_engine (README, "More than one host").
rm -f "$WORK/users.sqlite"
sqlite3 "$WORK/users.sqlite" "CREATE TABLE users (name TEXT NOT NULL, realm TEXT NOT NULL, password TEXT NOT NULL);
	INSERT INTO users VALUES ('frank', 'provider.test', '${PW[frank]}');" || fail "sqlite3 creates the user table"
printf '%s\n' 'frank g.example' >>"$WORK/customers"
check "sql: frank's domain added with odmrd-map" pf_map "$WORK/customers"
write_conf "$WORK/sql.conf" run_dir="$RUNDIR" postqueue=/usr/sbin/postqueue postfix_config_dir="$PF_CONF" \
	-sasl_sasldb_path sasl_auxprop_plugin=sql sasl_sql_engine=sqlite3 sasl_sql_database="$WORK/users.sqlite" \
	"sasl_sql_select=SELECT password FROM users WHERE name = '%u' AND realm = '%r'"
start_odmrd "$WORK/sql.conf" || t_summary
SQL_PORT=$PORT
PORT=$MAIN_PORT
printf 'From: s@x.test\nTo: q@g.example\nSubject: sql user\n\nfor frank, whose password is in SQLite\n' |
	inj sqlmail s@x.test q@g.example
check "sql: 1 message held for g.example" settle 1
e2e_sink_start sql
e2e_log_mark
e2e_fetchmail sql-wrong frank wrong-password g.example "$SQL_PORT"
expect_match "sql: a wrong password -> 535, fetchmail exit 3 or 128 (got $FM_RC)" "$FM_RC" '^(3|128)$'
check "sql: odmrd logged the failure with the user tried" e2e_log_wait 'AUTH CRAM-MD5 failed from 127\.0\.0\.1 user=frank: 535 ' 5
sess sql frank g.example 0 'atrn=250 code=250 result=done' "$SQL_PORT"
check "sql: frank authenticated by the sql auxprop (CRAM-MD5)" \
	grep -q 'AUTH CRAM-MD5 ok from 127\.0\.0\.1: user=frank@provider\.test$' "$WORK/odmrd.log"
verify "sql: frank collects his mail with fetchmail" "$SINK_DIR" sqlmail
e2e_sink_stop

# --- the hung postqueue (started at set-up) ---------------------------------------------------------

if [ -n "$HANG_CLIENT" ] && wait_for 150 sh -c "! kill -0 $HANG_CLIENT 2>/dev/null"; then
	# A postqueue that hangs is stopped at odmrd's 60 s command deadline and counts as failed.
	expect_eq "hung postqueue: ATRN answered 451" \
		"$(cat "$WORK/hang/client.out")" "220 250 235 451 221 EOF"
	ms=$(cat "$WORK/hang/client.out.ms" 2>/dev/null || echo 999999)
	expect_eq "hung postqueue: answered within odmrd's 60 s command timeout" \
		"$([ "$ms" -lt 70000 ] && echo yes || echo "no, after $ms ms")" yes
	pid=$(cat "$WORK/hang/postqueue.pid" 2>/dev/null)
	st=$(sed 's/.*) \(.\).*/\1/' "/proc/${pid:-0}/stat" 2>/dev/null)
	expect_eq "hung postqueue: not left running" "$([ -n "$st" ] && [ "$st" != Z ] && echo "pid $pid state $st")" ""
else
	fail "hung postqueue: the client finished" "$(cat "$WORK/hang/client.out" 2>/dev/null)"
fi

# --- 7. the same over TLS: real fetchmail --ssl --sslcertck, odmrd in wrapper mode ------------------
# The reversed state runs inside the TLS session, and fetchmail --ssl stalls on lines that share a
# TLS record with an earlier one (shared/notes/fetchmail.md): the content set and 200 messages
# again, each exactly once, byte-for-byte, nothing of bob's, nothing left behind.

tls_mk_pki "$WORK/pki" || fail "TLS: test PKI"
write_conf "$WORK/tls.conf" run_dir="$RUNDIR" postqueue=/usr/sbin/postqueue postfix_config_dir="$PF_CONF" \
	tls_cert_file="$WORK/pki/srv-ec.crt" tls_key_file="$WORK/pki/srv-ec.key" \
	tls_module="$TOP/odmrd-tls.so" tls_wrappermode=yes
start_odmrd "$WORK/tls.conf" || t_summary
TLS_PORT=$PORT
PORT=$MAIN_PORT
e2e_reinject pf_send tls dots latin1 utf8 big twodom nullsender
for i in $(seq -w 1 200); do
	e2e_reinject pf_send tls "bulk-$i" || { fail "TLS: queue bulk message $i"; break; }
done
e2e_reinject pf_send tls bobonly
check "TLS: 207 messages held" settle 207
E2E_FM_OPTS="ssl sslcertck sslcertfile $WORK/pki/ca.crt sslcommonname provider.test"
e2e_sink_start tls-alice
sess tls-alice alice a.example,b.example 0 'atrn=250 code=250 result=done' "$TLS_PORT"
TLS_MS=$FM_MS
verify "TLS: content set and 200 messages through fetchmail --ssl, each once, intact" "$SINK_DIR" \
	tls-dots tls-latin1 tls-utf8 tls-big tls-twodom tls-nullsender 'tls-bulk-*'
expect_match "TLS: fetchmail verified the certificate (sslcertck) and used TLS" "$(cat "$FM_OUT")" \
	'(SSL|TLS) connection|Server certificate'
expect_match "TLS: odmrd's summary line says tls=TLSv1.3" "$(e2e_log_new | grep 'session peer=')" \
	'result=done tls=TLSv1\.3/TLS_[A-Z0-9_]+ cert=-$'
expect_eq "TLS: odmrd counted 207 messages (one LMTP transaction per message and domain)" "$MSGS" 207
expect_eq "TLS: nothing left queued for alice, bob's message still queued" \
	"$(queued a.example) $(queued b.example) $(queued c.example)" "0 0 1"
echo "# fetchmail --ssl, content set (5 MB) + 200 messages in one TLS session: ${TLS_MS} ms"
e2e_sink_stop
check "TLS: bob's message held" settle 1
e2e_sink_start tls-bob
sess tls-bob bob c.example 0 'atrn=250 code=250 result=done' "$TLS_PORT"
verify "TLS: bob gets his message once, nothing of alice's" "$SINK_DIR" tls-bobonly
e2e_sink_stop
E2E_FM_OPTS=

# --- whole run ----------------------------------------------------------------------------------

all_sinks=$(find "$WORK" -maxdepth 1 -type d -name 'sink-*' | sort | paste -sd:)
verify "whole run: every injected recipient delivered exactly once (except the rejected ones)" \
	"$all_sinks" dots latin1 utf8 big twodom nullsender 'bulk-*' mixed bobonly forbob foralice \
	tf okm verdicts=ok2@a.example verdicts=t2@a.example 'drop?' conc concbob early 'mid-*' newcust sqlmail 'tls-*'
expect_eq "whole run: queue empty" "$(pf_queue_json | wc -l)" 0
check_no_crashes

echo "# sessions (label, user, fetchdomains, fetchmail rc, odmrd summary, counts, wall time):"
printf '#   %s\n' "${STATS[@]}"
t_summary
