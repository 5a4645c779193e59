#!/bin/bash
# tests/t-60-tls.sh - odmrd's TLS (issue 10): STARTTLS and wrapper mode through the real process,
# with real clients nobody on this project wrote (swaks, openssl s_client) and the scriptable
# tests/lib/odmrclient.py (Python's ssl = OpenSSL) for the cases no real client produces.
#
# Why: TLS must never weaken the session: no octet sent before the handshake is processed
# (CVE-2011-0411), a failed or stalled handshake ends the session (bounded, logged), configured TLS
# never falls back to plaintext silently (unreadable or mismatched key: 421 / 454 / logged close),
# `encrypt` and `tls_auth_only` hold AUTH and ATRN back until TLS, PLAIN and LOGIN exist only under
# TLS, EXTERNAL only with a verified client certificate, and a plaintext session pays nothing for
# TLS (the module is not even mapped). PKI: tests/lib/tls.sh, made here.
# Prints one ok/FAIL line per case and "N passed, N failed".

. "$(dirname "$0")/lib/common.sh"
. "$LIB/tls.sh"
. "$LIB/e2e.sh"

for tool in openssl swaks saslpasswd2 fetchmail; do
	command -v "$tool" >/dev/null || { fail "$tool is installed (tools/install-deps.sh)"; t_summary; }
done
P=$WORK/pki
tls_mk_pki "$P" || { fail "test PKI (openssl)"; t_summary; }
ok "test PKI made (root, intermediate, EC, Ed25519 and RSA servers, client certificates)"

mk_sasldb "$WORK/sasldb2" provider.test alice alice-secret bob bob-secret || fail "saslpasswd2"
mk_map "$WORK/customers" 'alice a.example, b.example' 'bob c.example' || fail "odmrd-map"
# One deferred message for a.example (so ATRN can be granted: 250).
mkdir -p "$WORK/mailbin"
# (When $WORK/mailbin/delivered exists the queue is empty: tls_mta.py has delivered it.)
cat >"$WORK/mailbin/postqueue" <<EOF
#!/bin/sh
if [ "\$1" = -j ] && [ ! -e "$WORK/mailbin/delivered" ]; then
	echo '{"queue_name":"deferred","queue_id":"T60","recipients":[{"address":"u@a.example","delay_reason":"deferred"}]}'
fi
exit 0
EOF
chmod 755 "$WORK/mailbin/postqueue"

LOG=$WORK/odmrd.log
# Pauses for the real clients that cannot wait for a reply (s_client): longer under valgrind.
PAUSE=1
[ -n "${ODMRD_WRAPPER:-}" ] && PAUSE=5
MECHS="CRAM-MD5 SCRAM-SHA-256 PLAIN LOGIN EXTERNAL"
tls_keys=(tls_cert_file="$P/srv-ec.crt" tls_key_file="$P/srv-ec.key" tls_module="$TOP/odmrd-tls.so"
	sasl_mech_list="$MECHS" idle_timeout=3 session_timeout=20)
write_conf "$WORK/may.conf" "${tls_keys[@]}" tls_ca_file="$P/ca.crt"
write_conf "$WORK/encrypt.conf" "${tls_keys[@]}" tls_security_level=encrypt postqueue="$WORK/mailbin/postqueue"
write_conf "$WORK/authonly.conf" "${tls_keys[@]}" tls_auth_only=yes
write_conf "$WORK/wrapper.conf" "${tls_keys[@]}" tls_cert_file="$P/srv-rsa.crt" tls_key_file="$P/srv-rsa.key" \
	tls_wrappermode=yes
write_conf "$WORK/fmssl.conf" "${tls_keys[@]}" tls_wrappermode=yes postqueue="$WORK/mailbin/postqueue" \
	sasl_mech_list=CRAM-MD5
write_conf "$WORK/plain.conf" sasl_mech_list="$MECHS" idle_timeout=3
# Only mechanisms that need TLS: a plaintext EHLO offers STARTTLS and no AUTH (not a 421).
write_conf "$WORK/tlsonly.conf" "${tls_keys[@]}" sasl_mech_list="PLAIN LOGIN"
# For the real clients that pause between lines (s_client): a longer idle timeout.
write_conf "$WORK/slow.conf" "${tls_keys[@]}" idle_timeout=30
# Session tickets: the test key file (two keys), the same keys rotated in a new one (new first,
# the old as second), a file without the old key, and one others may read.
KEY1=$(sed -n 1p "$P/tickets.key")
(umask 077 && { openssl rand -hex 32; echo "$KEY1"; } >"$WORK/rotated.key" && openssl rand -hex 32 >"$WORK/fresh.key")
cp "$P/tickets.key" "$WORK/loose.key" && chmod 644 "$WORK/loose.key"
write_conf "$WORK/tickets.conf" "${tls_keys[@]}" tls_ticket_key_file="$P/tickets.key"
write_conf "$WORK/tickets-ca.conf" "${tls_keys[@]}" tls_ticket_key_file="$P/tickets.key" tls_ca_file="$P/ca.crt"
write_conf "$WORK/tickets-wrapper.conf" "${tls_keys[@]}" tls_ticket_key_file="$P/tickets.key" tls_wrappermode=yes
write_conf "$WORK/rotated.conf" "${tls_keys[@]}" tls_ticket_key_file="$WORK/rotated.key"
write_conf "$WORK/fresh.conf" "${tls_keys[@]}" tls_ticket_key_file="$WORK/fresh.key"
write_conf "$WORK/loose.conf" "${tls_keys[@]}" tls_ticket_key_file="$WORK/loose.key"
write_conf "$WORK/nokey.conf" "${tls_keys[@]}" tls_key_file="$WORK/no-such.key"
write_conf "$WORK/nokey-wrapper.conf" "${tls_keys[@]}" tls_key_file="$WORK/no-such.key" tls_wrappermode=yes
write_conf "$WORK/mismatch-may.conf" "${tls_keys[@]}" tls_key_file="$P/other.key"
write_conf "$WORK/mismatch-encrypt.conf" "${tls_keys[@]}" tls_key_file="$P/other.key" tls_security_level=encrypt
write_conf "$WORK/mismatch-wrapper.conf" "${tls_keys[@]}" tls_key_file="$P/other.key" tls_wrappermode=yes
# Ed25519 (its signature costs a twentieth of ECDSA P-256's in Debian's wolfSSL: README "TLS").
ed_keys=(tls_cert_file="$P/srv-ed.crt" tls_key_file="$P/srv-ed.key")
write_conf "$WORK/ed.conf" "${tls_keys[@]}" "${ed_keys[@]}" idle_timeout=30 postqueue="$WORK/mailbin/postqueue"
write_conf "$WORK/fmssl-ed.conf" "${tls_keys[@]}" "${ed_keys[@]}" tls_wrappermode=yes \
	postqueue="$WORK/mailbin/postqueue" sasl_mech_list=CRAM-MD5
write_conf "$WORK/mismatch-ed-may.conf" "${tls_keys[@]}" "${ed_keys[@]}" tls_key_file="$P/other-ed.key"
write_conf "$WORK/mismatch-ed-encrypt.conf" "${tls_keys[@]}" "${ed_keys[@]}" tls_key_file="$P/other-ed.key" \
	tls_security_level=encrypt
write_conf "$WORK/mismatch-ed-wrapper.conf" "${tls_keys[@]}" "${ed_keys[@]}" tls_key_file="$P/other-ed.key" \
	tls_wrappermode=yes

declare -A SRV_PORT SRV_LOG
serve() {
	start_odmrd "$2" || t_summary
	SRV_PORT[$1]=$PORT
	SRV_LOG[$1]=$INETD_LOG
}
use() {
	PORT=${SRV_PORT[$1]}
	INETD_LOG=${SRV_LOG[$1]}
}
for s in may slow encrypt authonly wrapper fmssl plain tlsonly tickets tickets-ca tickets-wrapper rotated fresh loose nokey nokey-wrapper \
	mismatch-may mismatch-encrypt mismatch-wrapper ed fmssl-ed mismatch-ed-may mismatch-ed-encrypt mismatch-ed-wrapper; do
	serve "$s" "$WORK/$s.conf"
done

# c [ODMRCLIENT-OPTION...] -- STEP...: odmrclient.py against $PORT, trusting the test CA.
c() {
	timeout 60 "$PY" "$LIB/odmrclient.py" --timeout "${ODMRC_TIMEOUT:-10}" --port "$PORT" --cafile "$P/ca.crt" \
		--servername provider.test "$@"
}
# newlog: the log lines added by the last case (call mark first).
mark() { MARK=$({ wc -l <"$LOG"; } 2>/dev/null || echo 0); }
newlog() { wait_sessions 15; tail -n +"$((MARK + 1))" "$LOG"; }

# --- real clients -----------------------------------------------------------------------------------

use slow
mark
# -ign_eof: lines starting with Q or R are then sent, not taken as s_client commands.
out=$( (sleep "$PAUSE"; printf 'EHLO client.test\r\n'; sleep "$PAUSE"; printf 'QUIT\r\n'; sleep "$PAUSE") |
	timeout 20 openssl s_client -connect "127.0.0.1:$PORT" -starttls smtp -CAfile "$P/ca.crt" \
		-verify_return_error -verify_hostname provider.test -ign_eof 2>&1)
# (s_client prints "Verify return code: 0 (ok)" even when no handshake took place.)
expect_match "openssl s_client -starttls smtp: the chain (leaf + intermediate) verifies" "$out" \
	'Verified peername: provider\.test'
expect_match "openssl s_client: TLS 1.3 negotiated" "$out" 'Protocol *: TLSv1\.3|New, TLSv1\.3'
expect_match "openssl s_client: EHLO under TLS lists AUTH with PLAIN, no STARTTLS" \
	"$(echo "$out" | tr -d '\r' | sed -n '/^250-provider/,$p' | grep -E '^250[ -]' | tr '\n' ' ')" \
	'^250-provider\.test 250-AUTH [A-Z0-9 -]*PLAIN[A-Z0-9 -]* 250 ATRN $'
expect_match "openssl s_client: QUIT answered over TLS" "$out" '221 provider\.test closing'
expect_match "log: summary line has tls=TLSv1.3/<cipher> cert=-" "$(newlog | grep 'session peer=')" \
	' tls=TLSv1\.3/TLS_(AES|CHACHA20)_[A-Z0-9_]+ cert=-$'
expect_match "openssl s_client: key exchange X25519 (not P-256, which Debian's wolfSSL computes slowly)" \
	"$out" 'Server Temp Key: X25519'

# Ed25519: STARTTLS, the chain verified, AUTH and ATRN. (No QUIT: after ATRN's 250 the roles reverse.)
use ed
mark
out=$( (sleep "$PAUSE"; printf 'EHLO client.test\r\n'; sleep "$PAUSE"
	printf 'AUTH PLAIN %s\r\n' "$(printf '\0alice@provider.test\0alice-secret' | base64)"; sleep "$PAUSE"
	printf 'ATRN a.example\r\n'; sleep "$PAUSE") |
	timeout 30 openssl s_client -connect "127.0.0.1:$PORT" -starttls smtp -CAfile "$P/ca.crt" \
		-verify_return_error -verify_hostname provider.test 2>&1)
expect_match "Ed25519 certificate, openssl s_client -starttls smtp: TLS 1.3, the chain verifies" \
	"$(echo "$out" | tr '\n' ' ')" 'Verified peername: provider\.test --- New, TLSv1\.3,'
expect_match "Ed25519: the server signed with Ed25519, key exchange X25519" "$(echo "$out" | tr '\n' ' ')" \
	'Peer signature type: [Ee][Dd]25519 Server Temp Key: X25519'
expect_match "Ed25519: AUTH PLAIN 235, then ATRN 250 (reversing) over TLS" "$(echo "$out" | tr -d '\r' | tr '\n' ' ')" \
	' 250 ATRN 235 [^0-9]+ 250 [^0-9]*reversing'

expect_match "Ed25519: logged, summary user=alice tls=TLSv1.3" "$(newlog | grep 'session peer=')" \
	'user=alice@provider\.test .* tls=TLSv1\.3/'
mark
expect_eq "Ed25519, TLS 1.2 client (Python ssl, chain verified): STARTTLS, AUTH CRAM-MD5 235" \
	"$(c --tls-max 1.2 ehlo starttls tlsinfo ehlo cram=alice:alice-secret quit)" "220 250 220 TLSv1.2/new 250 235 221"
expect_match "Ed25519, TLS 1.2: an ECDHE-ECDSA suite (RFC 8422)" "$(newlog)" \
	'TLS from 127\.0\.0\.1: TLSv1\.2/TLS_ECDHE_ECDSA_WITH_[A-Z0-9_]+'
use may

for mech in CRAM-MD5 PLAIN LOGIN; do
	mark
	out=$(timeout 30 swaks --server 127.0.0.1 --port "$PORT" --ehlo client.test --tls \
		--tls-verify --tls-ca-path "$P/ca.crt" \
		--auth "$mech" --auth-user alice@provider.test --auth-password alice-secret \
		--quit-after AUTH 2>&1)
	expect_match "swaks --tls --tls-verify --auth $mech: 220 to STARTTLS, TLS 1.3, then 235" \
		"$(echo "$out" | grep -E '^(<[-~]  (220 2\.0\.0|235)|=== TLS started)' | tr '\n' ' ')" \
		'^<-  220 2\.0\.0 Ready to start TLS === TLS started with cipher TLSv1\.3:[A-Z0-9_]+:[0-9]+ <~  235 '
	expect_match "log: AUTH $mech ok under TLS" "$(newlog)" "AUTH $mech ok from 127\.0\.0\.1: user=alice@provider\.test"
done

# --- the protocol around STARTTLS -----------------------------------------------------------------------

use may
expect_eq "EHLO in the clear: STARTTLS offered, PLAIN and LOGIN not, EXTERNAL not" \
	"$(c caps quit)" "220 250:STARTTLS+AUTH_CRAM-MD5_SCRAM-SHA-256+ATRN 221"
expect_eq "PLAIN and LOGIN in the clear: 504 (not offered), CRAM-MD5 still works (fetchmail)" \
	"$(c ehlo plain=alice@provider.test:alice-secret login=alice@provider.test:alice-secret \
		cram=alice:alice-secret quit)" "220 250 504 504 235 221"
expect_eq "STARTTLS, then EHLO again: no STARTTLS, PLAIN and LOGIN offered; PLAIN works" \
	"$(c ehlo starttls caps plain=alice@provider.test:alice-secret tlsinfo quit)" \
	"220 250 220 250:AUTH_CRAM-MD5_SCRAM-SHA-256-PLUS_SCRAM-SHA-256_PLAIN_LOGIN+ATRN 235 TLSv1.3/new 221"
mark
use tlsonly
expect_eq "only PLAIN and LOGIN listed: no AUTH before TLS, both after it; STARTTLS before EHLO too" \
	"$(c caps starttls caps plain=alice@provider.test:alice-secret quit) $(c starttls caps quit)" \
	"220 250:STARTTLS+ATRN 220 250:AUTH_PLAIN_LOGIN+ATRN 235 221 220 220 250:AUTH_PLAIN_LOGIN+ATRN 221"
use may
mark
expect_eq "PLAIN under TLS with a wrong password -> 535" \
	"$(c ehlo starttls ehlo plain=alice@provider.test:wrong quit)" "220 250 220 250 535 221"
expect_match "log: the failed PLAIN names the user tried" "$(newlog)" \
	'AUTH PLAIN failed from 127\.0\.0\.1 user=alice@provider\.test: 535 '
expect_eq "PLAIN under TLS, authzid bob, authcid alice, alice's password -> 535 (no acting as another)" \
	"$(c ehlo starttls ehlo plainz=bob:alice:alice-secret quit)" "220 250 220 250 535 221"
expect_eq "PLAIN under TLS, empty authzid, the same credentials -> 235 (control)" \
	"$(c ehlo starttls ehlo plainz=:alice:alice-secret quit)" "220 250 220 250 235 221"
expect_eq "STARTTLS before EHLO works; AUTH right after TLS needs a new EHLO (503)" \
	"$(c starttls cram=alice:alice-secret ehlo cram=alice:alice-secret quit)" "220 220 503 250 235 221"
expect_eq "STARTTLS twice: 503" "$(c ehlo starttls starttls ehlo starttls quit)" "220 250 220 503 250 503 221"
expect_eq "STARTTLS with an argument: 501, no TLS" "$(c ehlo line='STARTTLS now' tlsinfo quit)" "220 250 501 - 221"
expect_eq "STARTTLS after AUTH: 503" "$(c ehlo cram=alice:alice-secret starttls quit)" "220 250 235 503 221"
expect_eq "SCRAM-SHA-256 under TLS (no binding asked): 235, server signature verified" \
	"$(c ehlo starttls ehlo scram=alice@provider.test:alice-secret quit)" "220 250 220 250 235 221"

# CVE-2011-0411: octets after STARTTLS in the same packet are never processed as commands.
mark
expect_eq "STARTTLS injection (STARTTLS and RSET in one packet): 554, no TLS, closed" \
	"$(c ehlo raw='STARTTLS\r\nRSET\r\n' eof)" "220 250 554 EOF"
expect_match "STARTTLS injection: logged" "$(newlog)" 'without waiting for the reply|data after STARTTLS'
# ... and the same octets arriving after our read but before the handshake: the handshake takes
# them for a ClientHello, fails, and they are never answered as commands.
mark
expect_eq "plaintext command instead of a ClientHello: no reply to it, closed" \
	"$(c ehlo line=STARTTLS raw='RSET\r\n' eof)" "220 250 220 EOF EOF"
expect_match "garbage instead of a ClientHello: the session ends, logged with a reason" \
	"$(newlog)" 'TLS handshake failed from 127\.0\.0\.1: handshake: .+'
check "garbage instead of a ClientHello: summary result=tls-failed" \
	sh -c "tail -n +$((MARK + 1)) '$LOG' | grep -q 'code=220 result=tls-failed tls=- cert=-'"

# A client that stops in the middle of the handshake: bounded by idle_timeout (3 s).
mark
out=$("$PY" - "$PORT" <<'EOF'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
f = s.makefile("rb")
f.readline(); s.sendall(b"EHLO c.test\r\n")
while f.readline()[3:4] != b" ": pass
s.sendall(b"STARTTLS\r\n"); f.readline()
# the first 20 octets of a TLS ClientHello record header and handshake header, then silence
t0 = time.monotonic()
s.sendall(bytes.fromhex("16030100f4010000f00303") + b"\0" * 9)
print("EOF" if s.recv(100) == b"" else "DATA", int((time.monotonic() - t0) * 1000))
EOF
)
ms=${out#* }
expect_eq "stalled handshake: odmrd closes" "${out%% *}" EOF
expect_eq "stalled handshake: after idle_timeout (3 s), not much later" \
	"$([ "$ms" -ge 2500 ] && [ "$ms" -lt 4500 ] && echo yes || echo "no: $ms ms")" yes
expect_match "stalled handshake: logged as timed out" "$(newlog)" 'TLS handshake failed from 127\.0\.0\.1: handshake timed out'

# SNI is ignored safely: any name, or none, gets the same certificate and session.
expect_eq "SNI other.example: handshake and session as usual" \
	"$("$PY" "$LIB/odmrclient.py" --port "$PORT" --servername other.example ehlo starttls ehlo quit)" "220 250 220 250 221"

# --- client certificates and EXTERNAL --------------------------------------------------------------------
# The identity is the verified certificate's subject CN ("alice"); libsasl2 qualifies it with
# sasl_realm like any user name, and it is looked up in the customer map as such.

ext() { c --cert "$P/$1.crt" --key "$P/$1.key" "${@:2}"; }
mark
expect_eq "EXTERNAL, verified certificate CN=alice: offered, 235, ATRN as alice (453: empty queue)" \
	"$(ext alice starttls caps external atrn=a.example quit)" \
	"220 220 250:AUTH_CRAM-MD5_SCRAM-SHA-256-PLUS_SCRAM-SHA-256_PLAIN_LOGIN_EXTERNAL+ATRN 235 453 221"
expect_match "EXTERNAL: logged as alice, summary mech=EXTERNAL cert=alice" "$(newlog)" \
	'user=alice@provider\.test mech=EXTERNAL asked=a\.example .* cert=alice$'
for who in stranger:'unable to get local issuer certificate' expired:'certificate has expired'; do
	mark
	expect_eq "EXTERNAL, ${who%%:*} certificate: not offered, AUTH EXTERNAL 535, CRAM-MD5 still 235" \
		"$(ext "${who%%:*}" starttls caps external cram=alice:alice-secret quit)" \
		"220 220 250:AUTH_CRAM-MD5_SCRAM-SHA-256-PLUS_SCRAM-SHA-256_PLAIN_LOGIN+ATRN 535 235 221"
	expect_match "EXTERNAL, ${who%%:*} certificate: the reason is logged" "$(newlog)" \
		"client certificate not verified: ${who#*:}"
done
expect_eq "EXTERNAL without a certificate: not offered, 535" \
	"$(c starttls caps external quit)" "220 220 250:AUTH_CRAM-MD5_SCRAM-SHA-256-PLUS_SCRAM-SHA-256_PLAIN_LOGIN+ATRN 535 221"
expect_eq "EXTERNAL in the clear (a certificate is impossible there): 535" "$(c ehlo external quit)" "220 250 535 221"

# --- channel binding: SCRAM-SHA-256-PLUS with libsasl2's own client ------------------------------------
if cc -O2 -o "$WORK/scramplus" "$LIB/scramplus.c" -lsasl2 -lssl -lcrypto 2>"$WORK/scramplus.err"; then
	sp() { timeout 30 "$WORK/scramplus" "$PORT" "$P/ca.crt" alice@provider.test "$@" 2>&1; }
	expect_eq "SCRAM-SHA-256-PLUS, TLS 1.3 (tls-exporter): 235" "$(sp alice-secret)" \
		"auth=CRAM-MD5 SCRAM-SHA-256-PLUS SCRAM-SHA-256 PLAIN LOGIN binding=tls-exporter mech=SCRAM-SHA-256-PLUS result=235"
	expect_eq "SCRAM-SHA-256-PLUS, TLS 1.2 (tls-unique): 235" "$(sp alice-secret --tls12)" \
		"auth=CRAM-MD5 SCRAM-SHA-256-PLUS SCRAM-SHA-256 PLAIN LOGIN binding=tls-unique mech=SCRAM-SHA-256-PLUS result=235"
	mark
	expect_match "SCRAM-SHA-256-PLUS with other binding data (TLS 1.3): 535" "$(sp alice-secret --wrong-binding)" 'result=535$'
	expect_match "... libsasl2 says why" "$(newlog)" 'sasl: Channel bindings mismatch'
	expect_match "SCRAM-SHA-256-PLUS with other binding data (TLS 1.2): 535" "$(sp alice-secret --tls12 --wrong-binding)" 'result=535$'
	expect_match "SCRAM-SHA-256-PLUS naming tls-unique under TLS 1.3: 535" \
		"$(sp alice-secret --binding-name tls-unique)" 'result=535$'
	expect_match "SCRAM-SHA-256-PLUS with a wrong password: 535" "$(sp wrong-secret)" 'result=535$'
else
	fail "scramplus.c compiles (libsasl2-dev, libssl-dev)" "$(cat "$WORK/scramplus.err")"
fi

# --- session resumption across processes (tls_ticket_key_file) ---------------------------------------------
# resume PORT[,PORT2] MODE [TLS-MAX] [CERT]: two sessions, the second offering the first's ticket.
resume() {
	local cert=()
	[ -n "${4:-}" ] && cert=("$P/$4.crt" "$P/$4.key")
	timeout 60 "$PY" "$LIB/tls_resume.py" "$1" "$P/ca.crt" "$2" "${3:--}" "${cert[@]}" 2>&1
}
mark
expect_eq "tickets, TLS 1.3 over STARTTLS: the second process resumes the first one's session" \
	"$(resume "${SRV_PORT[tickets]}" starttls)" \
	"first=TLSv1.3/new second=TLSv1.3/resumed ticket=yes caps=AUTH_CRAM-MD5_SCRAM-SHA-256-PLUS_SCRAM-SHA-256_PLAIN_LOGIN+ATRN"
expect_match "tickets: the resumed handshake is logged as such" "$(newlog)" 'TLS from 127\.0\.0\.1: TLSv1\.3/[A-Z0-9_]+ \(resumed\)'
expect_match "tickets, TLS 1.2: resumed" "$(resume "${SRV_PORT[tickets]}" starttls 1.2)" '^first=TLSv1\.2/new second=TLSv1\.2/resumed '
expect_match "tickets, wrapper mode: resumed" "$(resume "${SRV_PORT[tickets-wrapper]}" wrapper)" \
	'^first=TLSv1\.3/new second=TLSv1\.3/resumed '
expect_match "no tls_ticket_key_file: no ticket, never resumed" "$(resume "${SRV_PORT[may]}" starttls)" \
	'^first=TLSv1\.3/new second=TLSv1\.3/new ticket=no '
expect_match "key rotated (new key first, the old one second): the old ticket is still accepted" \
	"$(resume "${SRV_PORT[tickets]},${SRV_PORT[rotated]}" starttls)" '^first=TLSv1\.3/new second=TLSv1\.3/resumed '
expect_match "old key dropped from the file: full handshake, the session goes on" \
	"$(resume "${SRV_PORT[tickets]},${SRV_PORT[fresh]}" starttls)" '^first=TLSv1\.3/new second=TLSv1\.3/new '
mark
expect_match "ticket key file readable by others: not used (no ticket)" \
	"$(resume "${SRV_PORT[loose]}" starttls)" '^first=TLSv1\.3/new second=TLSv1\.3/new ticket=no '
expect_match "ticket key file readable by others: warned in the log" "$(newlog)" \
	'tls_ticket_key_file .*loose\.key: readable or writable by others than its owner .*session tickets are off'
expect_match "client certificates and tickets: no ticket for a certificate session, EXTERNAL again" \
	"$(resume "${SRV_PORT[tickets-ca]}" starttls - alice)" '^first=TLSv1\.3/new second=TLSv1\.3/new ticket=no caps=.*EXTERNAL'
expect_match "client certificates and tickets: a session without one still resumes" \
	"$(resume "${SRV_PORT[tickets-ca]}" starttls)" '^first=TLSv1\.3/new second=TLSv1\.3/resumed '
expect_match "client certificates and tickets, TLS 1.2: not resumed (the ticket is promised too early)" \
	"$(resume "${SRV_PORT[tickets-ca]}" starttls 1.2 alice)" '^first=TLSv1\.2/new second=TLSv1\.2/new ticket=no caps=.*EXTERNAL'

# --- encrypt and tls_auth_only ------------------------------------------------------------------------

use encrypt
expect_eq "encrypt: EHLO before TLS lists STARTTLS, not AUTH" "$(c caps quit)" "220 250:STARTTLS+ATRN 221"
expect_eq "encrypt: AUTH before TLS -> 530 5.7.0" "$(c ehlo cram=alice:alice-secret quit)" "220 250 530 221"
check "encrypt: the 530 text is RFC 3207's" sh -c "$(printf '%q ' "$PY" "$LIB/odmrclient.py" --port "$PORT" \
	--transcript "$WORK/enc.tr" ehlo line='AUTH CRAM-MD5' quit) >/dev/null; grep -q 'S: 530 5.7.0 Must issue a STARTTLS command first' '$WORK/enc.tr'"
expect_eq "encrypt: ATRN before TLS -> 530" "$(c ehlo atrn=a.example quit)" "220 250 530 221"
expect_eq "encrypt: after STARTTLS, AUTH and ATRN work (250, reversing)" \
	"$(c ehlo starttls ehlo cram=alice:alice-secret atrn=a.example)" "220 250 220 250 235 250"
use authonly
expect_eq "tls_auth_only: EHLO before TLS without AUTH" "$(c caps quit)" "220 250:STARTTLS+ATRN 221"
expect_eq "tls_auth_only: AUTH before TLS -> 530" "$(c ehlo cram=alice:alice-secret quit)" "220 250 530 221"
expect_eq "tls_auth_only: EHLO under TLS lists AUTH" "$(c starttls caps quit)" \
	"220 220 250:AUTH_CRAM-MD5_SCRAM-SHA-256-PLUS_SCRAM-SHA-256_PLAIN_LOGIN+ATRN 221"

# --- wrapper mode ---------------------------------------------------------------------------------------

use wrapper
expect_eq "wrapper mode (RSA certificate): TLS from the first octet, greeting and AUTH over TLS" \
	"$(c --tls tlsinfo caps cram=alice:alice-secret quit)" \
	"220 TLSv1.3/new 250:AUTH_CRAM-MD5_SCRAM-SHA-256-PLUS_SCRAM-SHA-256_PLAIN_LOGIN+ATRN 235 221"
expect_eq "wrapper mode, TLS 1.2 client: works" "$(c --tls --tls-max 1.2 tlsinfo ehlo quit)" "220 TLSv1.2/new 250 221"
mark
out=$("$PY" - "$PORT" <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"EHLO plaintext.test\r\n")
got = b""
try:
    while True:
        d = s.recv(4096)
        if not d:
            break
        got += d
except OSError:
    pass
print("closed; plaintext reply" if got[:3].isdigit() else "closed; no plaintext reply (%d octets)" % len(got))
EOF
)
expect_match "plaintext to the wrapper port: closed, never a plaintext reply" "$out" '^closed; no plaintext reply'
expect_match "plaintext to the wrapper port: logged" "$(newlog)" 'TLS handshake failed from 127\.0\.0\.1: handshake: '
out=$( (sleep "$PAUSE"; echo QUIT; sleep "$PAUSE") | timeout 30 openssl s_client -connect "127.0.0.1:$PORT" \
	-CAfile "$P/ca.crt" -verify_return_error -quiet 2>&1)
expect_match "wrapper mode: openssl s_client verifies the RSA chain and gets the greeting" "$out" \
	'^220 provider\.test ESMTP'

# --- the reversed state over TLS with the real fetchmail --ssl ---------------------------------------------
# fetchmail --ssl reads one line from its TLS library, then waits on the raw socket: lines sharing a
# TLS record would stall it until its timeout. 500 lines (some dot-stuffed) must pass at once.
# Once with the ECDSA chain, once with an Ed25519 certificate.
for fm in fmssl:ECDSA fmssl-ed:Ed25519; do
	use "${fm%%:*}"
	kt=${fm#*:}
	rm -f "$WORK/mailbin/delivered"
	"$PY" "$LIB/tls_mta.py" "$WORK/run/a.example" "$WORK/mailbin/delivered" 500 >"$WORK/tls_mta.out" 2>&1 &
	mta_pid=$!
	e2e_sink_start "${fm%%:*}"
	mark
	E2E_FM_OPTS="ssl sslcertck sslcertfile $P/ca.crt sslcommonname provider.test" E2E_FM_TIMEOUT=60 \
		e2e_fetchmail "${fm%%:*}" alice alice-secret a.example
	wait "$mta_pid"
	expect_eq "fetchmail --ssl ($kt): exit 0" "$FM_RC" 0
	expect_match "fetchmail --ssl ($kt): the MTA's LMTP transaction completed through the TLS session" \
		"$(cat "$WORK/tls_mta.out")" '^lmtp=220,250,250,250,354,250,221 '
	data_s=$(sed -n 's/.* data_s=\([0-9.]*\).*/\1/p' "$WORK/tls_mta.out")
	expect_eq "fetchmail --ssl ($kt): 500 lines relayed without a stall (${data_s:-?} s, fetchmail's timeout is 60 s)" \
		"$(awk -v s="${data_s:-99}" 'BEGIN { print (s < 5) ? "fast" : "stalled" }')" fast
	expect_eq "fetchmail --ssl ($kt): the customer's server got the message, every line" \
		"$(cat "$SINK_DIR"/*.msg 2>/dev/null | grep -ac 'line [0-9]* of the TLS test message')" 499
	expect_match "fetchmail --ssl ($kt): summary line result=done tls=TLSv1.3" "$(newlog | grep 'session peer=')" \
		'user=alice@provider\.test .*result=done tls=TLSv1\.3/'
	e2e_sink_stop
done

# --- configured TLS never falls back to plaintext ----------------------------------------------------------

use nokey
mark
expect_eq "unreadable tls_key_file (STARTTLS port): 421 at connect" "$(c eof)" "421 EOF"
expect_match "unreadable tls_key_file: the log names the key and the reason" "$(newlog)" \
	"cannot serve 127\.0\.0\.1: tls_key_file $WORK/no-such\.key: No such file or directory"
use nokey-wrapper
mark
expect_eq "unreadable tls_key_file (wrapper port): closed, no plaintext" "$(c --tls eof)" "EOF EOF"
expect_match "unreadable tls_key_file (wrapper port): logged" "$(newlog)" \
	'cannot serve 127\.0\.0\.1: tls_key_file .*No such file or directory \(TLS wrapper mode: closed without a reply\)'
# The same with an Ed25519 certificate and another Ed25519 key.
for mm in mismatch: mismatch-ed:" (Ed25519)"; do
	kt=${mm#*:}
	use "${mm%%:*}-may"
	mark
	expect_eq "key not matching the certificate$kt, may: STARTTLS -> 454, plaintext goes on" \
		"$(c ehlo starttls tlsinfo cram=alice:alice-secret quit)" "220 250 454 - 235 221"
	expect_match "mismatch$kt, may: logged with the reason" "$(newlog)" \
		'STARTTLS from 127\.0\.0\.1: TLS not available: tls_key_file does not match the certificate'
	use "${mm%%:*}-encrypt"
	mark
	expect_eq "mismatch$kt, encrypt: 421 at connect" "$(c eof)" "421 EOF"
	expect_match "mismatch$kt, encrypt: logged" "$(newlog)" 'cannot serve 127\.0\.0\.1: tls_key_file does not match'
	use "${mm%%:*}-wrapper"
	mark
	expect_eq "mismatch$kt, wrapper: closed without a reply" "$(c --tls eof)" "EOF EOF"
	expect_match "mismatch$kt, wrapper: logged" "$(newlog)" \
		'cannot serve 127\.0\.0\.1: tls_key_file does not match.*closed without a reply'
done

# odmrd -t finds the same before any customer does (the rest of its checks may complain about this
# test set-up; only its "TLS:" lines are looked at), and so does -o on its command line.
tls_t() { timeout 60 "$ODMRD" -t "$@" 2>&1 | grep -E 'TLS:' ; }
expect_eq "odmrd -t: a good certificate and key, no TLS complaint" "$(tls_t -f "$WORK/may.conf")" ""
expect_match "odmrd -t: key not matching the certificate" "$(tls_t -f "$WORK/mismatch-may.conf")" \
	'^odmrd: error: TLS: tls_key_file does not match the certificate'
expect_eq "odmrd -t: an Ed25519 certificate and its key, no TLS complaint" "$(tls_t -f "$WORK/ed.conf")" ""
expect_match "odmrd -t: another Ed25519 key" "$(tls_t -f "$WORK/mismatch-ed-may.conf")" \
	'^odmrd: error: TLS: tls_key_file does not match the certificate'
expect_match "odmrd -t: the Ed25519 certificate with the ECDSA key" \
	"$(tls_t -f "$WORK/ed.conf" -o tls_key_file="$P/srv-ec.key")" '^odmrd: error: TLS: tls_key_file does not match'
expect_match "odmrd -t: the ECDSA certificate with an Ed25519 key" \
	"$(tls_t -f "$WORK/may.conf" -o tls_key_file="$P/srv-ed.key")" '^odmrd: error: TLS: tls_key_file does not match'
expect_match "odmrd -t: the RSA certificate with an Ed25519 key" \
	"$(tls_t -f "$WORK/wrapper.conf" -o tls_key_file="$P/srv-ed.key")" '^odmrd: error: TLS: tls_key_file does not match'
expect_match "odmrd -t: unreadable key" "$(tls_t -f "$WORK/nokey.conf")" \
	"^odmrd: error: TLS: tls_key_file $WORK/no-such\.key: No such file or directory"
expect_match "odmrd -t: ticket key file readable by others" "$(tls_t -f "$WORK/loose.conf")" \
	'^odmrd: error: TLS: tls_ticket_key_file .*loose\.key.*'
expect_eq "odmrd -t: PLAIN, LOGIN, EXTERNAL and SCRAM-SHA-256-PLUS count as offered (under TLS)" \
	"$(timeout 60 "$ODMRD" -t -f "$WORK/may.conf" -o sasl_mech_list="$MECHS SCRAM-SHA-256-PLUS" 2>&1 | grep sasl_mech_list)" ""
expect_eq "odmrd -t without TLS: they are warnings (never offered), not missing plugins" \
	"$(timeout 60 "$ODMRD" -t -f "$WORK/plain.conf" 2>&1 | grep sasl_mech_list)" \
	"odmrd: warning: sasl_mech_list: PLAIN is offered only under TLS, and tls_cert_file is not set
odmrd: warning: sasl_mech_list: LOGIN is offered only under TLS, and tls_cert_file is not set
odmrd: warning: sasl_mech_list: EXTERNAL is offered only under TLS, and tls_cert_file is not set"
expect_match "odmrd -t -o: the override is checked too" \
	"$(tls_t -f "$WORK/may.conf" -o tls_key_file="$P/other.key")" '^odmrd: error: TLS: tls_key_file does not match'
expect_eq "odmrd -n -o: the override is shown" \
	"$("$ODMRD" -n -f "$WORK/may.conf" -o tls_wrappermode=yes | grep -E '^tls_(wrappermode|security_level)')" \
	"tls_wrappermode = yes"

# --- a plaintext session pays nothing for TLS ----------------------------------------------------------------

# maps_of CONF-NAME [starttls]: the shared objects mapped by the odmrd serving a client that said
# EHLO (and did STARTTLS and a NOOP under TLS) and now waits until we have looked.
maps_of() {
	use "$1"
	shift
	local lp=$WORK/maps.lport pid
	rm -f "$lp" "$lp.ready" "$lp.done"
	"$PY" -c '
import os, socket, ssl, sys, time
port, lp, steps = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
s = socket.create_connection(("127.0.0.1", port), timeout=60)
open(lp, "w").write(str(s.getsockname()[1]))
f = s.makefile("rb")
f.readline()
s.sendall(b"EHLO c.test\r\n")
while f.readline()[3:4] != b" ": pass
if "starttls" in steps:
    s.sendall(b"STARTTLS\r\n"); f.readline()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
    s = ctx.wrap_socket(s)
    s.sendall(b"NOOP\r\n"); s.recv(100)
open(lp + ".ready", "w").close()
end = time.time() + 60
while not os.path.exists(lp + ".done") and time.time() < end:
    time.sleep(0.05)
' "$PORT" "$lp" "$@" &
	local cpid=$!
	if wait_for 60 test -e "$lp.ready"; then
		pid=$(grep -E "peer=127\.0\.0\.1:$(cat "$lp")\$" "$INETD_LOG" | sed -E 's/.* pid=([0-9]+) .*/\1/')
		grep -oE '[^/ ]+\.so[.0-9]*$' "/proc/$pid/maps" 2>/dev/null | sort -u | tr '\n' ' '
	else
		echo "no client"
	fi
	touch "$lp.done"
	wait "$cpid"
}
maps=$(maps_of may)
expect_match "plaintext session on a TLS-enabled port: odmrd running, libsasl2 mapped" "$maps" 'libsasl2'
expect_eq "plaintext session: neither odmrd-tls.so nor any TLS library mapped" \
	"$(echo "$maps" | tr ' ' '\n' | grep -E 'odmrd-tls|wolfssl|libssl|gnutls')" ""
maps=$(maps_of may starttls)
expect_match "after STARTTLS: odmrd-tls.so and libwolfssl are mapped" "$maps" 'libwolfssl.*odmrd-tls|odmrd-tls.*libwolfssl'

# --- the shipped wrapper-port service files ---------------------------------------------------------------
# xinetd.d/odmrs under the real xinetd, and the ExecStart of systemd/odmrs@.service under
# systemd-socket-activate (the way Accept=yes runs it), each with the paths and port of this test:
# their "-o tls_wrappermode=yes" gives TLS from the first octet.
svc_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
write_conf "$WORK/svc.conf" "${tls_keys[@]}" log_file="$WORK/svc.log"
XPORT=$(svc_port)
sed -e "s#/usr/sbin/odmrd#$ODMRD#" -e "s#/etc/odmrd/odmrd.conf#$WORK/svc.conf#" \
	-e "s/^\([[:space:]]*port[[:space:]]*=\).*/\1 $XPORT\n\tbind = 127.0.0.1/" \
	-e 's/_odmrd/root/g' -e '/^[[:space:]]*libwrap/d' -e 's/^\([[:space:]]*disable[[:space:]]*=\).*/\1 no/' \
	-e '/^[[:space:]]*log_type/d' "$TOP/xinetd.d/odmrs" >"$WORK/xinetd.odmrs"
printf 'defaults\n{\n}\nincludedir %s/xinetd.d\n' "$WORK" >"$WORK/xinetd.conf"
mkdir -p "$WORK/xinetd.d" && cp "$WORK/xinetd.odmrs" "$WORK/xinetd.d/odmrs"
spawn xinetd -dontfork -f "$WORK/xinetd.conf" -filelog "$WORK/xinetd.log" -pidfile "$WORK/xinetd.pid"
if wait_for 10 sh -c "ss -ltnH 'sport = :$XPORT' | grep -q LISTEN"; then
	PORT=$XPORT
	expect_eq "shipped xinetd.d/odmrs (real xinetd): TLS from the first octet, greeting and AUTH over TLS" \
		"$(c --tls tlsinfo ehlo cram=alice:alice-secret quit)" "220 TLSv1.3/new 250 235 221"
else
	fail "shipped xinetd.d/odmrs: xinetd listens" "$(cat "$WORK/xinetd.log" 2>/dev/null | tail -5)"
fi
kill_tree "$BG_PID"
exec_start=$(sed -n 's/^ExecStart=//p' "$TOP/systemd/odmrs@.service" |
	sed -e "s#/usr/sbin/odmrd#$ODMRD#" -e "s#/etc/odmrd/odmrd.conf#$WORK/svc.conf#")
SPORT=$(svc_port)
# shellcheck disable=SC2086 # ExecStart is a command line
spawn systemd-socket-activate -l "127.0.0.1:$SPORT" --accept --inetd $exec_start 2>>"$WORK/ssa.log"
if wait_for 10 sh -c "ss -ltnH 'sport = :$SPORT' | grep -q LISTEN"; then
	PORT=$SPORT
	expect_eq "shipped systemd/odmrs@.service ExecStart (systemd-socket-activate --accept): TLS from the first octet" \
		"$(c --tls tlsinfo ehlo quit)" "220 TLSv1.3/new 250 221"
else
	fail "shipped systemd/odmrs@.service: systemd-socket-activate listens"
fi
kill_tree "$BG_PID"
inetd_line=$(grep -v '^#' "$TOP/inetd/inetd.conf.odmrs" | grep -v '^$')
expect_match "shipped inetd/inetd.conf.odmrs: the same odmrd command line with -o tls_wrappermode=yes" \
	"$inetd_line" $'\t/usr/sbin/odmrd\todmrd -f /etc/odmrd/odmrd.conf -o tls_wrappermode=yes$'

# --- the whole run -----------------------------------------------------------------------------------------

wait_sessions 20
check_no_crashes
expect_eq "log: no key material and no raw control characters" \
	"$(LC_ALL=C tr -d '\n\040-\176' <"$LOG" | wc -c) $(grep -c -- '-----BEGIN' "$LOG")" "0 0"
nconn=$(cat "${T_INETD_LOGS[@]}" | grep -c '^conn ')
expect_eq "log: one summary line per connection ($nconn)" "$(log_count ': session peer=')" "$nconn"
check "odmrd wrote nothing to stderr" sh -c "! cat '$WORK'/inetd*.stderr | grep -q ."
t_summary
