#!/bin/bash
# tests/load.sh - odmrd under load through a real xinetd: figures and leak checks (not in make check).
#
# Why: odmrd is one process per connection started by a super-server; under load what can go
# wrong is around the process, not in one session: descriptors leaking in xinetd, zombies,
# socket/lock files left in run_dir, sessions without their summary line, wrong replies when
# many customers race for the same locks. This script runs LOAD_SEQ (default 10000) sessions one
# after another and LOAD_CONC (default 200) sessions at once (all greeted and alive together)
# through a private xinetd on loopback (instances and per_source UNLIMITED, cps 10000 1, no
# libwrap), with mixed outcomes (tests/lib/loadclient.py: ATRN 453/450/451, 535, early QUIT,
# hang-up inside AUTH, garbage -> 500), and prints the figures and the checks:
#   sessions, wall time, sessions/s, outcome counts per scenario;
#   xinetd's open fds before/after; zombie odmrd processes; files left in run_dir; one
#   "session peer=" line per session; xinetd START = EXIT = sessions, all with status 0.
# Needs root (xinetd "user ="). Prints "N passed, N failed" for the checks; exit 1 on failure.
# Environment: LOAD_SEQ, LOAD_CONC, LOAD_TIMEOUT (seconds for the whole run, default 900).

if [ -z "${LOAD_TIMED:-}" ]; then
	LOAD_TIMED=1 exec timeout --foreground --kill-after=10 "${LOAD_TIMEOUT:-900}" bash "$0" "$@"
fi
. "$(dirname "$0")/lib/common.sh"

SEQ=${LOAD_SEQ:-10000}
CONC=${LOAD_CONC:-200}
WARM=16
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (xinetd user =)"; echo "0 passed, 0 failed"; exit 0; }
command -v xinetd >/dev/null || { echo "SKIP: xinetd is not installed"; echo "0 passed, 0 failed"; exit 0; }
[ -x "$ODMRD" ] && [ -x "$ODMRD_MAP" ] || { fail "odmrd and odmrd-map are built (run make)"; t_summary; }

LOG=$WORK/odmrd.log
XLOG=$WORK/xinetd.log
SLOG=$WORK/xinetd-service.log

# A snapshot of the binary: a rebuild during the run (make in another shell) must not make
# xinetd's execv fail half-way through.
cp "$ODMRD" "$WORK/odmrd-under-test" || { fail "copy $ODMRD"; t_summary; }
ODMRD=$WORK/odmrd-under-test
# Only the SASL plugins the sessions use (cuts odmrd's start-up), and /bin/true as postqueue:
# an empty queue (ATRN 453) without a shell per ATRN.
mkdir -p "$WORK/sasl2"
for p in libcrammd5 libsasldb; do
	ln -sf /usr/lib/x86_64-linux-gnu/sasl2/$p.so* "$WORK/sasl2/" 2>/dev/null
done
mk_sasldb "$WORK/sasldb2" provider.test alice alice-secret bob bob-secret || fail "saslpasswd2 failed"
mk_map "$WORK/customers" 'alice a.example, b.example' 'bob c.example, d.example' || fail "odmrd-map failed"
load_keys=(auth_fail_delay_ms=0 error_delay_ms=0 idle_timeout=30 session_timeout=60 log_file="$LOG"
	sasl_mech_list=CRAM-MD5 postqueue=/bin/true)
[ -e "$WORK/sasl2/libcrammd5.so" ] && load_keys+=(sasl_plugin_dir="$WORK/sasl2")
write_conf "$WORK/main.conf" "${load_keys[@]}"
write_conf "$WORK/nomap.conf" "${load_keys[@]}" customer_map="$WORK/no-such-map.db"

# service NAME PORT CONF: an xinetd entry without limits that would refuse load.
service() {
	printf '%s\n' "service $1" "{" "	id = $1" "	type = UNLISTED" "	port = $2" "	bind = 127.0.0.1" \
		"	socket_type = stream" "	protocol = tcp" "	wait = no" "	user = root" "	server = $ODMRD" \
		"	server_args = -f $3" "	instances = UNLIMITED" "	per_source = UNLIMITED" "	cps = 10000 1" \
		"	flags = NOLIBWRAP" "	log_on_success = PID EXIT" "	log_on_failure = HOST ATTEMPT" \
		"	disable = no" "}"
}

started=no
for _ in 1 2 3; do
	P1=$(free_port)
	P2=$(free_port)
	[ "$P1" != "$P2" ] || continue
	{
		echo "defaults"
		echo "{"
		echo "	log_type = FILE $SLOG"
		echo "}"
		service odmrd-load "$P1" "$WORK/main.conf"
		service odmrd-load-nomap "$P2" "$WORK/nomap.conf"
	} >"$WORK/xinetd.conf"
	: >"$XLOG"
	spawn xinetd -dontfork -f "$WORK/xinetd.conf" -filelog "$XLOG" -pidfile "$WORK/xinetd.pid"
	XPID=$BG_PID
	if wait_for 10 grep -q 'Started working: 2 available services' "$XLOG"; then
		started=yes
		break
	fi
	kill_tree "$XPID"
done
[ "$started" = yes ] || { fail "xinetd started" "$(cat "$XLOG")"; t_summary; }

children() { pgrep -P "$XPID" 2>/dev/null | wc -l; }
no_children() { [ "$(children)" -eq 0 ]; }
xfds() { ls /proc/"$XPID"/fd | wc -l; }
load() {
	timeout $((${LOAD_TIMEOUT:-900} - 60)) "$PY" "$LIB/loadclient.py" --port "$P1" --nomap-port "$P2" --ppid "$XPID" "$@"
}

echo "# load: 1-minute load average before the run: $(cut -d' ' -f1 /proc/loadavg) on $(nproc) CPUs"
echo "# xinetd pid $XPID, ports $P1 (map) and $P2 (no map); odmrd $ODMRD"
load --sessions "$WARM" >"$WORK/warm.out" || fail "warm-up sessions" "$(cat "$WORK/warm.out")"
wait_for 30 no_children
FD_BEFORE=$(xfds)
ls -l /proc/"$XPID"/fd >"$WORK/xinetd-fd.before"

T0=$SECONDS
load --sessions "$SEQ" >"$WORK/seq.out"
seq_rc=$?
echo "# sequential: $(head -1 "$WORK/seq.out")"
sed -n '2,$p' "$WORK/seq.out" | sed 's/^/#   /'
load --sessions "$CONC" --concurrency "$CONC" >"$WORK/conc.out"
conc_rc=$?
echo "# concurrent: $(head -1 "$WORK/conc.out")"
sed -n '2,$p' "$WORK/conc.out" | sed 's/^/#   /'
wait_for 60 no_children
echo "# total wall time for $((SEQ + CONC)) sessions: $((SECONDS - T0)) s (script so far: $SECONDS s)"

TOTAL=$((WARM + SEQ + CONC))
figure() { sed -nE "1s/(^|.* )$1=([^ ]+).*/\\2/p" "$2"; }
expect_eq "sequential: every one of $SEQ sessions got its expected replies" "$seq_rc:$(figure bad "$WORK/seq.out")" "0:0"
expect_eq "sequential: no 450 from a busy lock (one session at a time)" "$(figure busy450 "$WORK/seq.out")" 0
expect_eq "concurrent: every one of $CONC sessions got its expected replies" "$conc_rc:$(figure bad "$WORK/conc.out")" "0:0"
peak=$(figure peak_children "$WORK/conc.out")
if [ "${peak:-0}" -ge "$CONC" ]; then ok "concurrent: $peak odmrd processes alive at once"; else fail "concurrent: $CONC odmrd alive at once" "peak $peak"; fi
expect_eq "no odmrd left running under xinetd" "$(children)" 0
FD_AFTER=$(xfds)
ls -l /proc/"$XPID"/fd >"$WORK/xinetd-fd.after"
expect_eq "xinetd's open fds: $FD_BEFORE before, $FD_AFTER after" "$FD_AFTER" "$FD_BEFORE"
zombies=$(ps -eo stat,comm | grep -c '^Z.*odmrd')
expect_eq "no zombie odmrd (ps -eo stat,comm)" "$zombies" 0
expect_eq "run_dir is empty (no socket, lock or stamp file left)" "$(ls -A "$WORK/run" | head -5)" ""
nsum=$(grep -c ': session peer=' "$LOG")
expect_eq "one 'session peer=' line per session ($TOTAL)" "$nsum" "$TOTAL"
expect_eq "xinetd logged $TOTAL START and $TOTAL EXIT" \
	"$(grep -c 'START: odmrd-load' "$SLOG") $(grep -c 'EXIT: odmrd-load' "$SLOG")" "$TOTAL $TOTAL"
bad=$(grep 'EXIT: odmrd-load' "$SLOG" | grep -vc 'status=0 ')
expect_eq "every odmrd exited with status 0 (xinetd EXIT lines)" "$bad" 0
expect_eq "xinetd refused nothing (no FAIL lines)" "$(grep -c 'FAIL:' "$SLOG")" 0
expect_eq "odmrd logged no failure of its own (cannot/out of memory/SASL reset/usage)" \
	"$(grep -cE 'odmrd\[[0-9]+\]: (cannot |out of memory|SASL reset failed|usage:)' "$LOG")" 0

kill -TERM "$XPID" 2>/dev/null
wait_for 10 sh -c "! kill -0 $XPID 2>/dev/null"
t_summary
