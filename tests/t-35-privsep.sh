#!/bin/bash
# tests/t-35-privsep.sh - the provider host's own users: run_dir, the domain sockets, and what
# runs as root (issue 11 #1 and #3).
#
# Why: the per-domain sockets are where a local user could inject mail into a customer's session
# (they were 0666 and served anyone). odmrd must refuse to serve from a run_dir others can use
# (451, reason logged), create a missing run_dir as the documented layout (owner odmrd's account,
# group of mta_user, 2750) when it starts as root, bind its sockets 0660, close unanswered any
# connection from a user who is neither root nor mta_user, and refuse (4xx, never forwarded) a
# recipient outside the socket's domain. And with `user` set, only mta = sendmail keeps a root
# helper: with Postfix (postqueue is set-group-ID) the whole session is the unprivileged account.
#
# A fake postqueue holds the session open: it lists one message of ours as "active" while a hold
# file exists (odmrd waits for the MTA), nothing once the test removes it (odmrd ends with QUIT).
# Needs root (setpriv to nobody, chown), the postfix account and group, sasl2-bin.
. "$(dirname "$0")/lib/common.sh"

[ "$(id -u)" = 0 ] || { fail "t-35 runs as root (setpriv, chown)"; t_summary; }
getent passwd nobody >/dev/null && getent passwd postfix >/dev/null ||
	{ fail "accounts nobody and postfix exist"; t_summary; }
PF_GID=$(getent group postfix | cut -d: -f3)
NOBODY_UID=$(id -u nobody)

mk_sasldb "$WORK/sasldb2" provider.test alice alice-secret || fail "saslpasswd2"
mk_map "$WORK/customers" 'alice a.example' || fail "odmrd-map"
# user = nobody reads both (the sasldb is the test's own).
chmod 644 "$WORK/sasldb2" "$WORK/customers.db"
chmod 755 "$WORK"

# The fake postqueue: records its arguments; -j lists u@a.example as active while $WORK/hold exists.
mkdir -p "$WORK/mailbin"
cat >"$WORK/mailbin/postqueue" <<EOF
#!/bin/sh
# fake postqueue for t-35
echo "\$*" >>"$WORK/mailbin/postqueue.calls"
case " \$* " in
*" -j "*) [ -e "$WORK/hold" ] &&
	echo '{"queue_name":"active","queue_id":"T35","recipients":[{"address":"u@a.example"}]}' ;;
esac
exit 0
EOF
chmod 755 "$WORK/mailbin/postqueue"

# run_dir RUNDIR MODE OWNER: (re)make RUNDIR owned by OWNER, group postfix, mode MODE.
run_dir() {
	rm -rf "$1"
	mkdir -p "$1"
	chown "$3:postfix" "$1"
	chmod "$2" "$1"
}

# conf NAME RUNDIR [KEY=VALUE...]: an odmrd.conf with the fake postqueue and its own log.
conf() {
	local name=$1 rd=$2
	shift 2
	write_conf "$WORK/$name.conf" run_dir="$rd" postqueue="$WORK/mailbin/postqueue" \
		log_file="$WORK/$name.log" "$@"
	touch "$WORK/$name.log"
	chmod 666 "$WORK/$name.log"
}

# --- run_dir must be odmrd's own and closed to others ------------------------------------------

conf open "$WORK/run-open"
start_odmrd "$WORK/open.conf" || t_summary
run_dir "$WORK/run-open" 0755 root
touch "$WORK/hold"
expect_eq "run_dir 0755: ATRN answered 451, nothing bound" \
	"$(odmrc ehlo cram=alice:alice-secret atrn=a.example quit)" "220 250 235 451 221"
expect_match "run_dir 0755: the reason is logged" "$(cat "$WORK/open.log")" \
	": 451 run_dir $WORK/run-open is open to others \\(mode 0755; want 2750\\)"
run_dir "$WORK/run-open" 2750 nobody
expect_eq "run_dir owned by another account: ATRN answered 451" \
	"$(odmrc ehlo cram=alice:alice-secret atrn=a.example quit)" "220 250 235 451 221"
expect_match "run_dir of another account: the reason is logged" "$(cat "$WORK/open.log")" \
	": 451 run_dir $WORK/run-open is owned by uid $NOBODY_UID, not by odmrd's uid 0"
expect_eq "refused run_dirs: no socket was bound, the queue was never listed" \
	"$(find "$WORK/run-open" -type s | wc -l):$(cat "$WORK/mailbin/postqueue.calls" 2>/dev/null | wc -l)" "0:0"
stop_odmrd

# --- a missing run_dir is created at start, as documented ----------------------------------------

conf create "$WORK/run-new" user=nobody
rm -rf "$WORK/run-new"
start_odmrd "$WORK/create.conf" || t_summary
expect_eq "run_dir missing, user = nobody: a session starts" "$(odmrc quit)" "220 221"
expect_eq "run_dir created owner nobody, group postfix, mode 2750" \
	"$(stat -c '%U:%G %a' "$WORK/run-new" 2>&1)" "nobody:postfix 2750"
expect_match "run_dir creation logged" "$(cat "$WORK/create.log")" "created run_dir $WORK/run-new \\(uid $NOBODY_UID, gid $PF_GID, mode 2750\\)"
stop_odmrd

# --- with user = nobody, a root helper only for Sendmail --------------------------------------------

# shape CONF: "uid[,child-uid...]" of the odmrd process inetd1.py started, during a session.
shape() {
	local pid out
	start_odmrd "$1" || return
	out=$(PYTHONPATH=$LIB timeout 20 "$PY" - "$PORT" "$INETD_LOG" <<'EOF'
import re, sys, time
from odmrclient import Client
c = Client("127.0.0.1", int(sys.argv[1]), timeout=10)
time.sleep(0.2)
pid = re.findall(r"^conn \d+ pid=(\d+)", open(sys.argv[2]).read(), re.M)[-1]
def uid(p):
    return next(l.split()[1] for l in open("/proc/%s/status" % p) if l.startswith("Uid:"))
kids = open("/proc/%s/task/%s/children" % (pid, pid)).read().split()
print(",".join([uid(pid)] + [uid(k) for k in kids]))
c.quit()
EOF
	)
	stop_odmrd
	echo "$out"
}
run_dir "$WORK/run-ps" 2750 nobody
conf ps-postfix "$WORK/run-ps" user=nobody
conf ps-sendmail "$WORK/run-ps" user=nobody mta=sendmail
expect_eq "user = nobody, mta = postfix: no root helper, the session is nobody's only" \
	"$(shape "$WORK/ps-postfix.conf")" "$NOBODY_UID"
expect_eq "user = nobody, mta = sendmail: a root helper, the session as nobody" \
	"$(shape "$WORK/ps-sendmail.conf")" "0,$NOBODY_UID"

# --- local users at a domain socket during alice's session --------------------------------------------

run_dir "$WORK/run" 2750 root
conf main "$WORK/run"
start_odmrd "$WORK/main.conf" || t_summary
touch "$WORK/hold"
out=$(timeout 60 "$PY" "$LIB/local_user.py" "$PORT" "$WORK/run" "$WORK/hold" 2>&1)
echo "# $out"
field() { grep -oE "(^| )$1=[^ ]*" <<<"$out" | cut -d= -f2-; }
expect_eq "alice's ATRN -> 250, her session turns" "$(field atrn)" 250
expect_eq "the domain socket is 0660, group postfix (from the set-group-ID run_dir)" \
	"$(field sockmode)" "0660:postfix"
expect_eq "nobody (not in the MTA's group) cannot reach the socket" "$(field nobody)" "connect=PermissionError"
expect_eq "nobody in group postfix reaches it and is closed unanswered (no greeting)" \
	"$(field postfix_group)" "greeting=EOF"
expect_match "the refused connection is logged with its uid" "$(cat "$WORK/main.log")" \
	"refused a connection to the socket for a\\.example from uid $NOBODY_UID pid [0-9]+: only root and mta_user"
expect_eq "root (an MTA may be root) is served: greeting, LHLO, MAIL" \
	"$(field mta_greeting) $(field mta_lhlo) $(field mta_mail)" "220 250 250"
expect_eq "RCPT outside a.example on its socket: 450 from odmrd (stays queued at the MTA)" \
	"$(field rcpt_outside) $(field rcpt_sub)" "450 450"
expect_eq "RCPT in a.example: the customer's 250" "$(field rcpt_in)" 250
expect_eq "alice's server saw only the a.example recipient, never the others" \
	"$(field customer_rcpts)" "<u@a.example>"
expect_eq "... and only the MAIL of the connection that may talk" "$(field customer_mail_from)" "<s@x.test>"
expect_match "the refused RCPTs are logged" "$(cat "$WORK/main.log")" \
	'refused RCPT\\x20TO:<victim@outside.test> on the socket for a\.example: not that domain'
expect_eq "then odmrd ended alice's session with QUIT" "$(field customer_end)" QUIT
wait_sessions 15
expect_eq "nothing left in run_dir" "$(ls -A "$WORK/run")" ""
check_no_crashes
t_summary
