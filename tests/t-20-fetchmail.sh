#!/bin/bash
# tests/t-20-fetchmail.sh - the real fetchmail (Debian's package) as the ODMR customer.
#
# Why: fetchmail is the customer most providers will see, and it is picky (one-line ATRN reply,
# always AUTH CRAM-MD5, exit codes by reply). This suite runs it against ./odmrd under
# tests/lib/inetd1.py with a private sasldb and map, a private HOME/FETCHMAILHOME (root's files
# are never touched) and an SMTP sink on loopback as its "local MTA" (no mail is relayed here:
# the fake MTA of common.sh reports an empty queue). Checks fetchmail's exit status and
# odmrd's log. Prints "N passed, N failed"; exits non-zero on failure.
# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/lib/common.sh"

if ! command -v fetchmail >/dev/null; then
	fail "fetchmail is not installed (tools/install-deps.sh installs it)"
	t_summary
fi

mk_sasldb "$WORK/sasldb2" provider.test alice alice-secret bob bob-secret ||
	fail "saslpasswd2 could not build the sasldb"
mk_map "$WORK/customers" 'alice a.example, b.example' 'bob c.example' ||
	fail "odmrd-map could not build the map"
write_conf "$WORK/odmrd.conf"
start_odmrd "$WORK/odmrd.conf" || t_summary
ODMRD_PORT=$PORT

# The customer's local MTA: tests/lib/smtpsink.py, or any loopback listener if it is absent.
mkdir -p "$WORK/sink"
if [ -f "$LIB/smtpsink.py" ]; then
	spawn "$PY" "$LIB/smtpsink.py" --outdir "$WORK/sink" --port-file "$WORK/sink.port" \
		--log "$WORK/sink.log" >/dev/null
else
	spawn "$PY" -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(5)
open(sys.argv[1], "w").write("%d\n" % s.getsockname()[1])
time.sleep(3600)' "$WORK/sink.port"
fi
wait_for 10 test -s "$WORK/sink.port" || fail "SMTP sink did not start"
SINK=$(cat "$WORK/sink.port")

HOME_DIR=$WORK/home
mkdir -p "$HOME_DIR"
chmod 700 "$HOME_DIR"

# fm NAME USER PASSWORD DOMAINS [PORT]: run fetchmail once; sets FM_RC (exit status), FM_OUT (file).
FM_N=0
fm() {
	local name=$1 user=$2 pass=$3 doms=$4 port=${5:-$ODMRD_PORT}
	FM_N=$((FM_N + 1))
	local rc=$HOME_DIR/fetchmailrc.$FM_N
	FM_OUT=$WORK/fetchmail.$FM_N.out
	# The password lives only in the rcfile; fetchmail refuses an rcfile others can read.
	printf 'poll 127.0.0.1 protocol ODMR %suser "%s" password "%s"\n' "${fm_rc_extra:-}" "$user" "$pass" >"$rc"
	chmod 600 "$rc"
	echo "# $name" >"$FM_OUT"
	HOME=$HOME_DIR FETCHMAILHOME=$HOME_DIR timeout 60 "${T_FETCHMAIL[@]}" -f "$rc" --nosyslog -v \
		--timeout 20 --pidfile "$HOME_DIR/fetchmail.pid" --protocol ODMR --service "$port" \
		--fetchdomains "$doms" --smtphost "127.0.0.1/$SINK" -u "$user" 127.0.0.1 \
		</dev/null >>"$FM_OUT" 2>&1
	FM_RC=$?
	wait_sessions 15
}

# last_summary: odmrd's session summary line for the last fetchmail run.
last_summary() { grep ': session peer=' "$WORK/odmrd.log" | tail -1; }

# --- good password, own domains: CRAM-MD5 ok; ATRN answered 453 (fake MTA: empty queue) ---
fm "alice, own domains" alice alice-secret a.example,b.example
if grep -q 'ODMR> AUTH CRAM-MD5' "$FM_OUT"; then ok "fetchmail uses AUTH CRAM-MD5"; else fail "fetchmail did not send AUTH CRAM-MD5" "$(cat "$FM_OUT")"; fi
check "odmrd logged 'AUTH CRAM-MD5 ok ... user=alice@provider.test'" \
	grep -q 'AUTH CRAM-MD5 ok from 127\.0\.0\.1: user=alice@provider\.test$' "$WORK/odmrd.log"
check "fetchmail sent 'ATRN a.example,b.example'" grep -q 'ODMR> ATRN a\.example,b\.example$' "$FM_OUT"
# The fake MTA's queue is empty: the granted ATRN is 453 (no mail), which fetchmail takes as success.
expect_eq "ATRN for own domains, nothing queued -> 453" "$(grep -oE 'ODMR< [0-9]{3}' "$FM_OUT" | tail -1)" 'ODMR< 453'
expect_eq "ATRN 453 (no mail) -> fetchmail exit 0" "$FM_RC" 0
expect_match "session summary: helo, user, asked" "$(last_summary)" \
	"helo=[^ ]+ user=alice@provider\.test mech=CRAM-MD5 asked=a\.example,b\.example .*code=221( |$)"

# --- fetchdomains with a space after the comma: "ATRN a.example, b.example" is accepted ---
fm "alice, 'a.example, b.example'" alice alice-secret 'a.example, b.example'
check "fetchmail sent 'ATRN a.example, b.example' (space kept)" grep -q 'ODMR> ATRN a\.example, b\.example$' "$FM_OUT"
expect_eq "ATRN with a space after the comma is not a syntax error: 453, nothing queued (exit $FM_RC)" \
	"$(grep -oE 'ODMR< [0-9]{3}' "$FM_OUT" | tail -1)" 'ODMR< 453'
expect_match "session summary: both domains parsed" "$(last_summary)" 'asked=a\.example,b\.example '

# --- ATRN for bob's domain as alice: 450 -> exit 4 ---
fm "alice asks for bob's domain" alice alice-secret c.example
expect_eq "ATRN for another customer's domain -> fetchmail exit 4" "$FM_RC" 4
check "odmrd logged the 450 with the reason" \
	grep -q 'user=alice@provider\.test asked=c\.example: 450 domain c\.example not this customer' "$WORK/odmrd.log"

# --- wrong password: 535 -> exit 128 (fetchmail 6.4.37; 3 = PS_AUTHFAIL in other paths) ---
nfail=$(log_count 'AUTH CRAM-MD5 failed from 127\.0\.0\.1 user=alice: 535 step: authentication failure')
fm "alice, wrong password" alice not-the-password a.example
expect_match "wrong password -> fetchmail exit 3 or 128 (got $FM_RC)" "$FM_RC" '^(3|128)$'
expect_eq "wrong password -> fetchmail exit 128 (as observed with 6.4.37)" "$FM_RC" 128
check "fetchmail saw 535" grep -q 'SMTP< 535 ' "$FM_OUT"
expect_eq "odmrd logged the failed AUTH, naming the user fetchmail tried" \
	"$(log_count 'AUTH CRAM-MD5 failed from 127\.0\.0\.1 user=alice: 535 step: authentication failure')" $((nfail + 1))
expect_eq "odmrd's log shows the 535" \
	"$(tail -3 "$WORK/odmrd.log" | grep -c '535')" 1

# --- bob, own domain ---
fm "bob, own domain" bob bob-secret c.example
expect_match "bob's own domain -> 453/451 and exit 0/8 (got exit $FM_RC)" \
	"$(grep -oE 'ODMR< [0-9]{3}' "$FM_OUT" | tail -1 | cut -c7-):$FM_RC" '^(453:0|451:8)$'
check "odmrd logged 'AUTH CRAM-MD5 ok ... user=bob@provider.test'" \
	grep -q 'AUTH CRAM-MD5 ok from 127\.0\.0\.1: user=bob@provider\.test$' "$WORK/odmrd.log"

# --- esmtpname/esmtppassword in the rcfile: fetchmail authenticates twice; RFC 4954 says the
# second AUTH gets 503, and fetchmail then gives up with exit 3. Documents the interop limit.
fm_rc_extra='esmtpname "alice" esmtppassword "alice-secret" '
fm "alice with esmtppassword (double AUTH)" alice alice-secret a.example
fm_rc_extra=
check "fetchmail sent a second AUTH CRAM-MD5 and got 503" grep -q 'ODMR< 503 ' "$FM_OUT"
expect_eq "second AUTH refused with 503 -> fetchmail exit 3 (AUTHFAIL)" "$FM_RC" 3

# --- provider trouble: missing map -> 451 -> exit 8; config error -> 421 greeting -> exit 128 ---
write_conf "$WORK/nomap.conf" customer_map="$WORK/no-such-map.db"
start_odmrd "$WORK/nomap.conf" || t_summary
fm "map missing" alice alice-secret a.example "$PORT"
expect_eq "customer map missing -> 451 -> fetchmail exit 8" "$FM_RC" 8
check "fetchmail saw 451" grep -q 'ODMR< 451 ' "$FM_OUT"

write_conf "$WORK/bad.conf" log_file="$WORK/bad.log" 'RAW:no_such_key = 1'
start_odmrd "$WORK/bad.conf" || t_summary
fm "config error" alice alice-secret a.example "$PORT"
expect_eq "421 greeting (config error) -> fetchmail exit 128" "$FM_RC" 128

check_no_crashes
check "fetchmail left nothing in root's HOME" test ! -e /root/.fetchids
t_summary
