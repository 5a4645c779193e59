#!/bin/bash
# tests/t-65-testssl.sh - testssl.sh (Debian's testssl) against odmrd's STARTTLS port and its
# wrapper (TLS-on-connect) port: no vulnerability, no protocol or cipher below odmrd's policy.
#
# Why: an auditor nobody on this project wrote checks what odmrd's TLS really offers: TLS 1.2 and
# 1.3 only, AEAD suites with forward secrecy only, no compression, no client-initiated
# renegotiation, none of the known attacks. The STARTTLS port uses the RSA certificate and ticket
# keys (server defaults are checked there too: -S), the wrapper port the ECDSA chain. Every
# finding of severity MEDIUM or worse fails; the full testssl output is kept in this suite's log.
# Each run is bounded (TESTSSL_LIMIT seconds, default 240); together they take about two minutes.

. "$(dirname "$0")/lib/common.sh"
. "$LIB/tls.sh"

command -v testssl >/dev/null || { fail "testssl is installed (Debian package testssl.sh)"; t_summary; }
P=$WORK/pki
tls_mk_pki "$P" || { fail "test PKI (openssl)"; t_summary; }
mk_sasldb "$WORK/sasldb2" provider.test alice alice-secret || fail "saslpasswd2"
mk_map "$WORK/customers" 'alice a.example' || fail "odmrd-map"
keys=(tls_module="$TOP/odmrd-tls.so" idle_timeout=10 session_timeout=30)
write_conf "$WORK/starttls.conf" "${keys[@]}" tls_cert_file="$P/srv-rsa.crt" tls_key_file="$P/srv-rsa.key" \
	tls_ticket_key_file="$P/tickets.key"
write_conf "$WORK/wrapper.conf" "${keys[@]}" tls_cert_file="$P/srv-ec.crt" tls_key_file="$P/srv-ec.key" \
	tls_wrappermode=yes
start_odmrd "$WORK/starttls.conf" || t_summary
STARTTLS_PORT=$PORT
start_odmrd "$WORK/wrapper.conf" || t_summary
WRAPPER_PORT=$PORT

# audit NAME PORT TESTSSL-OPTION...: one bounded testssl run; output shown, findings checked.
audit() {
	local name=$1 port=$2 json=$WORK/$1.json t0=$SECONDS
	shift 2
	rm -f "$json"
	echo "# ---- testssl $* 127.0.0.1:$port ($name) ----"
	# -n none: no DNS; --add-ca: trust the test CA (the chain itself is checked too).
	timeout -k 5 "${TESTSSL_LIMIT:-240}" testssl --quiet --color 0 --warnings off -n none \
		--openssl-timeout 5 --connect-timeout 5 --add-ca "$P/ca.crt" --jsonfile "$json" \
		"$@" "127.0.0.1:$port" 2>&1 | sed 's/^/#   /'
	echo "# ---- $name: $((SECONDS - t0)) s ----"
	if [ ! -s "$json" ]; then
		fail "$name: testssl finished and wrote its findings"
		return
	fi
	ok "$name: testssl finished ($((SECONDS - t0)) s)"
	# shellcheck disable=SC2016
	"$PY" - "$json" >"$WORK/$name.findings" <<'EOF'
import json, sys
for f in json.load(open(sys.argv[1])):
    print("%s %s %s" % (f["id"], f["severity"], f["finding"].replace(" ", "_")))
EOF
	expect_eq "$name: no finding of severity MEDIUM, HIGH or CRITICAL" \
		"$(awk '$2 ~ /^(MEDIUM|HIGH|CRITICAL)$/' "$WORK/$name.findings")" ""
	local want got
	for want in SSLv2:not_offered SSLv3:not_offered TLS1:not_offered TLS1_1:not_offered \
		TLS1_2:offered TLS1_3:offered_with_final cipherlist_NULL:not_offered \
		cipherlist_aNULL:not_offered cipherlist_EXPORT:not_offered cipherlist_LOW:not_offered \
		cipherlist_3DES_IDEA:not_offered cipherlist_AVERAGE:not_offered PFS:offered \
		heartbleed:not_vulnerable CCS:not_vulnerable secure_client_renego:not_vulnerable \
		CRIME_TLS:not_vulnerable ROBOT:not_vulnerable SWEET32:not_vulnerable LUCKY13:not_vulnerable \
		BEAST:not_vulnerable RC4:not_vulnerable; do
		got=$(awk -v id="${want%%:*}" '$1 == id { print $3 }' "$WORK/$name.findings")
		expect_match "$name: ${want%%:*} ${want#*:}" "$got" "^${want#*:}(,|_\(|$)"
	done
}

audit starttls "$STARTTLS_PORT" -t smtp -p -s -f -S -U
expect_match "starttls: session tickets with a lifetime (tls_ticket_key_file)" \
	"$(awk '$1 == "TLS_session_ticket"' "$WORK/starttls.findings")" 'valid_for_3600_seconds'
expect_match "starttls: the RSA certificate chain is trusted" \
	"$(awk '$1 == "cert_chain_of_trust"' "$WORK/starttls.findings")" ' OK '
audit wrapper "$WRAPPER_PORT" -p -s -f -U

wait_sessions 30
check_no_crashes
t_summary
