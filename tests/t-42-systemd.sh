#!/bin/bash
# tests/t-42-systemd.sh - the shipped systemd units (systemd/odmrd.socket, odmrd@.service,
# odmrd.tmpfiles) run for real.
#
# Why: the units are what a systemd admin enables; they must load cleanly, start one odmrd per
# connection with the socket on stdin/stdout as the unprivileged account, bound concurrency,
# and not let one host switch the port off: with systemd 252's default trigger limit (200
# activations in 2 s, checked BEFORE MaxConnections*) a burst of refused connections puts
# odmrd.socket into the failed state until an admin restarts it.
# (a) the settings the comments promise, read from the files;
# (b) systemd-socket-activate (-a --inetd: what Accept=yes with StandardInput/Output=socket does)
#     runs the unit's ExecStart per connection on the host, on a loopback port;
# (c) a throwaway root (tests/lib/troot.sh: overlay over /, private namespaces) booted with
#     systemd 252 as PID 1: "make install PREFIX=/usr" there, systemd-analyze verify, nothing
#     enabled by the install, the run directory from tmpfiles.d (also as systemd-tmpfiles-setup
#     recreates it at boot), then "systemctl enable --now odmrd.socket" and sessions on port 366
#     inside: odmrd as _odmrd, its log lines in the journal, a missing /run/odmrd answered with
#     451 (not a failed spawn), IPv4 and IPv6 peers as such, MaxConnectionsPerSource=5, and a
#     burst of 300 connections in well under 2 s that must leave the socket active.
# Needs root (namespaces, mounts). Prints "N passed, N failed".

if [ -z "${T42_TIMED:-}" ]; then
	T42_TIMED=1 exec timeout --foreground --kill-after=10 "${T42_TIMEOUT:-240}" bash "$0" "$@"
fi
. "$(dirname "$0")/lib/common.sh"
. "$LIB/troot.sh"

[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (namespaces, mounts)"; echo "0 passed, 0 failed"; exit 0; }
for t in systemd-socket-activate systemd-analyze unshare nsenter; do
	command -v "$t" >/dev/null || { fail "$t is installed (tools/install-deps.sh)"; t_summary; }
done
if [ ! -x "$ODMRD" ] || [ ! -x "$ODMRD_MAP" ]; then
	fail "odmrd and odmrd-map are built (run make)"
	t_summary
fi
SOCKET=$TOP/systemd/odmrd.socket
SERVICE=$TOP/systemd/odmrd@.service
TMPFILES=$TOP/systemd/odmrd.tmpfiles
A=alice:alice-secret

# --- (a) the shipped settings -------------------------------------------------------------------

# settings FILE: "Key=Value" lines, comments and section headers dropped.
settings() { grep -E '^[A-Za-z0-9]+=' "$1"; }
expect_eq "(a) odmrd.socket: listen (IPv4 and IPv6 apart), accept, limits, no trigger limit" \
	"$(settings "$SOCKET" | grep -v -E '^(Description|Documentation)=')" \
	"ListenStream=0.0.0.0:366
ListenStream=[::]:366
BindIPv6Only=ipv6-only
Accept=yes
MaxConnections=50
MaxConnectionsPerSource=5
TriggerLimitIntervalSec=0
TriggerLimitBurst=0
WantedBy=sockets.target"
expect_eq "(a) odmrd@.service: program, socket on stdin/stdout, account, file system" \
	"$(settings "$SERVICE" | grep -E '^(Type|ExecStart|Standard[A-Za-z]+|User|Group|UMask|NoNewPrivileges|ProtectSystem|ReadWritePaths)=')" \
	"Type=simple
ExecStart=/usr/sbin/odmrd -f /etc/odmrd/odmrd.conf
StandardInput=socket
StandardOutput=socket
StandardError=journal
User=_odmrd
Group=_odmrd
UMask=0027
NoNewPrivileges=no
ProtectSystem=strict
ReadWritePaths=-/run/odmrd"
expect_eq "(a) odmrd.tmpfiles: /run/odmrd 2750 _odmrd:postfix" "$(grep -v '^#' "$TMPFILES")" \
	"d     /run/odmrd  2750 _odmrd postfix -"

# --- fixtures -----------------------------------------------------------------------------------

t_customers
write_conf "$WORK/odmrd.conf"

# --- (b) systemd-socket-activate on the host ----------------------------------------------------

# The service's ExecStart with the program and the config file of the test.
read -r -a exec_start <<<"$(settings "$SERVICE" | sed -n 's/^ExecStart=//p')"
expect_eq "(b) ExecStart is the program and -f CONFIG" "${exec_start[*]:1}" "-f /etc/odmrd/odmrd.conf"
# ssa_start ADDRESS LOG: systemd-socket-activate running odmrd per connection on ADDRESS:$PORT
# (a fresh $PORT), as Accept=yes does; its pid in SSA.
ssa_start() {
	PORT=$(free_port)
	spawn systemd-socket-activate -l "$1:$PORT" --accept --inetd "$ODMRD" -f "$WORK/odmrd.conf" 2>"$2"
	SSA=$BG_PID
	wait_for 10 grep -qF "Listening on $1:$PORT" "$2" ||
		fail "(b) systemd-socket-activate listens on $1" "$(cat "$2")"
}
ssa_start 127.0.0.1 "$WORK/ssa.log"
TR=$WORK/b.transcript
expect_eq "(b) a session through systemd-socket-activate: 220 250 235 450 221" \
	"$(odmrc --transcript "$TR" ehlo cram=$A atrn=c.example quit eof 2>&1)" "220 250 235 450 221 EOF"
expect_match "(b) the greeting comes from odmrd" "$(sed -n 1p "$TR")" '^S: 220 provider\.test ESMTP'
# Two connections at once: two odmrd processes, children of the activator, gone after QUIT.
out=$(PYTHONPATH=$LIB timeout 30 "$PY" - "$PORT" "$SSA" <<'EOF' 2>&1
import sys, time
from odmrclient import Client
port, ppid = int(sys.argv[1]), sys.argv[2]
def kids():
    with open("/proc/%s/task/%s/children" % (ppid, ppid)) as f:
        return len(f.read().split())
c1 = Client("127.0.0.1", port, timeout=10)
c2 = Client("127.0.0.1", port, timeout=10)
during = kids()
q = c1.quit().token + c2.quit().token
c1.wait_eof(5); c2.wait_eof(5)
for _ in range(50):
    if kids() == 0:
        break
    time.sleep(0.1)
print(c1.greeting.token, c2.greeting.token, "during=%d" % during, q, "after=%d" % kids())
EOF
)
expect_eq "(b) one odmrd per connection, each gone after its QUIT" "$out" "220 220 during=2 221221 after=0"
log_wait 'session peer=127\.0\.0\.1 ' 10
expect_match "(b) odmrd found the peer on its stdin socket" "$(grep 'session peer=' "$WORK/odmrd.log" | head -1)" \
	'^.*session peer=127\.0\.0\.1 helo=client\.test user=alice@provider\.test '
kill_tree "$SSA"

# A dual-stack listener passes IPv4 customers as IPv4-mapped IPv6 addresses: logged as a.b.c.d.
ssa_start "[::ffff:127.0.0.1]" "$WORK/ssa6.log"
: >"$WORK/odmrd.log"
expect_eq "(b) a session through a dual-stack (IPv6) listener: 220 250 235 450 221" \
	"$(odmrc ehlo cram=$A atrn=c.example quit eof 2>&1)" "220 250 235 450 221 EOF"
log_wait 'session peer=' 10
expect_match "(b) ... the IPv4 customer is logged as 127.0.0.1, not ::ffff:127.0.0.1" \
	"$(grep -E 'connect from|session peer=' "$WORK/odmrd.log" | tr '\n' ' ')" \
	'connect from 127\.0\.0\.1 .*session peer=127\.0\.0\.1 '
kill_tree "$SSA"

# --- (c) a booted systemd ---------------------------------------------------------------------

if ! troot_start --boot; then
	fail "(c) a throwaway root boots with systemd" "$(tail -5 "$WORK/troot.log")"
	t_summary
fi
ok "(c) a throwaway root boots with systemd ($(troot_exec systemctl is-system-running))"
troot_sh "make -s -C '$TOP' install PREFIX=/usr SYSTEMDUNITDIR=/lib/systemd/system \
	TMPFILESDIR=/usr/lib/tmpfiles.d >/dev/null" || fail "(c) make install PREFIX=/usr"
out=$(troot_exec systemd-analyze verify /lib/systemd/system/odmrd.socket /lib/systemd/system/odmrd@.service 2>&1)
expect_eq "(c) systemd-analyze verify: clean, exit 0" "$out:$?" ":0"
troot_exec systemctl daemon-reload
expect_eq "(c) installed, nothing is enabled or listening" \
	"$(troot_exec systemctl is-enabled odmrd.socket 2>&1):$(troot_exec systemctl is-active odmrd.socket 2>&1):$(troot_exec ss -Hltn 'sport = :366')" \
	"disabled:inactive:"

# The account and the run directory, as the package's postinst does.
troot_exec adduser --system --group --quiet --no-create-home --home /nonexistent _odmrd ||
	fail "(c) adduser _odmrd"
troot_exec systemd-tmpfiles --create odmrd.conf
rundir() { troot_exec stat -c '%a %U %G' /run/odmrd 2>&1; }
expect_eq "(c) systemd-tmpfiles --create: /run/odmrd 2750 _odmrd postfix" "$(rundir)" "2750 _odmrd postfix"
troot_exec rm -rf /run/odmrd
# What systemd-tmpfiles-setup.service runs at boot (it refuses a manual restart).
troot_sh "$(settings /lib/systemd/system/systemd-tmpfiles-setup.service | sed -n 's/^ExecStart=//p')"
expect_eq "(c) ... and the boot-time systemd-tmpfiles-setup command recreates it" "$(rundir)" "2750 _odmrd postfix"

# The customers' set-up in /etc/odmrd: a private sasldb root:_odmrd 0640, the map, and an
# odmrd.conf logging to syslog (journald) as shipped.
troot_sh "set -e
install -d /etc/odmrd
install -o root -g _odmrd -m 0640 '$WORK/sasldb2' /etc/odmrd/sasldb2
install -m 0644 '$WORK/customers.db' /etc/odmrd/customers.db
cat >/etc/odmrd/odmrd.conf <<EOF
hostname = provider.test
sasl_realm = provider.test
sasl_pwcheck_method = auxprop
sasl_auxprop_plugin = sasldb
sasl_sasldb_path = /etc/odmrd/sasldb2
auth_fail_delay_ms = 20
user = _odmrd
EOF" || fail "(c) /etc/odmrd set up"

troot_exec systemctl enable --now odmrd.socket >/dev/null 2>&1
expect_eq "(c) systemctl enable --now odmrd.socket: active, listening on 366 (IPv4, IPv6)" \
	"$(troot_exec systemctl is-active odmrd.socket):$(troot_exec ss -Hltn 'sport = :366' | awk '{ print $4 }' | sort | tr '\n' ' ')" \
	"active:0.0.0.0:366 [::]:366 "
# in_root_odmrc STEP...: odmrclient.py inside the root, port 366.
in_root_odmrc() { troot_exec timeout 60 python3 "$LIB/odmrclient.py" --timeout 10 --port 366 "$@" 2>&1; }
expect_eq "(c) a session through systemd: 220 250 235 450 221" \
	"$(in_root_odmrc ehlo cram=$A atrn=c.example quit eof)" "220 250 235 450 221 EOF"
uid=$(troot_exec id -u _odmrd)
journal_session() {
	troot_exec journalctl -q --no-pager -o 'export' SYSLOG_IDENTIFIER=odmrd 2>/dev/null |
		grep -a -E '^(_UID|MESSAGE)=' | grep -a -B1 -E '^MESSAGE=session peer=' | tail -2 | tr '\n' ' '
}
journal_has_session() { troot_exec journalctl -q --no-pager SYSLOG_IDENTIFIER=odmrd | grep -q 'session peer='; }
wait_for 10 journal_has_session
expect_match "(c) odmrd ran as _odmrd and logged the session to the journal (syslog)" "$(journal_session)" \
	"^_UID=$uid MESSAGE=session peer=127\.0\.0\.1 helo=client\.test user=alice@provider\.test .*atrn=450 code=221"
# Without /run/odmrd the session must still start and refuse ATRN with a reason (ReadWritePaths=-):
# a plain ReadWritePaths= makes systemd fail every connection before odmrd runs.
troot_exec rm -rf /run/odmrd
expect_eq "(c) /run/odmrd missing: odmrd still answers, ATRN gets 451" \
	"$(in_root_odmrc ehlo cram=$A atrn=a.example quit eof)" "220 250 235 451 221 EOF"
troot_exec systemd-tmpfiles --create odmrd.conf
expect_eq "(c) a session over IPv6 (::1)" "$(in_root_odmrc --host ::1 ehlo quit)" "220 250 221"
wait_for 10 eval 'troot_exec journalctl -q --no-pager SYSLOG_IDENTIFIER=odmrd | grep -q "session peer=::1 "'
expect_match "(c) ... logged with peer=::1" \
	"$(troot_exec journalctl -q --no-pager SYSLOG_IDENTIFIER=odmrd | grep 'session peer=' | tail -1)" 'session peer=::1 helo=client\.test '

# MaxConnectionsPerSource=5: five sessions held open, the sixth is closed without a greeting.
out=$(troot_exec env PYTHONPATH="$LIB" timeout 40 python3 - <<'EOF' 2>&1
import time
from odmrclient import Client
held = [Client("127.0.0.1", 366, timeout=10) for _ in range(5)]
sixth = Client("127.0.0.1", 366, timeout=5)
six = sixth.greeting.token + ("+EOF" if sixth.closed or sixth.wait_eof(5) else "+OPEN")
for c in held:
    c.quit()
    c.wait_eof(5)
again = "none"
for _ in range(20):
    c = Client("127.0.0.1", 366, timeout=5)
    again = c.greeting.token
    c.quit()
    if again == "220":
        break
    time.sleep(0.25)
print(" ".join(c.greeting.token for c in held), six, again)
EOF
)
expect_eq "(c) MaxConnectionsPerSource=5: 5 greeted, the 6th closed at once, served again later" \
	"$out" "220 220 220 220 220 EOF+EOF 220"

# The burst: 300 connections opened and closed as fast as possible (well within 2 s).
out=$(troot_exec timeout 60 python3 "$LIB/burst.py" --port 366 --n 300 --conc 20 --mode close 2>&1)
echo "# burst: $out"
expect_match "(c) a burst of 300 connections (under 2 s) was accepted" "$out" '^n=300 wall=[01]\.[0-9]+ connected=300 refused=0'
sleep 0.5
expect_eq "(c) after the burst odmrd.socket is still active (not failed: trigger-limit-hit)" \
	"$(troot_exec systemctl is-active odmrd.socket):$(troot_exec systemctl show -P Result odmrd.socket)" "active:success"
for _ in $(seq 20); do
	out=$(in_root_odmrc quit)
	[ "$out" = "220 221" ] && break
	sleep 0.25
done
expect_eq "(c) ... and serves the next session" "$out" "220 221"
# systemd's own errors about the instances (odmrd's lines, e.g. the 451 above, are not counted).
bad=$(troot_exec journalctl -q --no-pager -u 'odmrd@*' -p err 2>/dev/null | grep -v -E ' odmrd\[[0-9]+\]: ' | head -3)
expect_eq "(c) systemd logged no error for any odmrd@ instance" "$bad" ""

troot_stop
t_summary
