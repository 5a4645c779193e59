#!/bin/bash
# tests/t-12-admin.sh - the admin's commands: odmrd -V, -n, -t, and what odmrd-map writes.
#
# Why: an admin learns what is wrong from `odmrd -t` before a customer does. Each kind of broken
# set-up is made for real and must be named on stderr with exit 1, while a good one gets exit 0 and
# one OK line: the configuration file (every bad line, file:line: key), the customer map (missing,
# unreadable by the account, corrupt), SASL (a listed mechanism without plugin, an unreadable
# password store), run_dir (owner, "other" bits), the MTA (a private Postfix instance: no odmrl
# service, chrooted odmrl, transport_maps not naming odmrd-map's table, a queue probe that fails;
# a private Sendmail whose .cf lacks a mailer of odmrd-map's fragment). The account-dependent
# checks run as `user = nobody` (mta = exec) so root's rights cannot hide a problem.
# odmrd-map: mode 0640 and the configured group, all-or-nothing when postmap fails, socket paths
# that do not fit, m4 quoting of domains that are m4 words (dnl, divert), the Postfix table.
# README's Postfix step (extracted, not retyped) on a copy of Debian's stock main.cf/master.cf:
# it keeps the admin's settings and a second run changes nothing.
# Needs root (chown, nobody), Postfix, saslpasswd2, and the Sendmail tree of tests/lib/sendmail.sh.
# Prints "N passed, N failed".
. "$(dirname "$0")/lib/common.sh"
. "$LIB/postfix.sh"
. "$LIB/sendmail.sh"

[ "$(id -u)" = 0 ] || { fail "t-12 runs as root (chown, user = nobody, private MTAs)"; t_summary; }
PF_STARTED=
t12_cleanup() {
	local rc=$?
	[ -n "$PF_STARTED" ] && pf_stop
	sm_stop
	[ -n "${SMBASE:-}" ] && rm -rf "$SMBASE"
	exit "$rc"
}
trap t12_cleanup EXIT

# odt NAME WANT-RC ERE-ON-OUTPUT CONF: run odmrd -t -f CONF; check exit status and that stdout+stderr
# match ERE (several EREs: each must match).
odt() {
	local name=$1 want=$2 conf=$3 out rc e
	shift 3
	out=$(timeout 60 "$ODMRD" -t -f "$conf" 2>&1)
	rc=$?
	if [ "$rc" != "$want" ]; then
		fail "$name: exit $want" "got exit $rc:" "$out"
		return
	fi
	for e in "$@"; do
		if ! printf '%s\n' "$out" | grep -Eq -- "$e"; then
			fail "$name" "want /$e/ in:" "$out"
			return
		fi
	done
	ok "$name"
}

# --- -V and -n ------------------------------------------------------------------------------------

expect_match "odmrd -V prints the version" "$("$ODMRD" -V)" '^odmrd [0-9]+\.[0-9]+\.[0-9]+$'
printf 'hostname = odmr.provider.test\nidle_timeout = 300\nmax_domains = 8\n# a comment\nsasl_mech_list = CRAM-MD5\nmta = sendmail\n' \
	>"$WORK/n.conf"
expect_eq "odmrd -n prints only what differs from the defaults" "$("$ODMRD" -n -f "$WORK/n.conf")" \
	"$(printf 'hostname = odmr.provider.test\nmax_domains = 8\nmta = sendmail\nsasl_mech_list = CRAM-MD5')"
out=$("$ODMRD" -n -f "$WORK/n-missing.conf" 2>&1)
expect_eq "odmrd -n on a missing file: exit 1" "$?" 1
expect_match "... and says why" "$out" 'n-missing\.conf: No such file or directory'

# --- odmrd-map: mode, group, all or nothing -------------------------------------------------------

printf 'alice a.example, b.example\nbob c.example\ncarol a.example\n' >"$WORK/customers"
check "odmrd-map -g nogroup builds the map" "$ODMRD_MAP" -f /dev/null -g nogroup "$WORK/customers"
expect_eq "the map is 0640, group nogroup (it names every customer)" \
	"$(stat -c '%a %G' "$WORK/customers.db")" "640 nogroup"
printf 'customer_map_group = daemon\n' >"$WORK/grp.conf"
check "odmrd-map takes the group from customer_map_group" "$ODMRD_MAP" -f "$WORK/grp.conf" "$WORK/customers"
expect_eq "... mode 0640, group daemon" "$(stat -c '%a %G' "$WORK/customers.db")" "640 daemon"
printf 'user = nobody\n' >"$WORK/usr.conf"
check "odmrd-map with user = nobody and no group set" "$ODMRD_MAP" -f "$WORK/usr.conf" "$WORK/customers"
expect_eq "... gives the map nobody's group" "$(stat -c '%a %G' "$WORK/customers.db")" "640 nogroup"
if ! getent group _odmrd >/dev/null; then
	out=$("$ODMRD_MAP" -f /dev/null "$WORK/customers" 2>&1)
	expect_eq "without _odmrd and without a group set: exit 2" "$?" 2
	expect_match "... naming customer_map_group" "$out" 'group _odmrd does not exist \(set customer_map_group'
fi

# Postfix's table from the same list, then a postmap that fails: nothing may change.
mkdir -p "$WORK/pfconf" "$WORK/run"
: >"$WORK/pfconf/main.cf"
cat >"$WORK/map.conf" <<EOF
run_dir = $WORK/run
postfix_transport = $WORK/pfconf/odmrd_transport
postfix_config_dir = $WORK/pfconf
customer_map_group = nogroup
EOF
check "odmrd-map writes the map and the Postfix table" "$ODMRD_MAP" -f "$WORK/map.conf" "$WORK/customers"
expect_eq "the table: each domain once (carol shares a.example), routed to odmrl:unix:RUN_DIR/DOMAIN" \
	"$(grep -v '^#' "$WORK/pfconf/odmrd_transport")" \
	"$(printf 'a.example\todmrl:unix:%s/a.example\nb.example\todmrl:unix:%s/b.example\nc.example\todmrl:unix:%s/c.example' \
		"$WORK/run" "$WORK/run" "$WORK/run")"
expect_eq "postmap compiled it (hash:)" \
	"$(postmap -c "$WORK/pfconf" -q b.example "hash:$WORK/pfconf/odmrd_transport")" "odmrl:unix:$WORK/run/b.example"
before=$(md5sum "$WORK/customers.db" "$WORK/pfconf/odmrd_transport" "$WORK/pfconf/odmrd_transport.db")
printf 'dave d.example\n' >>"$WORK/customers"
printf 'postmap = /bin/false\n' >>"$WORK/map.conf"
out=$("$ODMRD_MAP" -f "$WORK/map.conf" "$WORK/customers" 2>&1)
expect_eq "postmap fails: odmrd-map exits 2" "$?" 2
expect_match "... and says nothing changed" "$out" 'customers\.db not changed'
expect_eq "... the map and both table files are unchanged" \
	"$(md5sum "$WORK/customers.db" "$WORK/pfconf/odmrd_transport" "$WORK/pfconf/odmrd_transport.db")" "$before"
expect_eq "... and no temporary file is left" "$(find "$WORK" "$WORK/pfconf" -maxdepth 1 -name '*.tmp.*')" ""
sed -i '/^postmap/d' "$WORK/map.conf"
printf 'postmap = %s/no-such-postmap\n' "$WORK" >>"$WORK/map.conf"
out=$("$ODMRD_MAP" -f "$WORK/map.conf" "$WORK/customers" 2>&1)
expect_eq "postmap missing: odmrd-map exits 2" "$?" 2
expect_match "... names the program and why, as odmrd-map (odmrd-map(8), DIAGNOSTICS)" "$out" \
	"odmrd-map: cannot run $WORK/no-such-postmap: No such file or directory"
sed -i '/^postmap/d' "$WORK/map.conf"
long=$(printf 'l%.0s' $(seq 60)).$(printf 'm%.0s' $(seq 60)).example
printf 'erin %s\n' "$long" >>"$WORK/customers"
out=$("$ODMRD_MAP" -f "$WORK/map.conf" "$WORK/customers" 2>&1)
expect_eq "a domain whose socket path does not fit a unix socket: exit 2" "$?" 2
expect_match "... naming it" "$out" "$long: socket path .* is longer than a unix socket allows"
sed -i '$d' "$WORK/customers"
# A comma ends a field of a Sendmail mailer definition ("A=FILE RUN_DIR/DOMAIN,"): a run_dir with
# one would give every mailer a wrong socket path.
printf 'run_dir = %s/run,x\nsendmail_m4 = %s/odmrd.m4\ncustomer_map_group = nogroup\n' "$WORK" "$WORK" >"$WORK/comma.conf"
out=$("$ODMRD_MAP" -f "$WORK/comma.conf" "$WORK/customers" 2>&1)
expect_eq "run_dir with a comma and a Sendmail fragment: exit 2" "$?" 2
expect_match "... saying why" "$out" "run_dir $WORK/run,x: blanks, commas, quotes and '#' cannot go in the MTA tables"
check "... and no fragment written" test ! -e "$WORK/odmrd.m4"

# --- odmrd -t: a good set-up, then each kind of breakage -------------------------------------------

# The account-dependent checks as nobody; mta = exec needs no MTA.
mk_sasldb "$WORK/sasldb2" provider.test alice alice-secret
chgrp nogroup "$WORK/sasldb2" && chmod 0640 "$WORK/sasldb2"
mk_map "$WORK/customers" 'alice a.example, b.example'
install -d -o nobody -g nogroup -m 0750 "$WORK/run-nobody"
chmod 0755 "$WORK"
write_conf "$WORK/good.conf" user=nobody run_dir="$WORK/run-nobody" mta=exec exec_command=/bin/cat \
	-postqueue -sendmail
chmod 0644 "$WORK/good.conf"
odt "good set-up (user = nobody, mta = exec): exit 0, OK" 0 "$WORK/good.conf" \
	'^odmrd: .*good\.conf: OK \(0 warning\(s\)\), checked as nobody$'

# Configuration errors: every bad line, by file:line: key, and nothing else is checked.
cp "$WORK/good.conf" "$WORK/bad.conf"
printf 'max_domains = 0\nsasl_mech_lst = CRAM-MD5\nfrobnicate = 1\nhostname = bad host\n' >>"$WORK/bad.conf"
n=$(wc -l <"$WORK/bad.conf")
odt "config errors: each one named as file:line: key, exit 1" 1 "$WORK/bad.conf" \
	"bad\.conf:$((n - 3)): max_domains: out of range \(1-126\)" \
	"bad\.conf:$((n - 2)): sasl_mech_lst: unknown key" \
	"bad\.conf:$((n - 1)): frobnicate: unknown key" \
	"bad\.conf:$n: hostname: has a character not allowed" \
	'bad\.conf: 4 error\(s\)$'
odt "missing configuration file: exit 1" 1 "$WORK/none.conf" 'none\.conf: No such file or directory'
write_conf "$WORK/host.conf" user=nobody run_dir="$WORK/run-nobody" mta=exec exec_command=/bin/cat \
	hostname=odmr -postqueue -sendmail
odt "unqualified hostname: a warning, exit 0" 0 "$WORK/host.conf" \
	'warning: hostname odmr is not fully qualified' 'OK \(1 warning\(s\)\)'
chmod 0600 "$WORK/good.conf"
odt "configuration unreadable by the account: exit 1" 1 "$WORK/good.conf" "good\.conf: nobody cannot read it"
chmod 0644 "$WORK/good.conf"

# The customer map.
write_conf "$WORK/nomap.conf" user=nobody run_dir="$WORK/run-nobody" mta=exec exec_command=/bin/cat \
	customer_map="$WORK/no-such.db" -postqueue -sendmail
odt "customer map missing: exit 1" 1 "$WORK/nomap.conf" 'customer_map .*no-such\.db: No such file.*odmrd-map'
chmod 0600 "$WORK/customers.db"
odt "customer map unreadable by the account: exit 1" 1 "$WORK/good.conf" 'customer_map: .*customers\.db'
chmod 0644 "$WORK/customers.db"
odt "customer map readable by everyone: a warning" 0 "$WORK/good.conf" 'warning: customer_map .* readable by every local user'
cp -p "$WORK/customers.db" "$WORK/customers.db.good"
head -c 4096 /dev/urandom >"$WORK/customers.db"
chgrp nogroup "$WORK/customers.db"
chmod 0640 "$WORK/customers.db"
odt "customer map corrupt: exit 1" 1 "$WORK/good.conf" 'customer_map: '
mv "$WORK/customers.db.good" "$WORK/customers.db"
chmod 0640 "$WORK/customers.db"

# SASL.
write_conf "$WORK/mech.conf" user=nobody run_dir="$WORK/run-nobody" mta=exec exec_command=/bin/cat \
	sasl_mech_list="CRAM-MD5 GSSAPI" -postqueue -sendmail
odt "a listed mechanism no plugin offers: exit 1" 1 "$WORK/mech.conf" 'sasl_mech_list: GSSAPI: no SASL plugin offers it'
chmod 0600 "$WORK/sasldb2"
odt "sasldb unreadable by the account: exit 1" 1 "$WORK/good.conf" 'SASL password store: .*sasldb2.*Permission denied'
chmod 0640 "$WORK/sasldb2"
write_conf "$WORK/nodb.conf" user=nobody run_dir="$WORK/run-nobody" mta=exec exec_command=/bin/cat \
	sasl_sasldb_path="$WORK/no-such-sasldb" -postqueue -sendmail
odt "sasldb missing: exit 1" 1 "$WORK/nodb.conf" 'SASL password store: .*no-such-sasldb: No such file'

# run_dir.
chown root "$WORK/run-nobody"
odt "run_dir not owned by the account: exit 1" 1 "$WORK/good.conf" \
	"run_dir .* is owned by uid 0, not by odmrd's uid $(id -u nobody): odmrd refuses to serve"
chown nobody "$WORK/run-nobody"
chmod 0755 "$WORK/run-nobody"
odt "run_dir with permissions for other: exit 1" 1 "$WORK/good.conf" 'run_dir .* is open to others \(mode 0755'
chmod 0750 "$WORK/run-nobody"
write_conf "$WORK/norun.conf" user=nobody run_dir="$WORK/no-such-run" mta=exec exec_command=/bin/cat \
	-postqueue -sendmail
odt "run_dir missing: a warning (odmrd or tmpfiles create it)" 0 "$WORK/norun.conf" 'warning: run_dir .*no-such-run: No such file'
write_conf "$WORK/noexec.conf" user=nobody run_dir="$WORK/run-nobody" mta=exec exec_command="/no/such/program -x" \
	-postqueue -sendmail
odt "exec_command missing: exit 1" 1 "$WORK/noexec.conf" 'exec_command /no/such/program: No such file'

# --- Postfix: a private instance set up from odmrd-map's output --------------------------------------

RUNDIR=$WORK/pfrun
pf_setup "$WORK/pf" "$RUNDIR" -m "$WORK/customers" || { fail "pf_setup"; t_summary; }
PF_STARTED=1
pf_start || { fail "private Postfix starts"; t_summary; }
write_conf "$WORK/pf.conf" user=root run_dir="$RUNDIR" postqueue=/usr/sbin/postqueue postfix_config_dir="$PF_CONF" \
	postfix_transport="$PF_CONF/odmrd_transport" -sendmail
odt "Postfix set up as the README says: exit 0, OK" 0 "$WORK/pf.conf" 'pf\.conf: OK \(0 warning\(s\)\), checked as root$'
write_conf "$WORK/pf-notable.conf" user=root run_dir="$RUNDIR" postqueue=/usr/sbin/postqueue postfix_config_dir="$PF_CONF" -sendmail
odt "postfix_transport not set: a warning" 0 "$WORK/pf-notable.conf" 'warning: postfix_transport is not set'
postconf -c "$PF_CONF" -e transport_maps= relay_domains=
odt "transport_maps and relay_domains without odmrd-map's table: exit 1" 1 "$WORK/pf.conf" \
	"transport_maps does not name hash:$PF_CONF/odmrd_transport.*not routed to odmrd" \
	"relay_domains does not name hash:.*refused from other hosts"
postconf -c "$PF_CONF" -e "transport_maps = hash:$PF_CONF/odmrd_transport" "relay_domains = hash:$PF_CONF/odmrd_transport"
postconf -c "$PF_CONF" -e defer_transports=
odt "defer_transports without odmrl: a warning" 0 "$WORK/pf.conf" 'warning: Postfix.s defer_transports lacks odmrl'
postconf -c "$PF_CONF" -e defer_transports=odmrl
postconf -c "$PF_CONF" -M odmrl/unix='odmrl unix - - y - - lmtp'
odt "odmrl chrooted: exit 1" 1 "$WORK/pf.conf" 'master\.cf: odmrl runs chrooted'
postconf -c "$PF_CONF" -MX odmrl/unix
odt "no odmrl service in master.cf: exit 1" 1 "$WORK/pf.conf" "master\.cf has no odmrl service"
postconf -c "$PF_CONF" -M odmrl/unix='odmrl unix - - n - - lmtp'
odt "odmrl restored: OK again" 0 "$WORK/pf.conf" 'OK \(0 warning'
mkdir -p "$WORK/not-postfix"
write_conf "$WORK/pf-probe.conf" user=root run_dir="$RUNDIR" postqueue=/usr/sbin/postqueue postfix_config_dir="$WORK/not-postfix" \
	postfix_transport="$PF_CONF/odmrd_transport" -sendmail
odt "the queue probe fails (not a Postfix instance): exit 1" 1 "$WORK/pf-probe.conf" \
	'/usr/sbin/postqueue -j \(the queue probe\) failed with status [0-9]+: .*not-postfix'
chmod 0755 "$RUNDIR"
odt "Postfix: run_dir with permissions for other: exit 1" 1 "$WORK/pf.conf" 'is open to others'
chmod 0700 "$RUNDIR"
odt "Postfix: run_dir the lmtp client cannot reach: exit 1" 1 "$WORK/pf.conf" "mta_user postfix .* could not reach its sockets"
chmod 2750 "$RUNDIR"
pf_stop
PF_STARTED=

# --- README, "Admin guide" step 5, run as written on a copy of Debian's stock Postfix config ----------

# The block is taken from README.md, not retyped. MAIL_CONFIG points postconf at the copy and a stub
# systemctl records the reload, so the host's Postfix is never touched.
readme_block() { # readme_block HEADING: the first ```sh block after the line "### HEADING"
	awk -v h="### $1" '$0 == h { f = 1; next } f && /^```sh$/ { p = 1; next } p && /^```$/ { exit } p' \
		"$TOP/README.md"
}
block=$(readme_block "5. Postfix")
expect_match "README step 5 has a command block" "$block" 'postconf -M'
RP=$WORK/readme-postfix
mkdir -p "$RP/etc" "$RP/stub"
cp /usr/share/postfix/main.cf.debian "$RP/etc/main.cf"
cp /usr/share/postfix/master.cf.dist "$RP/etc/master.cf"
# An admin's own transport table and held transport must survive.
postconf -c "$RP/etc" -e 'transport_maps = hash:/etc/postfix/transport' 'defer_transports = slow'
printf '#!/bin/sh\necho "$*" >>%s/systemctl.calls\n' "$RP" >"$RP/stub/systemctl"
chmod 755 "$RP/stub/systemctl"
readme_step5() { MAIL_CONFIG=$RP/etc PATH=$RP/stub:$PATH bash -e -c "$block"; }
check "README step 5 runs" readme_step5
cp "$RP/etc/main.cf" "$RP/main.cf.first"
cp "$RP/etc/master.cf" "$RP/master.cf.first"
check "README step 5 runs a second time" readme_step5
expect_eq "... and changes nothing the second time (idempotent)" \
	"$(cat "$RP/main.cf.first" "$RP/master.cf.first" | md5sum)" "$(cat "$RP/etc/main.cf" "$RP/etc/master.cf" | md5sum)"
expect_eq "relay_domains, transport_maps, defer_transports: odmrd's part added, the admin's kept" \
	"$(postconf -c "$RP/etc" -nh relay_domains transport_maps defer_transports | paste -sd'|')" \
	"hash:/etc/postfix/odmrd_transport|hash:/etc/postfix/odmrd_transport, hash:/etc/postfix/transport|odmrl, slow"
expect_eq "master.cf: one odmrl lmtp service, not chrooted" \
	"$(postconf -c "$RP/etc" -M odmrl/unix | awk '{ print $1, $2, $5, $8 }')" "odmrl unix n lmtp"
expect_eq "Postfix reloaded each time" "$(cat "$RP/systemctl.calls")" "$(printf 'reload postfix\nreload postfix')"

# --- Sendmail: the .cf must hold odmrd-map's current mailers -------------------------------------------

mkdir -p /var/cache/odmrd-test && chmod 755 /var/cache/odmrd-test
SMBASE=$(mktemp -d /var/cache/odmrd-test/t-12-admin.XXXXXX) && chmod 755 "$SMBASE"
# Domains that are m4 words: odmrd-map quotes every line of its fragment.
mk_map "$WORK/sm-customers" 'alice a.example' 'bob dnl.example, divert.example'
if sm_setup "$SMBASE/sm" "$SMBASE/run" -m "$WORK/sm-customers" >"$WORK/sm_setup.out" 2>&1; then
	ok "sm_setup with odmrd-map's fragment (m4 words as domains: dnl.example, divert.example)"
	expect_eq "dnl.example and divert.example get their own mailers" \
		"$(for d in dnl.example divert.example; do printf '/parse u@%s\n' "$d" |
			"$SM_SENDMAIL" -C "$SM_CF" -bt | grep -o 'mailer [^,]*'; done | paste -sd' ')" \
		"mailer odmr_dnl_example mailer odmr_divert_example"
	write_conf "$WORK/sm.conf" user=root mta=sendmail sendmail="$SM_SENDMAIL" sendmail_cf="$SM_CF" \
		sendmail_m4="$SM_WORK/etc/odmrd.m4" run_dir="$SMBASE/run" -postqueue
	chmod 0750 "$SMBASE/run"
	odt "Sendmail with odmrd-map's mailers in its .cf: exit 0, OK" 0 "$WORK/sm.conf" 'sm\.conf: OK'
	# A new customer: odmrd-map writes the fragment, the .cf is not rebuilt yet.
	printf 'carol c.example\n' >>"$WORK/sm-customers"
	"$ODMRD_MAP" -f "$SM_WORK/odmrd-map.conf" "$WORK/sm-customers"
	odt "a mailer of the fragment missing from sendmail.cf: exit 1" 1 "$WORK/sm.conf" \
		'sendmail\.cf has no mailer odmr_c_example from .*odmrd\.m4: rebuild sendmail\.cf'
	chmod 0770 "$SMBASE/run"
	odt "Sendmail: group-writable run_dir: exit 1" 1 "$WORK/sm.conf" 'sendmail refuses its sockets as unsafe'
else
	fail "sm_setup with odmrd-map's fragment" "$(tail -20 "$WORK/sm_setup.out")"
fi

t_summary
