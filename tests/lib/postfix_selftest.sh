#!/bin/bash
# Self-test of tests/lib/postfix.sh (private Postfix instance) using
# fake_lmtp_server.py in place of odmrd:
#   - 5 messages for a.example and 2 for c.example are held ("deferred transport"),
#     and Postfix does not connect even though a socket for a.example exists;
#   - postqueue -s a.example delivers exactly the 5 (body intact) over LMTP;
#     the 2 for c.example stay queued;
#   - after pf_stop no process of the instance is left.
# Prints "N passed, N failed"; exit status 0 only if nothing failed.
# Needs root (starts Postfix). KEEP=1 keeps the work directory for inspection.

set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/postfix.sh"

passed=0
failed=0
check() { # check DESCRIPTION COMMAND...: run COMMAND, count and report the result
	local what=$1
	shift
	if "$@"; then
		passed=$((passed + 1))
		echo "ok   - $what"
	else
		failed=$((failed + 1))
		echo "FAIL - $what"
	fi
}

work=$(mktemp -d /tmp/pf-selftest.XXXXXX)
out=$work/out
fake_pid=
cleanup() {
	[ -n "$fake_pid" ] && kill "$fake_pid" 2>/dev/null && wait "$fake_pid"
	if [ "${KEEP:-0}" = 1 ]; then
		[ -n "${PF_CONF:-}" ] && pf_stop
		echo "kept $work"
	elif [ -n "${PF_CONF:-}" ]; then
		pf_stop --purge
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT

# Python snippet over the queue: exit 0 iff the expression holds. `msgs` is the
# list of postqueue -j objects, `rcpts` the flat list of recipient objects.
queue_holds() {
	pf_queue_json | "$PF_PYTHON" -c '
import json, sys
msgs = [json.loads(l) for l in sys.stdin if l.strip()]
rcpts = [r for m in msgs for r in m["recipients"]]
sys.exit(0 if ('"$1"') else 1)'
}

# wait_for SECONDS COMMAND...: poll COMMAND every 0.2 s until it succeeds.
wait_for() {
	local i limit=$(($1 * 5))
	shift
	for ((i = 0; i < limit; i++)); do
		"$@" && return 0
		sleep 0.2
	done
	return 1
}

count_stored() { find "$out" -name '*.msg' | wc -l; }
stored_is() { [ "$(count_stored)" = "$1" ]; }

# Every stored message for a.example must end with the exact body we sent
# (Postfix adds headers on top, converts LF to CRLF; dot-stuffing is undone).
bodies_intact() {
	"$PF_PYTHON" - "$out" "$here" <<-'EOF'
		import glob, sys
		sys.path.insert(0, sys.argv[2])
		from smtpsink import read_message
		body = b"\r\nfirst line\r\n.\r\n..two dots\r\n8bit \xe9\xff\r\nlast\r\n"
		files = sorted(glob.glob(sys.argv[1] + "/*.msg"))
		ok = len(files) == 5
		for f in files:
		    m = read_message(f)
		    ok &= m["data"].endswith(body) and m["mail_from"] == b"sender@provider.test"
		    ok &= len(m["rcpts"]) == 1 and m["rcpts"][0].endswith(b"@a.example")
		sys.exit(0 if ok else 1)
	EOF
}

echo "# work directory $work"
pf_setup "$work" "$work/run" a.example b.example c.example || exit 1
check "private Postfix starts" pf_start

for i in 1 2 3 4 5; do
	printf 'Subject: a%s\n\nfirst line\n.\n..two dots\n8bit \xe9\xff\nlast\n' "$i" |
		pf_send sender@provider.test "user$i@a.example"
done
for i in 1 2; do
	printf 'Subject: c%s\n\nfor bob\n' "$i" | pf_send sender@provider.test "bob$i@c.example"
done
check "7 messages deferred" pf_wait_queued 7 deferred
check "5 recipients queued for a.example" [ "$(pf_count_for_domain a.example)" = 5 ]
check "2 recipients queued for c.example" [ "$(pf_count_for_domain c.example)" = 2 ]

# The fake LMTP server (odmrd's stand-in) listens for a.example from now on.
(cd "$here" && exec "$PF_PYTHON" fake_lmtp_server.py --rundir "$PF_RUNDIR" \
	--outdir "$out" --log "$work/lmtp.log" a.example) >"$work/fake.out" 2>&1 &
fake_pid=$!
check "fake LMTP server ready" wait_for 10 grep -qx ready "$work/fake.out"
check "socket is srw-rw---- root:postfix" \
	[ "$(stat -c '%A %U:%G' "$PF_RUNDIR/a.example")" = "srw-rw---- root:postfix" ]

# Several queue runs (queue_run_delay 2 s, backoff 2-4 s) pass; mail stays held
# by defer_transports and Postfix never connects to the socket.
sleep 6
check "still 7 queued after queue runs" pf_wait_queued 7 deferred
check "all held with reason 'deferred transport'" \
	queue_holds 'len(rcpts) == 7 and all(r["delay_reason"] == "deferred transport" for r in rcpts)'
check "no LMTP connection while held" [ ! -s "$work/lmtp.log" ]

check "postqueue -s a.example succeeds" pf_flush a.example
check "5 messages delivered to the fake server" wait_for 15 stored_is 5
check "message bodies and envelopes intact" bodies_intact
check "nothing left for a.example" wait_for 10 [ "$(pf_count_for_domain a.example)" = 0 ]
check "2 for c.example still held" \
	queue_holds 'len(rcpts) == 2 and all(r["address"].endswith("@c.example") for r in rcpts)'
sleep 1
check "no extra delivery" stored_is 5

check "fake server stops on SIGTERM" kill "$fake_pid"
wait "$fake_pid"
fake_pid=
check "fake server removed its socket" [ ! -e "$PF_RUNDIR/a.example" ]

check "pf_stop succeeds" pf_stop
check "no process of the instance left" [ -z "$(pf_procs)" ]
check "master not running" [ -z "$(pf__master_pid)" ]

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
