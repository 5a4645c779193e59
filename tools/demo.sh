#!/bin/bash
# tools/demo.sh -- odmrd's main job, end to end, on loopback (run as root: `make demo`).
#
# Everything lives in a private work directory (mktemp -d, removed at exit):
#   - a private Postfix instance (tests/lib/postfix.sh) that holds mail for two customer
#     domains: alice.example (customer alice) and bob.example (customer bob);
#   - odmrd started per connection by xinetd (Debian's, in the foreground, own config file,
#     UNLISTED service on a free 127.0.0.1 port); tests/lib/inetd1.py if xinetd is missing;
#   - fetchmail as the ODMR customer alice, relaying into tests/lib/smtpsink.py
#     (alice's "local MTA");
#   - TLS: a throwaway CA and server certificate made here (tests/lib/tls.sh); odmrd's service
#     runs with -o tls_wrappermode=yes and fetchmail connects with --ssl --sslcertck, so the
#     whole session - the reversed state included - is encrypted. DEMO_PLAIN=1: plaintext.
# Queues 5 messages for alice.example and 1 for bob.example, lets fetchmail collect
# alice.example, prints the conversation and odmrd's log, then checks: all 5 of alice's
# messages reached the sink exactly once, bob's message is still queued and never crossed.
# Exit status 0 only if both hold. Nothing is left behind (processes or files).
#
# Environment: DEMO_PLAIN=1 runs the session in plaintext (no TLS); DEMO_KEEP=1 keeps the work
# directory (processes are still stopped);
# DEMO_TIMEOUT (default 30) bounds each wait, in seconds; DEMO_SERVER=inetd1 skips xinetd and
# uses the fallback tests/lib/inetd1.py.

# shellcheck disable=SC2317 # functions below are called from traps and wait_for
# shellcheck source=tests/lib/postfix.sh disable=SC2119
set -u
umask 022

ROOT=$(cd "$(dirname "$0")/.." && pwd) || exit 1
cd "$ROOT" || exit 1
DEMO_TIMEOUT=${DEMO_TIMEOUT:-30}
START_SECONDS=$SECONDS

W='' SINK_PID='' SERVER_PID='' FM_PID='' SERVER_KIND='' PF_READY=''

say() { printf '%s\n' "$*"; }
step() { printf '\n[%s] %s\n' "$1" "$2"; }
die() {
	printf 'demo: %s\n' "$*" >&2
	exit 1
}

# ---------------------------------------------------------------------------
# Clean-up: stop everything this demo started, then remove the work directory.
# ---------------------------------------------------------------------------

# stop_pid PID: SIGTERM, wait up to 5 s, then SIGKILL.
stop_pid() {
	local pid=$1 i
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
}

# pids_using_workdir: live processes whose command line mentions the work directory
# (odmrd -f W/odmrd.conf and anything it started, e.g. postqueue -c W/...).
pids_using_workdir() {
	local f pid cmd state
	for f in /proc/[0-9]*/cmdline; do
		pid=${f#/proc/}
		pid=${pid%/cmdline}
		[ "$pid" = "$$" ] || [ "$pid" = "${BASHPID:-}" ] && continue
		read -r _ _ state _ 2>/dev/null <"/proc/$pid/stat" || continue
		[ "$state" = Z ] && continue
		cmd=$(tr '\0' ' ' 2>/dev/null <"$f") || continue
		case $cmd in *"$W"*) echo "$pid" ;; esac
	done
}

cleanup() {
	local rc=$? pids i
	trap - EXIT INT TERM
	[ -n "$W" ] || exit "$rc"
	stop_pid "$FM_PID"
	stop_pid "$SERVER_PID" # xinetd (or inetd1.py) SIGTERMs its running servers
	stop_pid "$SINK_PID"
	if [ -n "$PF_READY" ]; then
		PF_TIMEOUT=15 pf_stop >/dev/null 2>&1 || printf 'demo: warning: private Postfix did not stop cleanly\n' >&2
	fi
	for ((i = 0; i < 50; i++)); do
		pids=$(pids_using_workdir)
		[ -n "$pids" ] || break
		# shellcheck disable=SC2086 # one PID per word
		kill -KILL $pids 2>/dev/null
		sleep 0.1
	done
	if [ "${DEMO_KEEP:-0}" = 1 ]; then
		printf 'demo: work directory kept: %s\n' "$W" >&2
	else
		rm -rf -- "$W"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# wait_for SECONDS CMD...: run CMD every 0.1 s until it succeeds; 1 on timeout.
wait_for() {
	local limit=$(($1 * 10)) i
	shift
	for ((i = 0; i < limit; i++)); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}

# listening PORT: true if something listens on 127.0.0.1:PORT (from /proc/net/tcp).
listening() {
	local hex
	hex=$(printf '0100007F:%04X' "$1")
	awk -v a="$hex" '$2 == a && $4 == "0A" { found = 1 } END { exit !found }' /proc/net/tcp
}

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ---------------------------------------------------------------------------
# Prerequisites: packages, build, root.
# ---------------------------------------------------------------------------
[ "$(id -u)" = 0 ] || die "run as root (it starts a private Postfix and xinetd on 127.0.0.1): sudo make demo"

if [ -x tools/install-deps.sh ]; then
	printf 'Checking packages (tools/install-deps.sh) ... '
	if ! out=$(tools/install-deps.sh 2>&1); then
		printf 'failed\n%s\n' "$out" | sed '2,$s/^/  | /'
		die "tools/install-deps.sh failed"
	fi
	say ok
	[ -z "$out" ] || printf '%s\n' "$out" | sed 's/^/  | /'
fi
for cmd in postfix postconf postqueue sendmail saslpasswd2 fetchmail python3 make cc; do
	command -v "$cmd" >/dev/null 2>&1 || die "missing command: $cmd (install the packages listed in tools/install-deps.sh)"
done
if [ ! -x ./odmrd ] || [ ! -x ./odmrd-map ] || ! make -q all >/dev/null 2>&1; then
	say "Building odmrd (make) ..."
	if ! out=$(make all 2>&1); then
		printf '%s\n' "$out" | tail -n 30 >&2
		die "make failed"
	fi
fi

. tests/lib/postfix.sh
. tests/lib/tls.sh
PF_TIMEOUT=$DEMO_TIMEOUT
TLS=1
[ "${DEMO_PLAIN:-0}" = 1 ] && TLS=0

W=$(mktemp -d "${TMPDIR:-/tmp}/odmrd-demo.XXXXXX") || die "mktemp failed"
# Postfix's lmtp client (user postfix) must search the path to the socket directory.
chmod 0755 "$W"

cat <<'EOF'

=== odmrd demo: On-Demand Mail Relay (RFC 2645), provider side ===
ODMR lets a customer without a fixed IP address collect its domains' mail: it connects to the
provider, authenticates, sends "ATRN domain", and the provider turns the connection around and
delivers the held mail over that same connection as an SMTP client.
EOF

# ---------------------------------------------------------------------------
step 1/6 "Provider set-up (all under $W, removed at exit)"
# ---------------------------------------------------------------------------
# The one list of customers and their domains: odmrd-map turns it into odmrd's map and into
# Postfix's transport table (whose keys are also relay_domains).
printf '# customer  domains\nalice  alice.example\nbob    bob.example\n' >"$W/customers"
pf_setup "$W/postfix" "$W/run" -m "$W/customers" >"$W/pf-setup.log" 2>&1 ||
	{ cat "$W/pf-setup.log" >&2; die "pf_setup failed"; }
say "  customer list $W/customers: alice -> alice.example, bob -> bob.example"
say "  odmrd-map -f $W/postfix/odmrd-map.conf $W/customers: wrote customers.db and Postfix's odmrd_transport"
PF_READY=1
pf_start || { tail -n 20 "$PF_LOG" "$PF_WORK/postfix.out" >&2; die "private Postfix did not start"; }
say "  private Postfix $(postconf -d -h mail_version 2>/dev/null) instance (config $PF_CONF): holds mail for alice.example and bob.example"
say "    (relay_domains and transport_maps = hash:odmrd_transport, defer_transports = odmrl; odmrl = lmtp to a socket odmrd binds in $W/run)"

echo 'alice-demo-pw' | saslpasswd2 -f "$W/sasldb" -u provider.test -p -c alice || die "saslpasswd2 failed"
echo 'bob-demo-pw' | saslpasswd2 -f "$W/sasldb" -u provider.test -p -c bob || die "saslpasswd2 failed"
say "  SASL users alice and bob in $W/sasldb (saslpasswd2 -f)"

cat >"$W/odmrd.conf" <<EOF
# odmrd.conf written by tools/demo.sh
hostname = provider.test
customer_map = $W/customers.db
sasl_realm = provider.test
sasl_pwcheck_method = auxprop
sasl_auxprop_plugin = sasldb
sasl_sasldb_path = $W/sasldb
log_file = $W/odmrd.log
run_dir = $W/run
mta = postfix
postfix_config_dir = $PF_CONF
idle_timeout = 30
session_timeout = 60
EOF
say "  $W/odmrd.conf: mta = postfix, postfix_config_dir = $PF_CONF"
SERVER_ARGS="-f $W/odmrd.conf"
if [ "$TLS" = 1 ]; then
	tls_mk_pki "$W/pki" >"$W/pki.log" 2>&1 || { cat "$W/pki.log" >&2; die "making the demo CA failed"; }
	cat >>"$W/odmrd.conf" <<EOF
tls_cert_file = $W/pki/srv-ec.crt
tls_key_file = $W/pki/srv-ec.key
tls_module = $ROOT/odmrd-tls.so
EOF
	SERVER_ARGS="$SERVER_ARGS -o tls_wrappermode=yes"
	say "  TLS: a throwaway CA in $W/pki (tests/lib/tls.sh), an ECDSA P-256 certificate for provider.test;"
	say "    tls_cert_file/tls_key_file in odmrd.conf, and \"-o tls_wrappermode=yes\" on the service: TLS from the"
	say "    first octet, as fetchmail --ssl expects (DEMO_PLAIN=1 for a plaintext session)"
fi

# ---------------------------------------------------------------------------
step 2/6 "odmrd on 127.0.0.1, one process per connection"
# ---------------------------------------------------------------------------
start_xinetd() {
	local port=$1
	cat >"$W/xinetd.conf" <<EOF
# xinetd.conf written by tools/demo.sh: only this service, nothing from /etc/xinetd.d
defaults
{
	log_type = FILE $W/xinetd.log
	log_on_success = PID HOST EXIT DURATION
	log_on_failure = HOST
}

service odmr
{
	type        = UNLISTED
	socket_type = stream
	protocol    = tcp
	wait        = no
	bind        = 127.0.0.1
	port        = $port
	user        = root
	server      = $ROOT/odmrd
	server_args = $SERVER_ARGS
	instances   = 10
}
EOF
	xinetd -dontfork -f "$W/xinetd.conf" -filelog "$W/xinetd.log" -pidfile "$W/xinetd.pid" \
		</dev/null >"$W/xinetd.out" 2>&1 &
	SERVER_PID=$!
	if wait_for 10 listening "$port"; then
		return 0
	fi
	stop_pid "$SERVER_PID"
	SERVER_PID=''
	return 1
}

ODMR_PORT=''
if [ "${DEMO_SERVER:-xinetd}" != xinetd ]; then
	say "  DEMO_SERVER=${DEMO_SERVER}: using tests/lib/inetd1.py instead of xinetd"
elif command -v xinetd >/dev/null 2>&1; then
	for _ in 1 2 3; do
		port=$(free_port) || die "no free port"
		if start_xinetd "$port"; then
			ODMR_PORT=$port SERVER_KIND=xinetd
			break
		fi
	done
	[ -n "$ODMR_PORT" ] || say "  xinetd did not start (see below); falling back to tests/lib/inetd1.py"
	[ -n "$ODMR_PORT" ] || sed 's/^/  | /' "$W/xinetd.log" "$W/xinetd.out" 2>/dev/null | tail -n 10
else
	say "  xinetd is not installed: falling back to tests/lib/inetd1.py (a one-service inetd)"
fi
if [ -z "$ODMR_PORT" ]; then
	python3 tests/lib/inetd1.py --bind 127.0.0.1 --port 0 --port-file "$W/odmr.port" \
		--stderr "$W/odmrd.stderr" --log "$W/inetd1.log" -- "$ROOT/odmrd" $SERVER_ARGS \
		</dev/null >/dev/null 2>"$W/inetd1.err" &
	SERVER_PID=$!
	wait_for "$DEMO_TIMEOUT" test -s "$W/odmr.port" || die "inetd1.py did not start: $(cat "$W/inetd1.err")"
	ODMR_PORT=$(cat "$W/odmr.port") SERVER_KIND=inetd1.py
fi
if [ "$SERVER_KIND" = xinetd ]; then
	say "  xinetd $(xinetd -version 2>&1 | awk '{print $1; exit}') (foreground, -f $W/xinetd.conf) listens on 127.0.0.1:$ODMR_PORT"
	say "    service odmr: type = UNLISTED, wait = no, server = ./odmrd, server_args = $SERVER_ARGS"
else
	say "  tests/lib/inetd1.py listens on 127.0.0.1:$ODMR_PORT and runs ./odmrd $SERVER_ARGS per connection"
fi

# ---------------------------------------------------------------------------
step 3/6 "Mail arrives at the provider while the customers are offline"
# ---------------------------------------------------------------------------
alice_rcpts=(alice sales info orders admin)
for i in 1 2 3 4 5; do
	printf 'From: Sender <sender@example.org>\nTo: %s@alice.example\nSubject: demo message %d of 5 for alice\nX-Demo-Id: alice-%d\n\nHello alice, this is message %d.\n.a line starting with a dot\n' \
		"${alice_rcpts[i - 1]}" "$i" "$i" "$i" |
		pf_send sender@example.org "${alice_rcpts[i - 1]}@alice.example" || die "sendmail failed"
done
printf 'From: Sender <sender@example.org>\nTo: bob@bob.example\nSubject: for bob only\nX-Demo-Id: bob-1\n\nHello bob.\n' |
	pf_send sender@example.org bob@bob.example || die "sendmail failed"
pf_wait_queued 6 deferred 2>"$W/wait.err" || { cat "$W/wait.err" >&2; die "Postfix did not hold the 6 messages"; }
say "  queued with Postfix's sendmail -C: 5 messages to {alice,sales,info,orders,admin}@alice.example, 1 to bob@bob.example"
say "  postqueue -j: $(pf_count_for_domain alice.example) for alice.example, $(pf_count_for_domain bob.example) for bob.example, all deferred (\"deferred transport\": held for ODMR)"

# ---------------------------------------------------------------------------
step 4/6 "alice comes online: fetchmail (protocol odmr) collects alice.example"
# ---------------------------------------------------------------------------
mkdir -p "$W/sink" "$W/home"
python3 tests/lib/smtpsink.py --port 0 --port-file "$W/sink.port" --log "$W/sink.log" --outdir "$W/sink" \
	</dev/null >/dev/null 2>"$W/sink.err" &
SINK_PID=$!
wait_for "$DEMO_TIMEOUT" test -s "$W/sink.port" || die "smtpsink.py did not start: $(cat "$W/sink.err")"
SINK_PORT=$(cat "$W/sink.port")

# run_fetchmail RCFILE_DOMAINS OUTFILE: one poll as alice, bounded.
run_fetchmail() {
	local domains=$1 out=$2 rc
	cat >"$W/home/.fetchmailrc" <<EOF
poll 127.0.0.1 protocol odmr service $ODMR_PORT timeout 20
	user alice password alice-demo-pw
	fetchdomains $domains
	smtphost 127.0.0.1/$SINK_PORT
EOF
	[ "$TLS" = 1 ] && printf '\tssl sslcertck sslcertfile %s sslcommonname provider.test\n' "$W/pki/ca.crt" \
		>>"$W/home/.fetchmailrc"
	chmod 600 "$W/home/.fetchmailrc"
	HOME=$W/home FETCHMAILHOME=$W/home timeout -k 5 60 \
		"${FETCHMAIL[@]}" -f "$W/home/.fetchmailrc" --nosyslog -v </dev/null >"$out" 2>&1 &
	FM_PID=$!
	wait "$FM_PID"
	rc=$?
	FM_PID=''
	return "$rc"
}

# fetchmail gives up when the host's own name does not resolve (some containers): then it runs
# in a private mount namespace whose /etc/hosts has the name (the host's /etc is not changed).
FETCHMAIL=(fetchmail)
if ! getent hosts "$(hostname)" >/dev/null 2>&1; then
	{ cat /etc/hosts; printf '127.0.1.1 %s\n' "$(hostname)"; } >"$W/hosts"
	# shellcheck disable=SC2016 # expanded by the inner sh
	FETCHMAIL=(unshare -m sh -c 'mount --bind "$0" /etc/hosts && exec fetchmail "$@"' "$W/hosts")
fi
say "  ~/.fetchmailrc:"
say "    poll 127.0.0.1 protocol odmr service $ODMR_PORT user alice password ..."
say "    fetchdomains alice.example smtphost 127.0.0.1/$SINK_PORT   (alice's own MTA: tests/lib/smtpsink.py)"
[ "$TLS" = 1 ] && say "    ssl sslcertck sslcertfile $W/pki/ca.crt sslcommonname provider.test   (TLS, server certificate checked)"
t0=$SECONDS
run_fetchmail alice.example "$W/fetchmail.out"
FM_RC=$?
say "  fetchmail -v exit status $FM_RC after $((SECONDS - t0)) s"
[ "$TLS" = 1 ] && grep -E '^fetchmail: (SSL/TLS: using|Subject CommonName|Issuer CommonName)' "$W/fetchmail.out" |
	sed 's/^fetchmail: /  fetchmail: /'


# Transcript. In fetchmail -v output '>' is what fetchmail sent, '<' what it received, both
# before and after the turnaround: so '>' = customer side, '<' = provider (odmrd) side.
say ""
say "  ODMR conversation from fetchmail -v  (C: = customer side: fetchmail, and after the turnaround"
say "  the replies of alice's MTA relayed by it;  P: = provider side: odmrd)"
awk '
function line(who, text) { printf "    %s %s\n", who, text }
/fetchmail: (SMTP|ODMR)[<>] / {
	dir = substr($2, 5, 1); text = $0; sub(/^fetchmail: (SMTP|ODMR)[<>] /, "", text)
	who = (dir == ">") ? "C:" : "P:"
	if (!turned) {
		if (text ~ /^AUTH CRAM-MD5/) note = "   <- CRAM-MD5: password never sent"
		else if (text ~ /^ATRN/) note = "   <- which domains alice wants"
		else if (text ~ /^2[0-9][0-9] / && prev ~ /^ATRN/) note = "   <- turnaround: odmrd is now the SMTP client"
		else note = ""
		line(who, text note); prev = text; next
	}
	if (who == "P:" && text ~ /^MAIL FROM:/) { txn++; rcpts = ""; from = text; sub(/^MAIL FROM:/, "", from); sub(/ .*/, "", from) }
	if (who == "P:" && text ~ /^QUIT/) { flush(); quit = 1 }
	if (txn <= 1 || quit) { line(who, text); next }
	if (who == "P:" && text ~ /^RCPT TO:/) { r = text; sub(/^RCPT TO:/, "", r); sub(/ .*/, "", r); rcpts = rcpts (rcpts == "" ? "" : ",") r }
	if (who == "C:" && indata) { summ[txn] = sprintf("message %d: from %s to %s -> %s", txn, from, rcpts, text); indata = 0 }
	next
}
/Turnaround now/ { turned = 1; printf "    ---- connection turned around: odmrd (provider) now sends, fetchmail relays to alice'"'"'s MTA ----\n"; next }
/receiving message data/ { indata = 1; if (txn <= 1) printf "       (message data relayed)\n"; next }
function flush(  i) {
	if (flushed) return
	flushed = 1
	if (txn > 1) printf "    ... %d more transactions like the first (MAIL, RCPT, DATA; one per message):\n", txn - 1
	for (i = 2; i <= txn; i++) printf "      %s\n", summ[i]
}
END { flush() }
' "$W/fetchmail.out"

# Give odmrd a moment to write its closing log lines (it logs after QUIT).
wait_for 10 grep -q ' session peer=' "$W/odmrd.log" 2>/dev/null
say ""
say "  odmrd's log ($W/odmrd.log):"
sed 's/^[0-9T:-]* /    /' "$W/odmrd.log" 2>/dev/null
ODMRD_LOG_LINES=$(wc -l <"$W/odmrd.log" 2>/dev/null || echo 0)
if [ "$SERVER_KIND" = xinetd ]; then
	wait_for 5 grep -q 'EXIT: odmr' "$W/xinetd.log"
	say "  xinetd's log:"
	grep -E 'START|EXIT' "$W/xinetd.log" | sed 's/^/    /'
fi

# ---------------------------------------------------------------------------
step 5/6 "alice tries to collect bob.example (not hers)"
# ---------------------------------------------------------------------------
run_fetchmail bob.example "$W/fetchmail-bob.out"
FM_RC2=$?
grep -E 'ODMR[<>] ATRN|ODMR< [0-9]' "$W/fetchmail-bob.out" | tail -n 2 |
	sed -e 's/^fetchmail: ODMR> /    C: /' -e 's/^fetchmail: ODMR< /    P: /'
say "  fetchmail exit status $FM_RC2; odmrd's log:"
log_has_session_after() { tail -n +"$((ODMRD_LOG_LINES + 1))" "$W/odmrd.log" | grep -q ' session peer='; }
wait_for 5 log_has_session_after
tail -n +"$((ODMRD_LOG_LINES + 1))" "$W/odmrd.log" | sed 's/^[0-9T:-]* /    /'

# ---------------------------------------------------------------------------
step 6/6 "Result"
# ---------------------------------------------------------------------------
# Each of the 5 messages is looked for once in the sink; a message counts if a sink file
# with an alice.example recipient carries its X-Demo-Id. Any bob.example recipient in
# the sink means bob's mail crossed to alice.
RESULT=$(python3 - "$W/sink" <<'EOF'
import os, re, sys
d = sys.argv[1]
seen = {}
bob_crossed = 0
for name in sorted(os.listdir(d)):
    if not name.endswith(".msg"):
        continue
    raw = open(os.path.join(d, name), "rb").read().decode("utf-8", "replace")
    env, _, data = raw.partition("\r\n\r\n") if "\r\n\r\n" in raw else raw.partition("\n\n")
    rcpts = [m.lower() for m in re.findall(r"^RCPT TO:<([^>]*)>", env, re.M | re.I)]
    if any(r.endswith("@bob.example") for r in rcpts) or re.search(r"^X-Demo-Id: bob-", data, re.M):
        bob_crossed += 1
    if not any(r.endswith("@alice.example") for r in rcpts):
        continue
    for m in re.findall(r"^X-Demo-Id: alice-(\d+)\s*$", data, re.M):
        seen[m] = seen.get(m, 0) + 1
found = [str(i) for i in range(1, 6) if str(i) in seen]
dups = sum(n - 1 for n in seen.values())
print(len(found), dups, bob_crossed)
EOF
) || RESULT="0 0 0"
read -r DELIVERED DUPS BOB_CROSSED <<<"$RESULT"

# Postfix removes a delivered message from its queue just after the LMTP reply: wait (bounded)
# for alice's count to drop to 0 before reading bob's.
alice_gone() { [ "$(pf_count_for_domain alice.example 2>/dev/null)" = 0 ]; }
wait_for 10 alice_gone
ALICE_LEFT=$(pf_count_for_domain alice.example 2>/dev/null || echo '?')
BOB_LEFT=$(pf_count_for_domain bob.example 2>/dev/null || echo '?')

say "  sink ($W/sink): $(find "$W/sink" -name '*.msg' | wc -l) message file(s); Postfix queue: $ALICE_LEFT left for alice.example, $BOB_LEFT for bob.example"
[ "$DUPS" = 0 ] || say "  WARNING: $DUPS duplicate deliveries in the sink"
[ "$BOB_CROSSED" = 0 ] || say "  FAIL: $BOB_CROSSED message(s) for bob.example reached alice's MTA"
[ "$SERVER_KIND" = xinetd ] || say "  note: odmrd ran under tests/lib/inetd1.py, not xinetd"
say ""
say "delivered $DELIVERED/5"
ok=1
[ "$DELIVERED" = 5 ] && [ "$DUPS" = 0 ] || ok=0
if [ "$BOB_LEFT" = 1 ] && [ "$BOB_CROSSED" = 0 ]; then
	say "bob.example: 1 message still queued for bob (not sent to alice)"
else
	say "bob.example: $BOB_LEFT message(s) queued for bob, $BOB_CROSSED reached alice: WRONG"
	ok=0
fi
say "(demo took $((SECONDS - START_SECONDS)) s)"
[ "$ok" = 1 ] && exit 0
say "demo FAILED; set DEMO_KEEP=1 to keep $W for inspection"
exit 1
