#!/bin/bash
# tests/t-41-inetd.sh - odmrd started by a real openbsd-inetd, with the shipped inetd line.
#
# Why: inetd/inetd.conf.odmrd is what an openbsd-inetd admin pastes into /etc/inetd.conf; this
# suite runs that line (only the listening address, the account, the program path and the
# config path replaced for the test) under Debian 12's openbsd-inetd in the foreground on a
# loopback port: a full session (greeting, EHLO, AUTH CRAM-MD5, ATRN refused with 450, QUIT),
# then a burst of 400 sessions within a few seconds, after which the port must still serve:
# openbsd-inetd's per-minute rate limit ("nowait.N") stops a service for ten minutes once N is
# exceeded, so a small N (the line used to say 50) lets one host switch ODMR off.
# openbsd-inetd conflicts with xinetd as a Debian package, so tools/install-deps.sh unpacks it
# (dpkg -x) into /var/cache/odmrd-test/openbsd-inetd instead of installing it; nothing under
# /etc is read or written (inetd gets its config file as an argument; -l is not used).
# Needs root (inetd setuid to the line's account). Prints "N passed, N failed".

if [ -z "${T41_TIMED:-}" ]; then
	T41_TIMED=1 exec timeout --foreground --kill-after=10 "${T41_TIMEOUT:-180}" bash "$0" "$@"
fi
. "$(dirname "$0")/lib/common.sh"

[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (inetd setuid)"; echo "0 passed, 0 failed"; exit 0; }
INETD=${INETD:-/var/cache/odmrd-test/openbsd-inetd/usr/sbin/inetd}
if [ ! -x "$INETD" ]; then
	fail "openbsd-inetd is unpacked at $INETD (run tools/install-deps.sh)"
	t_summary
fi
if [ ! -x "$ODMRD" ] || [ ! -x "$ODMRD_MAP" ]; then
	fail "odmrd and odmrd-map are built (run make)"
	t_summary
fi
SHIPPED=$TOP/inetd/inetd.conf.odmrd
A=alice:alice-secret
ILOG=$WORK/inetd.out

# --- the shipped line ---------------------------------------------------------------------------

line=$(grep -v -E '^[[:space:]]*(#|$)' "$SHIPPED")
expect_eq "inetd.conf.odmrd has exactly one service line" "$(printf '%s\n' "$line" | wc -l)" 1
read -r -a f <<<"$line"
expect_eq "the shipped line's fields" "${f[*]}" \
	"366 stream tcp nowait.60000 _odmrd /usr/sbin/odmrd odmrd -f /etc/odmrd/odmrd.conf"

# --- fixtures -----------------------------------------------------------------------------------

t_customers
write_conf "$WORK/odmrd.conf"

# inetd_conf PORT: the shipped line with the test's address, account, program and config (the
# socket type, protocol and nowait.N - the rate limit under test - stay as shipped).
inetd_conf() {
	printf '# written by %s from %s\n' "$SUITE" "$SHIPPED"
	printf '127.0.0.1:%s\t%s\t%s\t%s\troot\t%s\todmrd -f %s\n' "$1" "${f[1]}" "${f[2]}" "${f[3]}" \
		"$ODMRD" "$WORK/odmrd.conf"
}

# start_inetd: openbsd-inetd in the foreground (-d) on a free loopback port; sets IPID, PORT.
start_inetd() {
	local _
	for _ in 1 2 3; do
		PORT=$(free_port)
		inetd_conf "$PORT" >"$WORK/inetd.conf"
		: >"$ILOG"
		# -d: stay in the foreground and log to stdout.
		spawn sh -c 'exec "$0" -d "$1" >>"$2" 2>&1' "$INETD" "$WORK/inetd.conf" "$ILOG"
		IPID=$BG_PID
		if wait_for 10 "$PY" -c "import socket; socket.create_connection(('127.0.0.1', $PORT), 1).close()"; then
			return 0
		fi
		kill_tree "$IPID"
	done
	fail "openbsd-inetd started on a loopback port" "$(tail -5 "$ILOG")"
	return 1
}
start_inetd || t_summary

# --- (a) a full session -------------------------------------------------------------------------

TR=$WORK/a.transcript
expect_eq "(a) greeting, EHLO, AUTH CRAM-MD5, ATRN for bob's domain, QUIT: 220 250 235 450 221" \
	"$(odmrc --transcript "$TR" ehlo cram=$A atrn=c.example quit eof 2>&1)" "220 250 235 450 221 EOF"
expect_match "(a) the greeting comes from odmrd" "$(sed -n 1p "$TR")" '^S: 220 provider\.test ESMTP'
log_wait 'session peer=127\.0\.0\.1 ' 10
expect_match "(a) odmrd logged the session with the peer from getpeername(2)" \
	"$(grep 'session peer=' "$WORK/odmrd.log" | tail -1)" 'session peer=127\.0\.0\.1 helo=client\.test user=alice@provider\.test .* atrn=450 code=221'

# --- (b) a burst must not switch the port off ---------------------------------------------------

# Connections are counted by inetd when it starts a server for them, so every one of them is a
# real session here (greeting read, QUIT): 400 > 256 (inetd's default) > 50 (the old line).
out=$(timeout 120 "$PY" "$LIB/burst.py" --port "$PORT" --n 400 --conc 8 --mode greet 2>&1)
expect_match "(b) a burst of 400 sessions: every one greeted" "$out" '^n=400 .* refused=0 greeted=400 closed=0$'
echo "# burst: $out"
expect_eq "(b) after the burst a new session is still served" "$(odmrc ehlo quit 2>&1)" "220 250 221"
sleep 1
expect_eq "(b) ... and one second later too" "$(odmrc quit 2>&1)" "220 221"

stop_odmrd "$IPID"
# inetd -d reports each server's wait status ("PID reaped, status N").
reaped=$(grep -c 'reaped, status ' "$ILOG")
bad=$(grep -E 'reaped, status [1-9]' "$ILOG" | head -3)
if [ "$reaped" -ge 402 ] && [ -z "$bad" ]; then
	ok "every odmrd inetd started ($reaped) exited with status 0"
else
	fail "every odmrd inetd started exited with status 0" "reaped: $reaped" "$bad"
fi
wait_for 10 sh -c "! pgrep -f -- '-f $WORK/odmrd.conf' >/dev/null"
expect_eq "no odmrd of this suite is left" "$(pgrep -f -- "-f $WORK/odmrd.conf" | tr '\n' ' ')" ""

t_summary
