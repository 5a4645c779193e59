#!/bin/bash
# tests/t-15-exec.sh - mta = exec: the configured program gets the customer's socket after the 250.
#
# Why: the generic handoff is the literal RFC 2645 shape (a queue runner that speaks SMTP on its
# stdin/stdout). This drives it through the real odmrd with a scripted customer: ATRN -> 250, the
# customer greets, the program (tests/lib/exec_client.py) says EHLO and QUIT over the same socket,
# and records its argv substitutions and environment. Also: a missing program costs 451, no 250.
# Prints "N passed, N failed"; exits non-zero on failure.
# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/lib/common.sh"

mk_sasldb "$WORK/sasldb2" provider.test alice alice-secret || fail "saslpasswd2 failed"
mk_map "$WORK/customers" 'alice a.example, b.example' || fail "odmrd-map failed"
EXEC=$LIB/exec_client.py
write_conf "$WORK/exec.conf" mta=exec "exec_command=$EXEC $WORK/exec.out %u %d"
start_odmrd "$WORK/exec.conf" || t_summary

# The customer: ATRN, then play the SMTP server for whatever odmrd starts.
customer() {
	PYTHONPATH=$LIB timeout 60 "$PY" - "$PORT" <<'PY'
import sys
from odmrclient import Client
c = Client("127.0.0.1", int(sys.argv[1]), timeout=10)
codes = [c.greeting.code, c.ehlo().code, c.auth_cram("alice", "alice-secret").code,
         c.atrn(["b.example", "a.example"]).code]
if codes[-1] == 250:
    c.send("220 customer.test ESMTP\r\n")
    codes.append(c._readline(__import__("time").monotonic() + 10).decode())
    c.send("250 customer.test\r\n")
    codes.append(c._readline(__import__("time").monotonic() + 10).decode())
    c.send("221 bye\r\n")
print(" ".join(str(x) for x in codes))
PY
}
expect_eq "exec: 220 250 235 250, then the program's EHLO and QUIT over the socket" \
	"$(customer 2>&1)" "220 250 235 250 EHLO provider.test QUIT"
wait_for 10 test -s "$WORK/exec.out"
expect_eq "exec: %u is the SASL user" "$(grep '^user=' "$WORK/exec.out")" "user=alice@provider.test"
expect_eq "exec: %d is the granted domains, comma-separated" \
	"$(grep '^domains=' "$WORK/exec.out")" "domains=b.example,a.example"
expect_eq "exec: the environment is PATH only (no shell, nothing inherited)" \
	"$(grep '^env=' "$WORK/exec.out")" "env=PATH"
expect_eq "exec: the program read the customer's greeting and replies" \
	"$(grep -c -E '^(greeting=220 customer|ehlo=250 customer|quit=221 bye)' "$WORK/exec.out")" 3
wait_sessions
check "exec: summary line says atrn=250 result=done" grep -q 'atrn=250 code=250 result=done' "$WORK/odmrd.log"

# With privilege separation the program runs as the unprivileged user, and odmrd (not its root
# helper) waits for it.
mkdir -p "$WORK/nobody/run" && chmod 777 "$WORK/nobody" && chown nobody "$WORK/nobody/run" &&
	chmod 700 "$WORK/nobody/run"   # odmrd refuses a run_dir open to others
chmod 644 "$WORK/sasldb2" "$WORK/customers.db"
write_conf "$WORK/ps.conf" mta=exec user=nobody run_dir="$WORK/nobody/run" \
	"exec_command=$EXEC $WORK/nobody/exec.out %u %d"
start_odmrd "$WORK/ps.conf" || t_summary
expect_eq "exec with user = nobody: same conversation" \
	"$(customer 2>&1)" "220 250 235 250 EHLO provider.test QUIT"
wait_for 10 test -s "$WORK/nobody/exec.out"
expect_eq "exec with user = nobody: the program ran as nobody" \
	"$(stat -c %U "$WORK/nobody/exec.out" 2>/dev/null)" nobody
wait_sessions
expect_eq "exec with user = nobody: summary says result=done" \
	"$(grep -c 'atrn=250 code=250 result=done' "$WORK/odmrd.log")" 2

write_conf "$WORK/missing.conf" mta=exec "exec_command=/nonexistent/runner %d"
start_odmrd "$WORK/missing.conf" || t_summary
expect_eq "exec: missing program -> 451, never 250" \
	"$(odmrc ehlo cram=alice:alice-secret atrn=a.example quit)" "220 250 235 451 221"
check_no_crashes
t_summary
