#!/bin/bash
# tests/package.sh - the Debian package, built, linted, installed, used and purged for real
# (make check-package; CI runs it).
#
# Why: issue 13 asks for a package a new admin can install with "apt install ./odmrd_*.deb" and
# follow to working ODMR; this proves what the package itself owes: (1) "make deb" builds it
# (source and binary) with dpkg-buildflags' hardening reaching the compiler and the linker, and
# the unit tests pass in the build; (2) lintian reports no error and no warning; (3) it holds
# what it should (binaries, man pages, conffiles, units, tmpfiles.d, examples, docs); (4) on a
# host without systemd running it installs (system account _odmrd, /run/odmrd 2750
# _odmrd:postfix), reinstalls, and purges leaving nothing but the account; (5) on a booted
# Debian 12 (systemd as PID 1) nothing listens on port 366 after the install, the shipped xinetd
# entry works under the stock xinetd once enabled (session as _odmrd, xinetd's START/EXIT lines
# in syslog), so do the shipped systemd units, and purge stops and removes everything.
# Installs happen only in throwaway roots (tests/lib/troot.sh): the host's /etc and dpkg
# database are never touched. Needs root. Prints "N passed, N failed".

if [ -z "${PKG_TIMED:-}" ]; then
	PKG_TIMED=1 exec timeout --foreground --kill-after=10 "${PKG_TIMEOUT:-900}" bash "$0" "$@"
fi
. "$(dirname "$0")/lib/common.sh"
. "$LIB/troot.sh"

[ "$(id -u)" = 0 ] || { fail "package tests need root (dpkg in a throwaway root)"; t_summary; }
for t in dpkg-buildpackage lintian unshare nsenter saslpasswd2; do
	command -v "$t" >/dev/null || { fail "$t is installed (tools/install-deps.sh)"; t_summary; }
done
A=alice:alice-secret
# The customers' passwords (the map is built inside the roots, with the installed odmrd-map).
mk_sasldb "$WORK/sasldb2" provider.test alice alice-secret bob bob-secret ||
	fail "saslpasswd2 could not build the sasldb"

# --- (1) build ------------------------------------------------------------------------------------

DEB_DIR=$WORK/deb
BUILD_LOG=$WORK/build.log
make -C "$TOP" deb DEBBUILD="$DEB_DIR" DEBFLAGS="-us -uc" >"$BUILD_LOG" 2>&1
st=$?
DEB=$(ls "$DEB_DIR"/odmrd_*_*.deb 2>/dev/null | grep -v dbgsym | head -1)
CHANGES=$(ls "$DEB_DIR"/odmrd_*.changes 2>/dev/null | head -1)
if [ "$st" -ne 0 ] || [ -z "$DEB" ] || [ -z "$CHANGES" ] || [ -z "$(ls "$DEB_DIR"/odmrd_*.dsc 2>/dev/null)" ]; then
	fail "(1) make deb DEBFLAGS='-us -uc' builds the source and binary packages" "exit $st" "$(tail -15 "$BUILD_LOG")"
	t_summary
fi
ok "(1) make deb builds $(basename "$DEB") and the source package"
expect_match "(1) the unit tests ran in the build and passed" "$(grep -E '^[0-9]+%: Checks:' "$BUILD_LOG")" \
	'^100%: Checks: [1-9][0-9]*, Failures: 0, Errors: 0$'
expect_match "(1) dpkg-buildflags' CPPFLAGS and CFLAGS reach the compiler" \
	"$(grep -E '^cc .* -c -o session\.o session\.c' "$BUILD_LOG")" \
	'-D_FORTIFY_SOURCE=2 .*-fstack-protector-strong .*-Werror=format-security'
expect_match "(1) dpkg-buildflags' LDFLAGS (relro, bindnow) reach the linker" \
	"$(grep -E '^cc .* -o odmrd ' "$BUILD_LOG")" '-Wl,-z,relro -Wl,-z,now '
X=$WORK/x
rm -rf "$X"
dpkg-deb -x "$DEB" "$X"
elf() { # elf BINARY: BIND_NOW, GNU_RELRO, PIE, stack protector, fortified calls
	local b=$1
	printf '%s %s %s %s %s\n' \
		"$(readelf -d "$b" | grep -q 'BIND_NOW' && echo now)" \
		"$(readelf -lW "$b" | grep -q 'GNU_RELRO' && echo relro)" \
		"$(readelf -hW "$b" | grep -q 'Type:.*DYN' && echo pie)" \
		"$(readelf -sW --dyn-syms "$b" | grep -q '__stack_chk_fail' && echo ssp)" \
		"$(readelf -sW --dyn-syms "$b" | grep -qE '__[a-z]+_chk@' && echo fortify)"
}
expect_eq "(1) /usr/sbin/odmrd is hardened (bindnow, relro, PIE, stack protector, fortify)" \
	"$(elf "$X/usr/sbin/odmrd")" "now relro pie ssp fortify"
expect_eq "(1) /usr/sbin/odmrd-map is hardened" "$(elf "$X/usr/sbin/odmrd-map" | cut -d' ' -f1-4)" "now relro pie ssp"

# --- (2) lintian ----------------------------------------------------------------------------------

LINTIAN=$WORK/lintian.txt
lintian --pedantic -E -I --show-overrides --fail-on error,warning "$CHANGES" >"$LINTIAN" 2>&1
st=$?
echo "# lintian: $(grep -cE '^[EWIPXO]: ' "$LINTIAN") tag(s): $(grep -oE '^[EWIPXO]: [^ ]+ [^ ]+ [^ ]+' "$LINTIAN" | awk '{ print $1 $4 }' | sort | uniq -c | tr -s ' ' | tr '\n' ';')"
expect_eq "(2) lintian --pedantic on the .changes (binary and source): no error, no warning" \
	"$st:$(grep -E '^[EW]: ' "$LINTIAN")" "0:"
expect_eq "(2) no lintian override is needed" "$(grep -E '^O: ' "$LINTIAN")" ""

# --- (3) contents ---------------------------------------------------------------------------------

want_files="/etc/odmrd/odmrd.conf
/etc/xinetd.d/odmrd
/lib/systemd/system/odmrd.socket
/lib/systemd/system/odmrd@.service
/lib/systemd/system/odmrs.socket
/lib/systemd/system/odmrs@.service
/usr/lib/odmrd/odmrd-tls.so
/usr/lib/tmpfiles.d/odmrd.conf
/usr/sbin/odmrd
/usr/sbin/odmrd-map
/usr/share/doc/odmrd/README.md.gz
/usr/share/doc/odmrd/changelog.gz
/usr/share/doc/odmrd/copyright
$(cd "$TOP" && for f in etc/odmrd.conf.example xinetd.d/odmrd inetd/inetd.conf.odmrd xinetd.d/odmrs inetd/inetd.conf.odmrs mta/postfix/* mta/sendmail/*; do
	echo "/usr/share/doc/odmrd/examples/$f"
done)
/usr/share/man/man5/odmrd.conf.5.gz
/usr/share/man/man8/odmrd-map.8.gz
/usr/share/man/man8/odmrd.8.gz"
expect_eq "(3) the package's files" "$(dpkg-deb -c "$DEB" | awk '$1 !~ /^d/ { sub(/^\./, "", $6); print $6 }' | sort)" \
	"$(echo "$want_files" | sort)"
expect_eq "(3) conffiles" "$(dpkg-deb --ctrl-tarfile "$DEB" | tar -xO ./conffiles)" \
	"/etc/odmrd/odmrd.conf
/etc/xinetd.d/odmrd"
expect_eq "(3) /etc/odmrd/odmrd.conf is etc/odmrd.conf.example" "$(cmp "$X/etc/odmrd/odmrd.conf" "$TOP/etc/odmrd.conf.example" 2>&1)" ""
expect_eq "(3) /etc/xinetd.d/odmrd is xinetd.d/odmrd, disabled" \
	"$(cmp "$X/etc/xinetd.d/odmrd" "$TOP/xinetd.d/odmrd" 2>&1):$(grep -E '^[[:space:]]*disable' "$X/etc/xinetd.d/odmrd" | tr -s ' \t' ' ')" \
	": disable = yes"
expect_eq "(3) the default odmrd.conf sets the private sasldb and user = _odmrd, nothing else" \
	"$(grep -E '^[a-z]' "$X/etc/odmrd/odmrd.conf")" \
	"sasl_pwcheck_method = auxprop
sasl_auxprop_plugin = sasldb
sasl_sasldb_path = /etc/odmrd/sasldb2
user = _odmrd"
deps=$(dpkg-deb -f "$DEB" Depends)
for d in adduser libsasl2-modules libsasl2-modules-db libwrap0 libsasl2-2 libgdbm6 libjansson4; do
	case ", $deps," in *", $d,"* | *", $d ("*) ;; *) fail "(3) Depends names $d" "$deps"; continue ;; esac
	ok "(3) Depends names $d"
done

# --- (4) a host without systemd: install, reinstall, purge ---------------------------------------

if ! troot_start; then
	fail "(4) a throwaway root starts" "$(tail -5 "$WORK/troot.log")"
	t_summary
fi
expect_eq "(4) the root has no odmrd and no _odmrd before the install" \
	"$(troot_exec dpkg-query -W -f='${db:Status-Status}' odmrd 2>/dev/null):$(troot_exec getent passwd _odmrd)" ":"
BEFORE=$(troot_changes)
out=$(troot_exec dpkg -i "$DEB" 2>&1)
expect_eq "(4) dpkg -i: exit 0, and it says nothing about errors" \
	"$?:$(grep -iE 'error|warning|fail' <<<"$out")" "0:"
expect_eq "(4) installed" "$(troot_exec dpkg-query -W -f='${db:Status-Abbrev}' odmrd)" "ii "
IFS=: read -r _ _ uid gid _ home shell <<<"$(troot_exec getent passwd _odmrd)"
expect_eq "(4) _odmrd: a system account (uid < 1000), group _odmrd, home /nonexistent, no shell" \
	"$([ "${uid:-1000}" -lt 1000 ] && echo system):$(troot_exec getent group "$gid" | cut -d: -f1):$home:$shell" \
	"system:_odmrd:/nonexistent:/usr/sbin/nologin"
expect_eq "(4) the run directory from tmpfiles.d: /run/odmrd 2750 _odmrd postfix" \
	"$(troot_exec stat -c '%a %U %G' /run/odmrd 2>&1)" "2750 _odmrd postfix"
expect_eq "(4) man odmrd, odmrd.conf(5) and odmrd-map(8) are found" \
	"$(troot_exec man -w odmrd odmrd.conf odmrd-map 2>&1 | tr '\n' ' ')" \
	"/usr/share/man/man8/odmrd.8.gz /usr/share/man/man5/odmrd.conf.5.gz /usr/share/man/man8/odmrd-map.8.gz "
PLAIN_FILES=$(troot_exec dpkg -L odmrd)
out=$(troot_exec dpkg -i "$DEB" 2>&1)
expect_eq "(4) dpkg -i again (reinstall): exit 0" "$?" "0"
out=$(troot_exec dpkg --purge odmrd 2>&1)
expect_eq "(4) dpkg --purge: exit 0, no complaint" "$?:$(grep -iE 'error|warning|fail|not empty' <<<"$out")" "0:"
left=$(while read -r f; do troot_exec test -e "$f" -a ! -d "$f" && echo "$f"; done <<<"$PLAIN_FILES")
expect_eq "(4) every file of the package is gone" "$left" ""
expect_eq "(4) /etc/odmrd, /etc/xinetd.d/odmrd and /run/odmrd are gone" \
	"$(troot_exec ls -d /etc/odmrd /etc/xinetd.d/odmrd /run/odmrd 2>/dev/null)" ""
# What the install and purge changed in the root, beyond dpkg's and adduser's own records.
AFTER=$(troot_changes)
changed=$(diff <(echo "$BEFORE") <(echo "$AFTER") | sed -n 's/^> //p' | grep -v '^d ' |
	grep -v -E ' /(var/lib/dpkg|var/log|var/cache/debconf|var/cache/man)/| /etc/(passwd|group|shadow|gshadow|subuid|subgid)-?$| /etc/\.pwd\.lock$')
expect_eq "(4) after the purge nothing of odmrd is left but the account" "$changed" ""
echo "# written by install + purge (dpkg's and adduser's records): $(diff <(echo "$BEFORE") <(echo "$AFTER") | sed -n 's/^> [^d] //p' | tr '\n' ' ')"
troot_stop

# --- (5) a booted Debian 12: xinetd and systemd as shipped ------------------------------------

if ! troot_start --boot; then
	fail "(5) a throwaway root boots with systemd" "$(tail -5 "$WORK/troot.log")"
	t_summary
fi
# A stock Debian has no policy-rc.d; the host's (if any) would stop the maintainer scripts'
# systemctl start/stop from acting.
troot_exec rm -f /usr/sbin/policy-rc.d
out=$(troot_exec apt-get install -y -q "$DEB" 2>&1)
expect_eq "(5) apt-get install ./odmrd_*.deb on a booted system: exit 0, installed" \
	"$?:$(troot_exec dpkg-query -W -f='${db:Status-Abbrev}' odmrd)" "0:ii "
listening() { troot_exec ss -Hltn 'sport = :366' | awk '{ print $4 }' | sort | tr '\n' ' '; }
expect_eq "(5) installed: odmrd.socket disabled and inactive, nothing on port 366" \
	"$(troot_exec systemctl is-enabled odmrd.socket 2>&1):$(troot_exec systemctl is-active odmrd.socket 2>&1):$(listening)" \
	"disabled:inactive:"
troot_exec systemctl start xinetd.service
expect_eq "(5) the stock xinetd runs, the entry as installed (disable = yes) listens nowhere" \
	"$(troot_exec systemctl is-active xinetd.service):$(listening)" "active:"

# The admin enables the entry: nothing else in it changes.
troot_exec sed -i -E 's/^([[:space:]]*disable[[:space:]]*=[[:space:]]*)yes/\1no/' /etc/xinetd.d/odmrd
troot_exec systemctl reload xinetd.service
wait_for 10 eval '[ -n "$(listening)" ]'
expect_eq "(5) disable = no, xinetd reloaded: port 366 served" "$(listening)" "*:366 "
in_root_odmrc() { troot_exec timeout 60 python3 "$LIB/odmrclient.py" --timeout 10 --port 366 "$@" 2>&1; }
expect_eq "(5) the shipped odmrd.conf: greeting and EHLO; no login (454) before the sasldb exists" \
	"$(in_root_odmrc ehlo cram=$A quit)" "220 250 454 221"

# The customers: a private sasldb root:_odmrd 0640 and the map, at the shipped config's paths.
troot_sh "set -e
printf '%s\n' 'hostname = provider.test' 'sasl_realm = provider.test' >>/etc/odmrd/odmrd.conf
install -o root -g _odmrd -m 0640 '$WORK/sasldb2' /etc/odmrd/sasldb2
printf '%s\n' 'alice a.example, b.example' 'bob c.example' >/etc/odmrd/customers
odmrd-map /etc/odmrd/customers" || fail "(5) /etc/odmrd set up"
TR=$WORK/xinetd.transcript
expect_eq "(5) a session through the stock xinetd: 220 250 235 450 221" \
	"$(in_root_odmrc --transcript /troot/xinetd.transcript ehlo cram=$A atrn=c.example quit eof)" "220 250 235 450 221 EOF"
uid=$(troot_exec id -u _odmrd)
# journal IDENT: "_UID=N MESSAGE=..." of IDENT's lines, one per line.
journal() {
	troot_exec journalctl -q --no-pager -o export SYSLOG_IDENTIFIER="$1" 2>/dev/null |
		awk '/^_UID=/ { u = $0 } /^MESSAGE=/ { print u " " $0 }'
}
wait_for 10 eval 'journal odmrd | grep -q "session peer=.*atrn=450"'
# Debian's xinetd listens on one dual-stack socket: an IPv4 client is ::ffff:127.0.0.1.
expect_match "(5) odmrd ran as _odmrd and logged to syslog (facility mail)" "$(journal odmrd | grep 'session peer=' | tail -1)" \
	"^_UID=$uid MESSAGE=session peer=(::ffff:)?127\.0\.0\.1 helo=client\.test user=alice@provider\.test .*atrn=450 code=221"
wait_for 10 eval 'journal xinetd | grep -q "EXIT: odmrd"'
expect_match "(5) xinetd logged START (pid, client) to syslog" "$(journal xinetd)" 'MESSAGE=START: odmrd pid=[0-9]+ from=(::ffff:)?127\.0\.0\.1'
expect_match "(5) xinetd logged EXIT (status, duration) to syslog" "$(journal xinetd)" 'MESSAGE=EXIT: odmrd status=0 pid=[0-9]+ duration=[0-9]+\(sec\)'
expect_eq "(5) xinetd's lines carry facility mail (2)" \
	"$(troot_exec journalctl -q --no-pager -o export SYSLOG_IDENTIFIER=xinetd | grep -a -c '^SYSLOG_FACILITY=2$' | awk '{ print ($1 > 0) }')" "1"

# systemd instead: the xinetd entry off again, the socket unit on.
troot_exec sed -i -E 's/^([[:space:]]*disable[[:space:]]*=[[:space:]]*)no/\1yes/' /etc/xinetd.d/odmrd
troot_exec systemctl reload xinetd.service
wait_for 10 eval '[ -z "$(listening)" ]'
troot_exec systemctl enable --now odmrd.socket >/dev/null 2>&1
expect_eq "(5) systemctl enable --now odmrd.socket: port 366 on IPv4 and IPv6" "$(listening)" "0.0.0.0:366 [::]:366 "
expect_eq "(5) a session through systemd: 220 250 235 450 221" \
	"$(in_root_odmrc ehlo cram=$A atrn=c.example quit eof)" "220 250 235 450 221 EOF"
wait_for 10 eval '[ "$(journal odmrd | grep -c "session peer=")" -ge 3 ]'
expect_match "(5) ... as _odmrd, peer 127.0.0.1" "$(journal odmrd | grep 'session peer=' | tail -1)" \
	"^_UID=$uid MESSAGE=session peer=127\.0\.0\.1 .*atrn=450 code=221"

out=$(troot_exec dpkg -i "$DEB" 2>&1)
expect_eq "(5) an upgrade (dpkg -i again) keeps the enabled socket enabled and listening" \
	"$?:$(troot_exec systemctl is-enabled odmrd.socket):$(listening)" "0:enabled:0.0.0.0:366 [::]:366 "
out=$(troot_exec dpkg --purge odmrd 2>&1)
expect_eq "(5) dpkg --purge on a booted system: exit 0" "$?" "0"
expect_eq "(5) purged: the socket stopped and not enabled any more, nothing on 366, no /run/odmrd" \
	"$(troot_exec systemctl is-active odmrd.socket 2>&1):$(listening):$(troot_exec ls -d /etc/systemd/system/sockets.target.wants/odmrd.socket /run/odmrd /lib/systemd/system/odmrd.socket 2>/dev/null)" \
	"inactive::"
troot_stop

t_summary
