#!/bin/bash
# tests/t-31-sendmail.sh - odmrd end to end: a real private Sendmail holding the mail, odmrd under
# inetd1.py (mta = sendmail), real fetchmail as the ODMR customer relaying into smtpsink.py.
#
# Why: the Sendmail hand-off - probe "sendmail -bp -v" counting exact-domain recipients,
# foreground queue runs "sendmail -qf -qIID..." for exactly those queue IDs (two runs at once on
# disjoint IDs), one [IPC] mailer per
# domain connecting to run_dir/<domain>, odmrd relaying those connections over the customer's
# session - can only be trusted against the real thing. Held mail must reach the right customer
# exactly once with envelope and body intact (dot-stuffing, 8-bit, 5 MB, 200 messages in one
# session), never cross to another customer (also not through -qR's substring match), stay queued
# whenever the customer did not take it (4xx, dropped in DATA, local MTA down), bounce on 5xx, and
# every session must end with no odmrd, no sendmail, no socket and no lock left behind. Also the
# refusals (453, 450, 451), two customers at the same time, and what the probe cannot see.
#
# Customers: alice (a.example, b.example), bob (c.example); mallory (a.example.evil) and trudy
# (a.example.com) never log in: their sockets never exist, so their mail stays queued. -qR@a.example
# selected them as substrings; odmrd now runs only the queue IDs of exact-domain recipients.
# Sendmail's per-domain mailers and routes are odmrd-map's .mc fragment from that customer list,
# in a .cf that keeps host status on disk as Debian's does.
# Sendmail: tests/lib/sendmail.sh (dpkg -x tree, private .cf/queue/mailertable, run by
# $SM_SENDMAIL in a private namespace), in /var/cache/odmrd-test/t-31-sendmail.XXXXXX (sendmail
# refuses maps and sockets below a group/world-writable directory such as /tmp), removed at exit
# unless KEEP=1. Customer side and checks: tests/lib/e2e.sh. Logs stay in tests/work/t-31-sendmail.
# Prints one ok/FAIL line per case, a table of per-session counts, and "N passed, N failed".
# Needs root, fetchmail, sasl2-bin. T31_LIMIT (seconds, default 300) bounds the whole suite.

# One run at a time: common.sh takes a per-suite lock before it empties the work directory.
. "$(dirname "$0")/lib/common.sh"
# shellcheck source=tests/lib/sendmail.sh
. "$LIB/sendmail.sh"
# shellcheck source=tests/lib/e2e.sh
. "$LIB/e2e.sh"
. "$LIB/tls.sh"

info() { printf '# %s\n' "$*"; }
declare -A PW=([alice]=alice-secret [bob]=bob-secret)
STATS=()
SMBASE=

t31_cleanup() {
	local rc=$? p
	trap - EXIT
	for p in "${T_BG_PIDS[@]}"; do
		kill_tree "$p"
	done
	sm_stop
	if [ -n "$SMBASE" ]; then
		if [ "${KEEP:-0}" = 1 ]; then echo "# kept $SMBASE"; else rm -rf "$SMBASE"; fi
	fi
	exit "$rc"
}
trap t31_cleanup EXIT
trap 'fail "suite interrupted or over T31_LIMIT (${T31_LIMIT:-300} s)"; t_summary' INT TERM

# Whole-suite watchdog: every step below is bounded too, this is the backstop.
spawn bash -c "sleep ${T31_LIMIT:-300}; echo 't-31-sendmail: T31_LIMIT reached' >&2; kill -TERM $$"
T_START=$EPOCHREALTIME

if [ "$(id -u)" != 0 ]; then
	fail "runs as root (private Sendmail instance)"
	t_summary
fi
for tool in fetchmail saslpasswd2 unshare flock; do
	command -v "$tool" >/dev/null || { fail "$tool is installed"; t_summary; }
done

# --- helpers -------------------------------------------------------------------------------------

# Milliseconds since A (an $EPOCHREALTIME value).
ms_since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d", (b - a) * 1000 }'; }

# smq FROM RCPT... < message: queue only (-odq), so nothing is tried before a test asks for it.
smq() { timeout 30 "$SM_SENDMAIL" -C "$SM_CF" -odq -oi -f "$1" -- "${@:2}"; }
# inj ID FROM RCPT... < message: record in the e2e manifest and queue.
inj() { e2e_inject smq "$@"; }

# smtp_batch FROM RCPT... < message: append one SMTP transaction to $WORK/batch.smtp.
smtp_batch() {
	{
		printf 'MAIL FROM:<%s>\r\n' "$1"
		shift
		printf 'RCPT TO:<%s>\r\n' "$@"
		printf 'DATA\r\n'
		sed -e 's/^\./../' -e 's/$/\r/'
		printf '.\r\n'
	} >>"$WORK/batch.smtp"
}

# mk_msg ID [BODY-LINE...]: a small message (e2e_inject adds the X-E2E-Id header).
mk_msg() {
	printf 'From: sender@sender.example\nTo: customer@a.example\nSubject: test %s\n\nbody of %s\n' "$1" "$1"
	shift
	[ $# -gt 0 ] && printf '%s\n' "$@"
	return 0
}

# smlist [-qR@DOMAIN]: the queue listing, verbose (-v prints recipients in full; without it
# sendmail cuts them to 38 characters), bounded.
smlist() { timeout 30 "$SM_SENDMAIL" -C "$SM_CF" -bp -v "$@" </dev/null 2>&1; }
# queued DOMAIN: recipients still queued whose domain is exactly DOMAIN (sendmail.sh's count,
# run bounded; it uses the non-verbose listing, see case 7).
queued() {
	timeout 30 bash -c '. "$1"; SM_CF=$2 SM_SENDMAIL=$3 sm_count_for_domain "$4"' _ \
		"$LIB/sendmail.sh" "$SM_CF" "$SM_SENDMAIL" "$1"
}
queue_state() {
	printf 'a=%s b=%s c=%s evil=%s' "$(queued a.example)" "$(queued b.example)" \
		"$(queued c.example)" "$(queued a.example.evil)"
}
# attempts ADDR: Sendmail's delivery-attempt count (the qf file's N line) of the envelope to ADDR.
attempts() {
	local qf
	qf=$(grep -lF "R" "$SM_QUEUE"/qf* 2>/dev/null | xargs grep -lE "^R[^:]*:$1\$" 2>/dev/null | head -1)
	[ -n "$qf" ] && sed -n 's/^N//p' "$qf" || echo none
}
# settle N: exactly N envelopes queued, none in delivery.
settle() { sm_wait_queued "$1" 30 2>&1; }
# envelopes: queued envelopes now.
envelopes() { timeout 30 bash -c '. "$1"; SM_CF=$2 SM_SENDMAIL=$3 sm_queued_total' _ \
	"$LIB/sendmail.sh" "$SM_CF" "$SM_SENDMAIL"; }

# sm_feed_batch: queue the transactions in $WORK/batch.smtp through one "sendmail -bs -odq"
# (replies in $WORK/batch.out), then empty the batch.
sm_feed_batch() {
	# sendmail -bs refuses a client that talks before its greeting ("554 SMTP protocol error"), so
	# feed it one command at a time, waiting for each reply.
	timeout 120 "$PY" - "$WORK/batch.smtp" "$SM_SENDMAIL" -C "$SM_CF" -bs -odq >"$WORK/batch.out" 2>&1 <<'PY'
import subprocess, sys
batch = open(sys.argv[1], "rb").read().split(b"\r\n")[:-1]
p = subprocess.Popen(sys.argv[2:], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
def reply():
    while True:
        line = p.stdout.readline()
        sys.stdout.write(line.decode("utf-8", "replace"))
        if len(line) < 4 or line[3:4] != b"-":
            return line
def send(lines):
    p.stdin.write(b"".join(l + b"\r\n" for l in lines))
    p.stdin.flush()
    return reply()
reply()
send([b"EHLO localhost"])
i = 0
while i < len(batch):
    if send([batch[i]]).startswith(b"354"):
        j = batch.index(b".", i + 1)
        send(batch[i + 1:j + 1])
        i = j
    i += 1
send([b"QUIT"])
p.wait()
PY
	rm -f "$WORK/batch.smtp"
}

# sinks NAME...: the sink directories of these e2e sinks, colon-joined (for e2e_verify).
sinks() { local IFS=:; set -- "${@/#/$WORK/sink-}"; echo "$*"; }

# atrn_reply: the last ODMR reply code fetchmail saw.
atrn_reply() { grep -oE 'ODMR< [0-9]{3}' "$FM_OUT" | tail -1 | cut -c7-; }
# log_field KIND FIELD: FIELD's value on this session's "KIND peer=" line (session/reversed).
log_field() { printf '%s\n' "$SESSION_LOG" | grep -E ": $1 peer=" | tail -1 | grep -oE " $2=[^ ]*" | cut -d= -f2-; }

# aftermath LABEL: case 6 - nothing of the session is left: no odmrd (e2e_leftovers), no sendmail
# process of this instance (there is no daemon: any is a leftover runner), nothing in run_dir
# (sockets, .user.*/.dom.* locks), nothing open under it.
aftermath() {
	local left
	left=$(e2e_leftovers "$RUNDIR" '^t-31: sendmail runners are found by sm_pids$')
	wait_for 10 sm_idle || left="$left sendmail still running: $(sm_pids | tr '\n' ' ')"
	expect_eq "$1: no odmrd, sendmail, socket or lock left after the session" "$left" ""
}
sm_idle() { [ -z "$(sm_pids)" ]; }

# sess LABEL USER DOMAINS WANT-RC WANT-ATRN-ERE [ODMR-PORT]: one fetchmail run into the current
# sink, its exit status and the ATRN reply it saw, then case 6, and odmrd's per-message lines
# (issue 13): one result=sent line per message the sink stored, matching it (e2e_msg_check).
# LABEL names a directory: no "/". Sets SESSION_LOG, FM_RC, FM_MS, FM_OUT.
sess() {
	local label=$1 user=$2 doms=$3 wrc=$4 watrn=$5 port=${6:-$MAIN_PORT} stored sent
	stored=$(e2e_sink_files)
	e2e_log_mark
	e2e_fetchmail "$label" "$user" "${PW[$user]}" "$doms" "$port"
	wait_sessions 30 || info "an odmrd session was still running 30 s after fetchmail ended"
	stored=$(($(e2e_sink_files) - stored))
	SESSION_LOG=$(e2e_log_new)
	sent=$(printf '%s\n' "$SESSION_LOG" | grep -c ']: msg .* result=sent ')
	if [ "$stored" -gt 0 ] || [ "$sent" -gt 0 ]; then
		expect_eq "$label: one msg line per stored message ($stored), its from=, size= and accepted= match the sink" \
			"$(e2e_msg_check "$SINK_DIR")" "sent=$stored"
		expect_eq "$label: msg lines with result=sent = the summary's messages=" "$sent" \
			"$(log_field reversed messages)"
	fi
	expect_match "$label: ATRN $watrn, fetchmail exit $wrc" "$(atrn_reply):$FM_RC" "^$watrn:$wrc\$"
	printf '%s\n' "$(atrn_reply):$FM_RC" | grep -Eq "^$watrn:$wrc\$" ||
		sed 's/^/    fetchmail: /' "$FM_OUT" | tail -15
	aftermath "$label"
	# Issue 12: QUIT as soon as the mail is out (within 0.3 s of the last end-of-data reply).
	local tail=-
	if [ "$(log_field reversed result)" = done ] && [ "$(e2e_sink_files)" -gt 0 ]; then
		tail=$(e2e_tail_ms)
		expect_eq "$label: QUIT within 300 ms of the last end-of-data reply (customer side: $tail ms)" \
			"$([ "$tail" != - ] && [ "$tail" -lt 300 ] && echo yes)" yes
	fi
	STATS+=("$(printf '%-34s %-6s %-20s rc=%-3s %-30s messages=%-4s sink=%-4s %6d ms tail %s ms' \
		"$label" "$user" "$doms" "$FM_RC" "$(e2e_session_fields)" "$(log_field reversed messages)" \
		"$(e2e_sink_files)" "$FM_MS" "$tail")")
}

# verify LABEL SINKDIRS SPEC...: the sink(s) hold exactly the deliveries SPEC names, each once,
# envelope and body intact, and nothing else.
verify() {
	local label=$1 out
	shift
	if out=$(e2e_verify "$@"); then
		ok "$label (${out%%$'\n'*})"
	else
		fail "$label" "$out"
	fi
}

# As root, fetchmail locks /var/run/fetchmail.pid whatever FETCHMAILHOME says, so two fetchmail
# runs at once (case 2c, or another suite running meanwhile) fail with exit 8 ("another
# foreground fetchmail is running"). e2e_fetchmail passes no --pidfile: add one through PATH.
if ! grep -q -- '--pidfile' "$LIB/e2e.sh"; then
	mkdir -p "$WORK/shim"
	printf '#!/bin/sh\nexec %s --pidfile "$FETCHMAILHOME/fetchmail.pid" "$@"\n' \
		"$(command -v fetchmail)" >"$WORK/shim/fetchmail"
	chmod 755 "$WORK/shim/fetchmail"
	PATH=$WORK/shim:$PATH
fi

# --- set-up --------------------------------------------------------------------------------------

mkdir -p /var/cache/odmrd-test
chmod 755 /var/cache/odmrd-test
SMBASE=$(mktemp -d /var/cache/odmrd-test/t-31-sendmail.XXXXXX) || { fail "mktemp"; t_summary; }
chmod 755 "$SMBASE"
RUNDIR=$SMBASE/run
# mallory and trudy own a.example.evil and a.example.com (and never log in): -qR@a.example matched
# them as substrings.
mk_map "$WORK/customers" 'alice a.example, b.example' 'bob c.example' 'mallory a.example.evil' \
	'trudy a.example.com' ||
	{ fail "odmrd-map builds the map"; t_summary; }
# Sendmail's mailers, routes and relay permissions: odmrd-map's .mc fragment from the same list.
if ! sm_setup "$SMBASE/sm" "$RUNDIR" -m "$WORK/customers" >"$WORK/sm_setup.out" 2>&1; then
	fail "sm_setup: private Sendmail instance" "$(tail -20 "$WORK/sm_setup.out")"
	t_summary
fi
info "Sendmail instance $SM_WORK, run_dir $RUNDIR"
expect_eq "odmrd-map's fragment routes every customer domain to its own mailer" \
	"$(for d in a.example b.example c.example a.example.evil a.example.com; do
		printf '/parse u@%s\n' "$d" | "$SM_SENDMAIL" -C "$SM_CF" -bt | grep -o 'mailer [^,]*, host [^,]*'
	done | paste -sd' ')" \
	"mailer odmr_a_example, host localhost mailer odmr_b_example, host localhost mailer odmr_c_example, host localhost mailer odmr_a_example_evil, host localhost mailer odmr_a_example_com, host localhost"
expect_eq "... and allows relaying to them (class R)" \
	"$(printf '$={R}\n' | "$SM_SENDMAIL" -C "$SM_CF" -bt | grep -oE '[a-z.]+\.(example|evil|com)' | sort | paste -sd' ')" \
	"a.example a.example.com a.example.evil b.example c.example"
mk_sasldb "$WORK/sasldb2" provider.test alice "${PW[alice]}" bob "${PW[bob]}" ||
	{ fail "saslpasswd2 builds the sasldb"; t_summary; }

# sm_conf FILE [KEY=VALUE...]: an odmrd.conf for this Sendmail instance.
sm_conf() {
	local f=$1
	shift
	write_conf "$f" mta=sendmail sendmail="$SM_SENDMAIL" sendmail_cf="$SM_CF" run_dir="$RUNDIR" \
		-postqueue "$@"
}
sm_conf "$WORK/odmrd.conf"
start_odmrd "$WORK/odmrd.conf" || t_summary
MAIN_PORT=$PORT
# 451: a sendmail that fails, one that does not exist.
sm_conf "$WORK/false.conf" sendmail=/bin/false
start_odmrd "$WORK/false.conf" || t_summary
FALSE_PORT=$PORT
sm_conf "$WORK/missing.conf" sendmail="$SMBASE/no/such/sendmail"
start_odmrd "$WORK/missing.conf" || t_summary
MISSING_PORT=$PORT
# A sendmail whose probe (-bp) works but whose queue run (-qf) fails.
mkdir -p "$SMBASE/bin"
cat >"$SMBASE/bin/sendmail-noqrun" <<EOF
#!/bin/sh
for a in "\$@"; do [ "\$a" = -qf ] && { echo "sendmail-noqrun: no queue run (test)" >&2; exit 75; }; done
exec "$SM_SENDMAIL" "\$@"
EOF
chmod 755 "$SMBASE/bin/sendmail-noqrun"
sm_conf "$WORK/noqrun.conf" sendmail="$SMBASE/bin/sendmail-noqrun"
start_odmrd "$WORK/noqrun.conf" || t_summary
NOQRUN_PORT=$PORT

# ==================================================================================================
# 5a: ATRN with an empty queue -> 453, fetchmail exit 0, no connection to the local MTA.
# ==================================================================================================
e2e_sink_start c5a || t_summary
sess "5a: empty queue" alice a.example,b.example 0 453
expect_eq "5a: no connection to the customer's MTA" "$(e2e_sink_conns)" 0
expect_match "5a: odmrd logged the 453" "$SESSION_LOG" 'asked=a\.example,b\.example: 453 no mail queued'

# ==================================================================================================
# 1: every queued message for the granted domains arrives exactly once, intact.
# ==================================================================================================
# Dot-stuffing: lines ".", "..", "...", ".x", and a body that ends in a lone "." line.
mk_msg c1-dots '.' '..' '...' '.leading dot' ' .space dot' 'middle . dot' '.' 'last line follows' '.' |
	inj c1-dots sender@sender.example u1@a.example
# 8-bit body: every octet 0x80-0xff (no CR/LF among them) and some UTF-8.
{
	mk_msg c1-8bit
	printf 'gr\xc3\xbc\xc3\x9fe, \xe6\x97\xa5\xe6\x9c\xac, \xf0\x9f\x93\xa8\n'
	"$PY" -c 'import sys
for s in range(0x80, 0x100, 32):
    sys.stdout.buffer.write(bytes(range(s, s + 32)) + b"\n")'
	printf '.\xe9t\xe9 starts with a dot\n'
} | inj c1-8bit sender@sender.example u2@b.example
# 5 MB: 76-octet lines, every 50th starting with a dot.
"$PY" -c 'import sys, hashlib
w = sys.stdout.buffer
w.write(b"From: sender@sender.example\nSubject: big\n\n")
n = i = 0
while n < 5 * 1024 * 1024:
    h = hashlib.sha1(str(i).encode()).hexdigest()
    line = ("%s%07d %s %s\n" % ("." if i % 50 == 0 else "x", i, h, h[:26])).encode()
    w.write(line)
    n += len(line)
    i += 1' | inj c1-big sender@sender.example big@a.example
# One envelope, recipients in both granted domains: two [IPC] connections at once.
mk_msg c1-multi 'one envelope, two domains' |
	inj c1-multi other@sender.example r1@a.example r2@a.example r3@b.example
settle 4 || fail "1: 4 envelopes queued"
info "1: queued $(queue_state)"
e2e_sink_start c1 || t_summary
sess "1: dots, 8-bit, 5 MB, two domains" alice a.example,b.example 0 250
verify "1: dot-stuffed, 8-bit, 5 MB and two-domain messages: each recipient once, intact" \
	"$(sinks c1)" c1-dots c1-8bit c1-big c1-multi
expect_eq "1: queue empty for a.example and b.example" "$(queued a.example):$(queued b.example)" "0:0"
expect_eq "1: odmrd: messages=5 rcpts_ok=6 result=done" \
	"$(log_field reversed messages) $(log_field reversed rcpts_ok) $(log_field reversed result)" "5 6 done"
expect_match "1: session summary: granted=a.example,b.example ... result=done" \
	"$(printf '%s\n' "$SESSION_LOG" | grep ': session peer=' | tail -1)" \
	'user=alice@provider\.test .*asked=a\.example,b\.example granted=a\.example,b\.example( [a-z_]+=[^ ]*)* result=done tls=- cert=-$'

# ---- 200 small messages in one session ----
# Queued through one "sendmail -bs" (SMTP on stdin) rather than 200 sendmail runs (~80 ms each).
# The sender is in the instance's own domain: over SMTP sendmail checks that the sender domain
# resolves (553 5.1.8 for sender.example; the private instance has no DNS).
t0=$EPOCHREALTIME
rm -f "$WORK/batch.smtp"
for i in $(seq -w 1 200); do
	mk_msg "n$i" | e2e_inject smtp_batch "n$i" "sender@$SM_HOSTNAME" "n$i@a.example"
done
sm_feed_batch
expect_eq "1/200: sendmail -bs accepted 200 messages" "$(grep -c '^250 2.0.0 .* Message accepted' "$WORK/batch.out")" 200
settle 200 || fail "1/200: 200 envelopes queued ($(queue_state))"
info "1/200: 200 messages queued in $(ms_since "$t0") ms"
e2e_sink_start c1-200 || t_summary
sess "1: 200 small messages" alice a.example 0 250
T200_MS=$FM_MS
verify "1: 200 messages in one session (${T200_MS} ms): each once, intact" "$(sinks c1-200)" 'n*'
# One connection per queue run; 200 IDs shared out between two runs at once (100 + 100).
expect_eq "1: 200: odmrd messages=200 mta_conns=2 result=done, queue empty" \
	"$(log_field reversed messages) $(log_field reversed mta_conns) $(log_field reversed result) $(queued a.example)" \
	"200 2 done 0"

# ==================================================================================================
# 2: another customer's mail never crosses.
# ==================================================================================================
mk_msg c2-mix 'to alice and bob' | inj c2-mix sender@sender.example m@a.example m@c.example
mk_msg c2-evil 'to a.example.evil' | inj c2-evil sender@sender.example x@a.example.evil
mk_msg c2-bob 'to bob only' | inj c2-bob sender@sender.example b1@c.example
mk_msg c2-com 'to a.example.com' | inj c2-com sender@sender.example bob@a.example.com
settle 4 || fail "2: 4 envelopes queued"
expect_eq "2: bob@a.example.com and x@a.example.evil queued, never tried" \
	"$(attempts bob@a.example.com):$(attempts x@a.example.evil)" "0:0"
e2e_sink_start c2-alice || t_summary
sess "2: alice, mixed envelope, .evil queued" alice a.example,b.example 0 250
# Issue 11 #7: -qR@a.example would have made Sendmail try these too (a substring match).
expect_eq "2: alice's a.example run never attempted bob@a.example.com nor x@a.example.evil" \
	"$(attempts bob@a.example.com):$(attempts x@a.example.evil)" "0:0"
verify "2: alice gets m@a.example of the mixed envelope, nothing of c.example or a.example.evil" \
	"$(sinks c2-alice)" c2-mix=m@a.example
expect_eq "2: alice's sink never saw a RCPT for c.example or a.example.evil" \
	"$(grep -ciE 'RCPT TO:<[^>]*@(c\.example|a\.example\.evil)>' "$SINK_LOG")" 0
expect_eq "2: m@c.example, b1@c.example and x@a.example.evil still queued" \
	"$(queued c.example):$(queued a.example.evil):$(queued a.example)" "2:1:0"
e2e_sink_start c2-bob || t_summary
sess "2: bob" bob c.example 0 250
verify "2: bob gets m@c.example and b1@c.example, nothing else" "$(sinks c2-bob)" c2-mix=m@c.example c2-bob
verify "2: over both sessions every c2 recipient once, x@a.example.evil never" \
	"$(sinks c2-alice c2-bob)" c2-mix c2-bob
expect_eq "2: x@a.example.evil still queued, c.example empty" \
	"$(queued a.example.evil):$(queued c.example)" "1:0"

# bob@a.example.com has served: out of the queue, so the envelope counts below stay as they were.
for f in $(grep -lE '^R[^:]*:bob@a\.example\.com$' "$SM_QUEUE"/qf*); do
	rm -f "$f" "$SM_QUEUE/df${f##*/qf}"
done
# 5b: only x@a.example.evil queued (-qR@a.example matches it as a substring): 453 for a.example.
e2e_sink_start c5b || t_summary
sess "5b: only a.example.evil queued" alice a.example 0 453
expect_eq "5b: no connection to the customer's MTA; the .evil message still queued" \
	"$(e2e_sink_conns):$(queued a.example.evil)" "0:1"

# ---- 2c: alice and bob at the same time, with envelopes shared between them ----
mk_msg c2c-ac | inj c2c-ac sender@sender.example k1@a.example k1@c.example
mk_msg c2c-bc | inj c2c-bc sender@sender.example k2@b.example k2@c.example
mk_msg c2c-a | inj c2c-a sender@sender.example k3@a.example
mk_msg c2c-c | inj c2c-c sender@sender.example k4@c.example
settle 5 || fail "2c: envelopes queued" # + .evil
e2e_sink_start c2c-alice || t_summary
A_SINK=$SINK_PORT
e2e_sink_start c2c-bob || t_summary
B_SINK=$SINK_PORT
e2e_log_mark
t0=$EPOCHREALTIME
(SINK_PORT=$A_SINK e2e_fetchmail 2c-alice alice "${PW[alice]}" a.example,b.example "$MAIN_PORT"
	echo "$FM_RC" >"$WORK/2c-alice.rc") &
pa=$!
(SINK_PORT=$B_SINK e2e_fetchmail 2c-bob bob "${PW[bob]}" c.example "$MAIN_PORT"
	echo "$FM_RC" >"$WORK/2c-bob.rc") &
pb=$!
wait "$pa" "$pb"
wait_sessions 30 || info "an odmrd session was still running 30 s after fetchmail ended"
info "2c: concurrent sessions $(ms_since "$t0") ms; files alice=$(e2e_sink_files "$WORK/sink-c2c-alice") bob=$(e2e_sink_files "$WORK/sink-c2c-bob"); $(e2e_session_fields); queued now $(queue_state)"
expect_eq "2c: concurrent alice and bob: fetchmail exit 0 for both" \
	"$(cat "$WORK/2c-alice.rc"):$(cat "$WORK/2c-bob.rc")" "0:0"
aftermath "2c: concurrent sessions"
e2e_sink_start c2c-alice2 || t_summary
sess "2c: alice again" alice a.example,b.example 0 '(250|453)'
e2e_sink_start c2c-bob2 || t_summary
sess "2c: bob again" bob c.example 0 '(250|453)'
verify "2c: alice's two sessions: her 3 recipients once each, nothing of bob's" \
	"$(sinks c2c-alice c2c-alice2)" 'c2c-*@a.example' 'c2c-*@b.example'
verify "2c: bob's two sessions: his 3 recipients once each, nothing of alice's" \
	"$(sinks c2c-bob c2c-bob2)" 'c2c-*@c.example'
expect_eq "2c: only the .evil message is left in the queue" "$(queue_state)" "a=0 b=0 c=0 evil=1"

# ==================================================================================================
# 3: a recipient the customer temp-fails stays queued; a 5xx bounces.
# ==================================================================================================
mk_msg c3-tf | inj c3-tf sender@sender.example tf1@a.example
mk_msg c3-rj | inj c3-rj bouncer@sender.example rj@a.example
mk_msg c3-part 'one ok, one temp-failed' | inj c3-part sender@sender.example ok3@a.example tf3@a.example
settle 4 || fail "3: envelopes queued" # + .evil
e2e_sink_start c3-fail --tempfail-rcpt '^tf' --reject-rcpt '^rj' || t_summary
sess "3: customer answers 450 and 550" alice a.example,b.example 0 250
verify "3: only the accepted recipient of the partly refused envelope arrives" \
	"$(sinks c3-fail)" c3-part=ok3@a.example
expect_eq "3: the sink answered 450 twice and 550 once" \
	"$(grep -c '> 450 ' "$SINK_LOG"):$(grep -c '> 550 ' "$SINK_LOG")" "2:1"
expect_eq "3: tf1@ and tf3@ still queued, rj@ gone from the queue" \
	"$(queued a.example):$(smlist | grep -c 'rj@a\.example')" "2:0"
expect_match "3: the warning at QUIT counts what is left and quotes why" "$SESSION_LOG" \
	'reversed: 2 recipient\(s\) for a\.example,b\.example still queued at QUIT; e\.g\. Deferred: 450 4\.2\.1 <tf[13]@a\.example>: Recipient temporarily unavailable \(test\)$'
expect_eq "3: odmrd: rcpts_ok=1 rcpts_failed=3 messages=1" \
	"$(log_field reversed rcpts_ok) $(log_field reversed rcpts_failed) $(log_field reversed messages)" "1 3 1"
# Issue 13: each recipient's fate in odmrd's msg lines (SMTP: no DATA when none is accepted).
expect_match "3: the msg line of the partly refused envelope: one accepted, one refused with 450" \
	"$(printf '%s\n' "$SESSION_LOG" | grep ']: msg .* rcpts=2 ')" \
	' from=<sender@sender\.example> size=[0-9]+ rcpts=2 accepted=<ok3@a\.example> refused=<tf3@a\.example>:450 result=sent reply="250 2\.0\.0 Ok: stored as [0-9]+\.msg"$'
# Sendmail pipelines DATA after the RCPT (we offer PIPELINING): the customer refuses it (554).
expect_eq "3: the msg line of the refused envelope: 550, never sent (DATA refused, or RSET/QUIT)" \
	"$(printf '%s\n' "$SESSION_LOG" | grep -cE ']: msg .* from=<bouncer@sender\.example> size=- rcpts=1 accepted=- refused=<rj@a\.example>:550 result=(data-refused reply="5[0-9][0-9] .*"|dropped reason=mta-(rset|quit) reply=-)$')" 1
# The DSN goes to bouncer@sender.example: mailertable "." -> local mailer -> $SM_LOCALMAIL/root.
bounced() { grep -qs 'rj@a\.example' "$SM_LOCALMAIL/root" || smlist | grep -q 'bouncer@sender\.example'; }
if wait_for 15 bounced; then
	where=queue
	grep -qs 'rj@a\.example' "$SM_LOCALMAIL/root" && where=$SM_LOCALMAIL/root
	ok "3: the 550 bounced to the sender (DSN in $where)"
	if grep -qs 'Recipient rejected (test)' "$SM_LOCALMAIL/root"; then
		ok "3: the DSN quotes the customer's 550 text"
	else
		fail "3: the DSN quotes the customer's 550 text" "$(head -c 2000 "$SM_LOCALMAIL/root" 2>/dev/null)"
	fi
else
	fail "3: the 550 bounced to the sender" "$(smlist)"
fi
e2e_sink_start c3-ok || t_summary
sess "3: next ATRN, all accepted" alice a.example,b.example 0 250
verify "3: the temp-failed recipients arrive on the next ATRN, once; rj@ never" \
	"$(sinks c3-fail c3-ok)" c3-tf c3-part
expect_eq "3: queue for a.example empty" "$(queued a.example)" 0

# ==================================================================================================
# 4: the customer drops in the middle of DATA; the local MTA is down.
# ==================================================================================================
for i in 1 2 3; do
	mk_msg "c4-$i" "message $i of case 4" | inj "c4-$i" sender@sender.example "d$i@a.example"
done
settle 4 || fail "4: envelopes queued" # + .evil
e2e_sink_start c4-drop --drop-in-data 2 || t_summary
sess "4: local MTA drops in the 2nd DATA" alice a.example 0 250
expect_eq "4: one message stored before the drop, the sink dropped in DATA" \
	"$(e2e_sink_files):$(grep -c 'dropped connection' "$SINK_LOG")" "1:1"
expect_eq "4: the other two stay queued" "$(queued a.example)" 2
expect_eq "4: odmrd: result=customer-lost" "$(log_field reversed result)" customer-lost
e2e_sink_start c4-ok || t_summary
sess "4: next ATRN" alice a.example 0 250
verify "4: each of the three arrives exactly once over both sessions" "$(sinks c4-drop c4-ok)" 'c4-*'

# ---- 4b: the customer's local MTA is down after the 250 (fetchmail exits 2 and hangs up) ----
mk_msg c4b | inj c4b sender@sender.example e1@a.example
settle 2 || fail "4b: envelope queued" # + .evil
e2e_sink_start c4b-down || t_summary
e2e_sink_stop # its port is closed now
sess "4b: local MTA down" alice a.example 2 250
expect_eq "4b: e1@ still queued; odmrd: result=customer-lost" \
	"$(queued a.example):$(log_field reversed result)" "1:customer-lost"
e2e_sink_start c4b-ok || t_summary
sess "4b: next ATRN" alice a.example 0 250
verify "4b: e1@ arrives once on the next ATRN" "$(sinks c4b-ok)" c4b

# ---- 4c: the customer drops at the start of a 2 MB message ----
"$PY" -c 'import sys
w = sys.stdout.buffer
w.write(b"From: sender@sender.example\nSubject: big drop\n\n")
for i in range(2 * 1024 * 1024 // 64):
    w.write(b"%s%062d\n" % (b"." if i % 7 == 0 else b"y", i))' |
	inj c4c-big sender@sender.example bigd@a.example
settle 2 || fail "4c: envelope queued" # + .evil
e2e_sink_start c4c-drop --drop-in-data 1 || t_summary
sess "4c: drop in a 2 MB message" alice a.example 0 250
expect_eq "4c: nothing stored, the sink dropped in DATA, the message still queued" \
	"$(e2e_sink_files):$(grep -c 'dropped connection' "$SINK_LOG"):$(queued a.example)" "0:1:1"
expect_eq "4c: odmrd: result=customer-lost" "$(log_field reversed result)" customer-lost
e2e_sink_start c4c-ok || t_summary
sess "4c: next ATRN" alice a.example 0 250
verify "4c: the 2 MB message arrives once, intact" "$(sinks c4c-drop c4c-ok)" c4c-big

# ==================================================================================================
# 5: refusals send nothing and lose nothing.
# ==================================================================================================
mk_msg c5-a | inj c5-a sender@sender.example p@a.example
mk_msg c5-c | inj c5-c sender@sender.example p@c.example
settle 3 || fail "5: envelopes queued" # + .evil
before=$(queue_state)
e2e_sink_start c5-refused || t_summary
sess "5c: alice asks for bob's domain" alice c.example 4 450
expect_match "5c: odmrd logged the 450 with the reason" "$SESSION_LOG" \
	'user=alice@provider\.test asked=c\.example: 450 domain c\.example not this customer'
sess "5c: alice asks for a.example,c.example" alice a.example,c.example 4 450
sess "5d: sendmail is bin-false" alice a.example 8 451 "$FALSE_PORT"
expect_match "5d: odmrd logged the failed probe" "$SESSION_LOG" '451 queue probe failed'
sess "5e: sendmail path missing" alice a.example 8 451 "$MISSING_PORT"
expect_eq "5c-5e: nothing sent, queue unchanged" "$(e2e_sink_conns) $(queue_state)" "0 $before"
# 5f: the probe works, the queue run fails after the 250: the session ends, nothing moves.
sess "5f: queue run fails after the 250" alice a.example 0 250 "$NOQRUN_PORT"
info "5f: odmrd: $(printf '%s\n' "$SESSION_LOG" | grep -E 'queue run|reversed peer' | sed 's/^[^ ]* //' | tr '\n' '|')"
expect_eq "5f: nothing delivered, queue unchanged" "$(e2e_sink_files) $(queue_state)" "0 $before"
expect_match "5f: the failed queue run is logged" "$SESSION_LOG" 'sendmail queue run exited with status 75'
expect_eq "5f: the session ends at once (< 20 s)" "$((FM_MS < 20000))" 1
e2e_sink_start c5-bob || t_summary
sess "5: bob after the refusals" bob c.example 0 250
e2e_sink_start c5-alice || t_summary
sess "5: alice after the refusals" alice a.example,b.example 0 250
verify "5: after the refusals each customer gets his message once" \
	"$(sinks c5-refused c5-bob)" c5-c
verify "5: ... and alice hers" "$(sinks c5-alice)" c5-a
expect_eq "5: only the .evil message is left in the queue" "$(queue_state)" "a=0 b=0 c=0 evil=1"

# ==================================================================================================
# 7: the probe must see every queued recipient of a granted domain. odmrd counts the recipient
# lines of "sendmail -bp -qR@DOMAIN", which shows at most 38 characters of an address, and cuts
# the address at white space: a longer address, or a quoted local part with a space, is not seen
# and ATRN answered 453 although mail was queued; odmrd now lists with -v.
# ==================================================================================================
LONG=firstname.middlename.lastname.sales@a.example
QUOTED='"john doe"@a.example'
mk_msg c7-long 'long address' | inj c7-long sender@sender.example "$LONG"
settle 2 || fail "7: envelope queued" # + .evil
expect_eq "7: sendmail -bp -v shows the ${#LONG}-character address in full" \
	"$(smlist -qR@a.example | grep -cF "$LONG")" 1
e2e_sink_start c7-long || t_summary
sess "7: only a ${#LONG}-character address queued" alice a.example 0 '[0-9]{3}'
expect_eq "7: mail only for a ${#LONG}-character address: ATRN 250, not 453" \
	"$(atrn_reply)" 250
n0=$(envelopes)
mk_msg c7-quoted 'quoted local part' | inj c7-quoted sender@sender.example "$QUOTED"
settle $((n0 + 1)) || fail "7: quoted envelope queued"
e2e_sink_start c7-quoted || t_summary
sess "7: only $QUOTED queued" alice a.example 0 '[0-9]{3}'
expect_eq "7: mail only for $QUOTED: ATRN 250, not 453" "$(atrn_reply)" 250
# Any other mail for the domain starts the queue run, which carries them along.
n0=$(envelopes)
mk_msg c7-trigger | inj c7-trigger sender@sender.example t7@a.example
settle $((n0 + 1)) || fail "7: trigger envelope queued"
e2e_sink_start c7-trigger || t_summary
sess "7: one more message queued" alice a.example 0 250
verify "7: the long and the quoted address get their message once (with any other mail)" \
	"$(sinks c7-long c7-quoted c7-trigger)" c7-long c7-quoted c7-trigger
expect_eq "7: odmrd's msg line names the quoted recipient escaped (quote and space as \\x22, \\x20)" \
	"$(grep -c ']: msg .* accepted=<\\x22john\\x20doe\\x22@a\.example> .*result=sent ' "$E2E_ODMRD_LOG")" 1
expect_eq "7: nothing left for a.example (sendmail -bp -v)" "$(smlist -qR@a.example | grep -c '@a\.example$')" 0

# ==================================================================================================
# 8: mail queued during a session is delivered in it or stays queued - never lost or doubled: one
# message only queued (odmrd's closing listing finds it and runs it), one delivered at once by a
# sendmail of its own (a second connection to the socket, as root).
# ==================================================================================================
n0=$(envelopes)
for i in $(seq -w 1 30); do
	mk_msg "c8-$i" | inj "c8-$i" sender@sender.example "m8$i@a.example"
done
settle $((n0 + 30)) || fail "8: 30 envelopes queued"
e2e_sink_start c8 || t_summary
(
	wait_for 60 grep -q ' stored ' "$SINK_LOG" && {
		mk_msg c8-q | inj c8-q sender@sender.example q8@a.example
		mk_msg c8-bg | e2e_inject sm_send c8-bg sender@sender.example bg8@a.example
	}
) &
C8_INJ=$!
T_BG_PIDS+=("$C8_INJ")
sess "8: mail queued during the session" alice a.example 0 250
wait "$C8_INJ"
check "8: two messages were queued during the session" test -f "$E2E_MANIFEST/c8-bg.env"
wait_for 10 sm_idle
if e2e_verify "$(sinks c8)" 'c8-*' >/dev/null; then
	info "8: both messages queued during the session arrived in it"
else
	info "8: left queued after the session: a=$(queued a.example)"
	e2e_sink_start c8-2 || t_summary
	sess "8: next ATRN" alice a.example 0 250
fi
verify "8: every message exactly once, those queued during the session included" \
	"$(for d in "$WORK"/sink-c8*/; do printf '%s:' "${d%/}"; done | sed 's/:$//')" 'c8-*'
expect_eq "8: nothing left queued for a.example" "$(queued a.example)" 0

# ==================================================================================================
# 9: user = nobody: the session runs unprivileged and asks the root helper, with typed requests,
# to list the queue and to run the queue IDs (Sendmail's queue is root's). run_dir is then the
# session's own (nobody, 2750); the sockets it binds get run_dir's group.
# ==================================================================================================
cp "$WORK/sasldb2" "$WORK/sasldb2.nobody" && chown nobody "$WORK/sasldb2.nobody"
chmod 644 "$WORK/customers.db"
sm_conf "$WORK/nobody.conf" user=nobody sasl_sasldb_path="$WORK/sasldb2.nobody" log_file="$WORK/odmrd.log"
start_odmrd "$WORK/nobody.conf" || t_summary
NOBODY_PORT=$PORT
chown nobody "$RUNDIR" && chmod 2750 "$RUNDIR"
n0=$(envelopes)
for i in 1 2 3; do mk_msg "c9-$i" | inj "c9-$i" sender@sender.example "p9$i@a.example"; done
settle $((n0 + 3)) || fail "9: 3 envelopes queued"
e2e_sink_start c9 || t_summary
sess "9: user = nobody, root helper" alice a.example 0 250 "$NOBODY_PORT"
verify "9: the three arrive once through the helper's queue runs" "$(sinks c9)" 'c9-*'
expect_eq "9: the helper refused no request of the session" \
	"$(printf '%s\n' "$SESSION_LOG" | grep -c 'privsep: refused')" 0
# Two runs at once on disjoint IDs (mta.h MTA_JOBS), each its own sendmail process: 2 + 1 messages.
expect_eq "9: the three came from two queue runs the helper ran (two runner pids, 2 + 1 messages)" \
	"$(printf '%s\n' "$SESSION_LOG" | grep -o ' msg .*mta_pid=[0-9]*' | sed 's/.*mta_pid=//' | sort | uniq -c |
		awk '{print $1}' | sort | tr '\n' ' ')" "1 2 "
chown root "$RUNDIR"
chmod 0750 "$RUNDIR"

# ==================================================================================================
# 10: the same over TLS: the real fetchmail --ssl --sslcertck, odmrd in wrapper mode. The reversed
# state runs inside the TLS session (one record per line, or fetchmail --ssl stalls).
# ==================================================================================================
tls_mk_pki "$WORK/pki" || fail "10: test PKI"
sm_conf "$WORK/tls.conf" tls_cert_file="$WORK/pki/srv-ec.crt" tls_key_file="$WORK/pki/srv-ec.key" \
	tls_module="$TOP/odmrd-tls.so" tls_wrappermode=yes
start_odmrd "$WORK/tls.conf" || t_summary
TLS_PORT=$PORT
PORT=$MAIN_PORT
n0=$(envelopes)
e2e_reinject smq tls c1-dots c1-8bit c1-big c1-multi c2-bob
rm -f "$WORK/batch.smtp"
e2e_reinject smtp_batch tls $(seq -f 'n%03g' 1 200)
sm_feed_batch
settle $((n0 + 205)) || fail "10: 205 envelopes queued ($(queue_state))"
E2E_FM_OPTS="ssl sslcertck sslcertfile $WORK/pki/ca.crt sslcommonname provider.test"
e2e_sink_start c10 || t_summary
sess "10: TLS: content set + 200 messages" alice a.example,b.example 0 250 "$TLS_PORT"
TLS_MS=$FM_MS
verify "10: fetchmail --ssl: dots, 8-bit, 5 MB, two domains and 200 messages, each once, intact" \
	"$(sinks c10)" tls-c1-dots tls-c1-8bit tls-c1-big tls-c1-multi 'tls-n*'
expect_match "10: odmrd's summary line says tls=TLSv1.3" \
	"$(printf '%s\n' "$SESSION_LOG" | grep ': session peer=' | tail -1)" 'result=done tls=TLSv1\.3/TLS_[A-Z0-9_]+ cert=-$'
expect_eq "10: nothing left for alice, bob's message still queued" \
	"$(queued a.example):$(queued b.example):$(queued c.example)" "0:0:1"
info "10: fetchmail --ssl, content set (5 MB) + 200 messages in one TLS session: ${TLS_MS} ms"
e2e_sink_start c10-bob || t_summary
sess "10: TLS: bob" bob c.example 0 250 "$TLS_PORT"
verify "10: bob gets his message once over TLS, nothing of alice's" "$(sinks c10-bob)" tls-c2-bob
E2E_FM_OPTS=

# ==================================================================================================
check_no_crashes
verify "all sessions together: every injected recipient but x@a.example.evil delivered exactly once" \
	"$(for d in "$WORK"/sink-*/; do printf '%s:' "${d%/}"; done | sed 's/:$//')" \
	'c1-*' 'n*' c2-mix c2-bob 'c2c-*' 'c3-tf' 'c3-part' 'c4*' 'c5-*' 'c7-*' 'c8-*' 'c9-*' 'tls-*'
check "fetchmail left nothing in root's HOME" test ! -e /root/.fetchids
echo "# sessions (label, user, fetchdomains, fetchmail rc, odmrd fields, odmrd messages, sink files, wall time):"
printf '#   %s\n' "${STATS[@]}"
info "200-message session ${T200_MS} ms; suite $(ms_since "$T_START") ms"
t_summary
