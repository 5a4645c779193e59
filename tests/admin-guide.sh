#!/bin/bash
# tests/admin-guide.sh - README's "Admin guide" run as written against the Debian package and the
# system Postfix, then real fetchmail collects the mail (make check-guide; CI runs it).
#
# Why: issue 13 asks that a new admin reach working ODMR by following the README alone. The
# admin's commands are the guide's ```sh blocks (and the ```sh systemd block for the service),
# extracted from README.md, never retyped, and run in order with `bash -e` inside a booted
# throwaway Debian 12 (tests/lib/troot.sh: the host's / under a tmpfs overlay, private
# namespaces, systemd as PID 1), so the host's /etc and dpkg database are never touched. What the
# guide leaves to the admin is supplied the way an admin would: "Y" to apt's question, the answers
# to `dpkg-reconfigure postfix` (preseeded: Internet Site, odmr.provider.example), the password
# given to saslpasswd2, a second customer added with the command the guide names. Mail is
# queued for alice.example and for bob's domain both before the customer domains are set up and
# after; then fetchmail (the guide's .fetchmailrc, pointed at loopback and a local SMTP sink that
# answers 450 to t*@ recipients) collects alice's mail. Checked: every message of alice's exactly
# once and intact (the mail queued before the set-up too: odmrd releases the queue IDs its probe
# found), bob's mail still queued, the temp-failed recipient still queued, and odmrd's warning at
# QUIT about what it left behind.
# Needs root, dpkg-buildpackage, unshare, nsenter, the hybrid cgroup hierarchy. Prints
# "N passed, N failed". AG_DEB=path reuses a built odmrd_*.deb.

if [ -z "${AG_TIMED:-}" ]; then
	AG_TIMED=1 exec timeout --foreground --kill-after=10 "${AG_TIMEOUT:-900}" bash "$0" "$@"
fi
. "$(dirname "$0")/lib/common.sh"
. "$LIB/troot.sh"
. "$LIB/e2e.sh"

[ "$(id -u)" = 0 ] || { fail "the admin-guide test needs root (a booted throwaway root)"; t_summary; }
for t in dpkg-buildpackage unshare nsenter fetchmail; do
	command -v "$t" >/dev/null || { fail "$t is installed (tools/install-deps.sh)"; t_summary; }
done
PW=alice-secret

# --- the guide's commands, from README.md ---------------------------------------------------------

G=$WORK/guide
mkdir -p "$G"
# One file per block, in order: NN-<step>.sh. Blocks: ```sh, and ```sh systemd for the service.
awk -v dir="$G" '
	/^## / { in_guide = ($0 == "## Admin guide") }
	in_guide && /^### / { step = $2; sub(/\.$/, "", step) }
	in_guide && !blk && ($0 == "```sh" || $0 == "```sh systemd") { blk = 1; n++; f = sprintf("%s/%02d-step%s.sh", dir, n, step); next }
	blk && $0 == "```" { blk = 0; close(f); next }
	blk { print > f }
' "$TOP/README.md"
BLOCKS=("$G"/*.sh)
expect_eq "README's admin guide: the blocks of steps 1-7 are found" \
	"$(for b in "${BLOCKS[@]}"; do basename "$b" .sh; done | sed 's/^[0-9]*-//' | paste -sd' ')" \
	"step1 step2 step3 step4 step5 step6 step7"
block() { # block STEP: the file of that step's block
	local b
	for b in "${BLOCKS[@]}"; do [[ $b == *-step$1.sh ]] && echo "$b"; done
}
check "step 1 installs the package with apt" grep -q 'apt install ./odmrd_\*\.deb' "$(block 1)"

# --- the package -------------------------------------------------------------------------------------

if [ -n "${AG_DEB:-}" ]; then
	DEB=$AG_DEB
else
	DEB_DIR=$WORK/deb
	DEB_BUILD_OPTIONS=nocheck make -C "$TOP" deb DEBBUILD="$DEB_DIR" >"$WORK/build.log" 2>&1 ||
		{ fail "make deb" "$(tail -15 "$WORK/build.log")"; t_summary; }
	DEB=$(ls "$DEB_DIR"/odmrd_*_*.deb 2>/dev/null | grep -v dbgsym | head -1)
fi
[ -f "$DEB" ] || { fail "the package is built" "no odmrd_*.deb"; t_summary; }

# --- a booted Debian 12 with the host's packages (Postfix unconfigured, as install-deps leaves it) ---

if ! troot_start --boot --name odmr.provider.example; then
	fail "a booted throwaway root starts" "$(tail -5 "$WORK/troot.log")"
	t_summary
fi
ok "a booted throwaway root (systemd as PID 1) for the guide"
troot_exec rm -f /usr/sbin/policy-rc.d
cp "$DEB" "$TROOT_SHARE/"
cp "${BLOCKS[@]}" "$TROOT_SHARE/"
# run_block STEP [STDIN-FILE]: the block as written, bash -e, in /troot (where the .deb is).
run_block() {
	local b
	b=$(basename "$(block "$1")")
	troot_exec env DEBIAN_FRONTEND=noninteractive bash -c "cd /troot && exec bash -e /troot/$b" \
		<"${2:-/dev/null}" >"$WORK/step$1.out" 2>&1
}
# The admin's answers to dpkg-reconfigure postfix, given before the guide asks.
troot_sh "printf '%s\n' 'postfix postfix/main_mailer_type select Internet Site' \
	'postfix postfix/mailname string odmr.provider.example' | debconf-set-selections"
# apt asks "Do you want to continue? [Y/n]": the admin says yes.
printf 'Y\n' >"$WORK/yes"
if run_block 1 "$WORK/yes"; then ok "step 1 (install, Postfix configured)"; else fail "step 1 (install, Postfix configured)" "$(tail -15 "$WORK/step1.out")"; fi
expect_eq "the package is installed and Postfix runs" \
	"$(troot_exec dpkg-query -W -f='${db:Status-Abbrev}' odmrd):$(troot_exec systemctl is-active postfix)" "ii :active"

# Mail queued before any customer domain is set up: Postfix tries the domains' MX and defers.
tr_send() { troot_exec /usr/sbin/sendmail -i -f "$1" -- "${@:2}"; }
tr_queue() { troot_exec postqueue -j; }
msg() { printf 'From: s@sender.example\nTo: %s\nSubject: %s\n\n%s\n.leading dot\n' "$2" "$1" "$1"; }
msg before-alice u1@alice.example | e2e_inject tr_send before-alice s@sender.example u1@alice.example
msg before-bob u1@bob.example | e2e_inject tr_send before-bob s@sender.example u1@bob.example
# held RCPT...: true when every listed recipient is queued in the deferred queue.
held() {
	local q r
	q=$(tr_queue) || return 1
	for r in "$@"; do
		printf '%s\n' "$q" | grep -F "\"$r\"" | grep -q '"queue_name": "deferred"' || return 1
	done
}
check "mail queued before the set-up is deferred" wait_for 60 held u1@alice.example u1@bob.example

# Steps 2-6 as written; saslpasswd2 reads the password from its standard input (not a terminal:
# once, without the second prompt).
printf '%s\n' "$PW" >"$WORK/password"
for s in 2 3 4 5 6; do
	if run_block "$s" "$WORK/password"; then
		ok "step $s runs as written"
	else
		fail "step $s runs as written" "$(tail -15 "$WORK/step$s.out")"
	fi
done
expect_match "step 6: odmrd -t says OK" "$(cat "$WORK/step6.out")" '^odmrd: /etc/odmrd/odmrd.conf: OK \(0 warning\(s\)\), checked as _odmrd$'
expect_eq "the map and the sasldb: root:_odmrd 0640" \
	"$(troot_exec stat -c '%U:%G %a' /etc/odmrd/customers.db /etc/odmrd/sasldb2 | paste -sd' ')" \
	"root:_odmrd 640 root:_odmrd 640"
expect_eq "Postfix routes alice.example to odmrd (odmrd-map's table)" \
	"$(troot_exec postmap -q alice.example hash:/etc/postfix/odmrd_transport)" "odmrl:unix:/run/odmrd/alice.example"

# A second customer, added the way the guide says: edit the list, run odmrd-map again.
troot_sh "printf 'bob       bob.example\n' >>/etc/odmrd/customers && odmrd-map /etc/odmrd/customers" >"$WORK/bob.out" 2>&1 ||
	fail "adding bob with odmrd-map" "$(cat "$WORK/bob.out")"

# Mail queued after the set-up: held for odmrd ("deferred transport").
msg after-alice u2@alice.example | e2e_inject tr_send after-alice s@sender.example u2@alice.example
msg after-tempfail t1@alice.example | e2e_inject tr_send after-tempfail s@sender.example t1@alice.example
msg after-bob u2@bob.example | e2e_inject tr_send after-bob s@sender.example u2@bob.example
check "mail queued after the set-up is held" wait_for 60 held u2@alice.example t1@alice.example u2@bob.example
expect_eq "... by defer_transports (routed to odmrl)" \
	"$(tr_queue | grep -F '"u2@alice.example"' | grep -o '"delay_reason": "[^"]*"')" '"delay_reason": "deferred transport"'

# Step 7, systemd.
if run_block 7; then ok "step 7 (systemd) runs as written"; else fail "step 7 (systemd) runs as written" "$(tail -15 "$WORK/step7.out")"; fi
expect_eq "odmrd.socket listens on port 366" \
	"$(troot_exec systemctl is-active odmrd.socket):$(troot_exec ss -Hltn 'sport = :366' | wc -l | tr -d ' ')" "active:2"

# --- the customer: fetchmail with the guide's .fetchmailrc, into a local SMTP server ---------------

mkdir -p "$TROOT_SHARE/sink" "$TROOT_SHARE/fm"
spawn troot_exec python3 "$LIB/smtpsink.py" --port 0 --port-file /troot/sink.port --outdir /troot/sink \
	--log /troot/sink.log --tempfail-rcpt '^t[0-9]@' >/dev/null 2>"$WORK/sink.stderr"
wait_for 10 test -s "$TROOT_SHARE/sink.port" || { fail "the customer's SMTP server starts" "$(cat "$WORK/sink.stderr")"; t_summary; }
awk '/^### 9\./ { f = 1 } f && /^```text$/ { b = 1; next } b && /^```$/ { exit } b' "$TOP/README.md" |
	sed -e 's/odmr\.provider\.example/127.0.0.1/' -e "s/\"secret\"/\"$PW\"/" \
		-e "s|smtphost localhost|smtphost 127.0.0.1/$(cat "$TROOT_SHARE/sink.port")|" >"$TROOT_SHARE/fm/fetchmailrc"
chmod 700 "$TROOT_SHARE/fm"
chmod 600 "$TROOT_SHARE/fm/fetchmailrc"
check "the guide's .fetchmailrc polls with protocol odmr, service 366, alice.example" \
	grep -Eq 'poll 127\.0\.0\.1 protocol odmr service 366' "$TROOT_SHARE/fm/fetchmailrc"
troot_exec env HOME=/troot/fm FETCHMAILHOME=/troot/fm timeout 120 fetchmail -f /troot/fm/fetchmailrc \
	--nosyslog -v --pidfile /troot/fm/pid >"$WORK/fetchmail.out" 2>&1
FM_RC=$?
expect_eq "fetchmail exit status 0" "$FM_RC" 0
[ "$FM_RC" = 0 ] || tail -15 "$WORK/fetchmail.out" | sed 's/^/    fetchmail: /'

# --- what arrived, what stays, what odmrd said ---------------------------------------------------------

journal() { troot_exec journalctl -q --no-pager -o cat SYSLOG_IDENTIFIER=odmrd; }
session_logged() { journal | grep -q '^session peer='; }
check "odmrd logged the end of the session" wait_for 30 session_logged

arrived() { grep -l "^X-E2E-Id: $1" "$TROOT_SHARE"/sink/*.msg 2>/dev/null | wc -l; }
expect_eq "alice's mail queued after the set-up arrived exactly once" "$(arrived after-alice)" 1
expect_eq "alice's mail queued before the set-up arrived exactly once" "$(arrived before-alice)" 1
specs=(after-alice)
[ "$(arrived before-alice)" = 1 ] && specs+=(before-alice)
if out=$(e2e_verify "$TROOT_SHARE/sink" "${specs[@]}"); then
	ok "the sink holds exactly ${specs[*]}, envelope and body intact (${out%%$'\n'*})"
else
	fail "the sink holds exactly ${specs[*]}, envelope and body intact" "$out"
fi
expect_eq "bob's mail (before and after the set-up) stays queued" \
	"$(tr_queue | grep -oE '"u[12]@bob\.example"' | sort | paste -sd' ')" '"u1@bob.example" "u2@bob.example"'
expect_eq "the recipient alice's server answered 450 stays queued" \
	"$(tr_queue | grep -c '"t1@alice\.example"')" 1
expect_match "odmrd's session line: alice, alice.example granted, done" "$(journal | grep '^session peer=')" \
	'user=alice@provider\.example mech=CRAM-MD5 asked=alice\.example granted=alice\.example atrn=250 code=250 result=done'
expect_eq "odmrd warns at QUIT that mail for alice.example is still queued" \
	"$(journal | grep -c 'still queued at QUIT')" 1
expect_match "Postfix's lmtp line names the customer's socket" \
	"$(troot_exec journalctl -q --no-pager -o cat SYSLOG_IDENTIFIER=postfix/lmtp | grep 'u2@alice.example')" \
	'relay=[^ ]*\[/run/odmrd/alice\.example\].* status=sent'

# Kept for inspection: the journal of the root (odmrd, Postfix, systemd).
troot_exec journalctl -q --no-pager -o short-iso >"$WORK/journal.txt" 2>&1
troot_stop
t_summary
