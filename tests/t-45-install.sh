#!/bin/bash
# tests/t-45-install.sh - "make install" and "make uninstall" into a scratch DESTDIR.
#
# Why: an admin without the Debian package installs with "make install" and must get everything
# the README refers to (binaries, man pages, the example configuration as /etc/odmrd/odmrd.conf,
# the service files naming the installed program, the MTA snippets), and "make uninstall" must
# remove exactly that - never an odmrd.conf the admin has edited. Checks the exact file list and
# modes, the program path in every service file for PREFIX=/usr/local and PREFIX=/usr, that a
# second install keeps an edited odmrd.conf, and that uninstall leaves no file behind.
# Needs no root. Prints "N passed, N failed".

. "$(dirname "$0")/lib/common.sh"

# installed DIR: "mode path" of every file and symlink under DIR, sorted.
installed() { (cd "$1" && find . ! -type d -printf '%m %P\n' | sort -k2); }
# mk ARGS...: make install/uninstall from the tree, quietly; the output goes to $WORK/make.log.
mk() { make -s -C "$TOP" "$@" >>"$WORK/make.log" 2>&1; }

EXAMPLES=$(cd "$TOP" && for f in etc/odmrd.conf.example xinetd.d/odmrd inetd/inetd.conf.odmrd xinetd.d/odmrs inetd/inetd.conf.odmrs mta/postfix/* mta/sendmail/*; do
	echo "644 usr/local/share/doc/odmrd/examples/$f"
done)

# --- PREFIX=/usr/local (the default) -----------------------------------------------------------

D=$WORK/dest
check "make install DESTDIR=... (default PREFIX=/usr/local)" mk install DESTDIR="$D"
expect_eq "the files make install puts there, and their modes" "$(installed "$D")" "$(sort -k2 <<EOF
644 etc/odmrd/odmrd.conf
644 usr/local/lib/systemd/system/odmrd.socket
644 usr/local/lib/systemd/system/odmrd@.service
644 usr/local/lib/systemd/system/odmrs.socket
644 usr/local/lib/systemd/system/odmrs@.service
644 usr/local/lib/odmrd/odmrd-tls.so
644 usr/local/lib/tmpfiles.d/odmrd.conf
755 usr/local/sbin/odmrd
755 usr/local/sbin/odmrd-map
644 usr/local/share/doc/odmrd/LICENSE
644 usr/local/share/doc/odmrd/README.md
$EXAMPLES
644 usr/local/share/man/man5/odmrd.conf.5
644 usr/local/share/man/man8/odmrd-map.8
644 usr/local/share/man/man8/odmrd.8
EOF
)"
expect_eq "the installed odmrd.conf is the example" "$(cmp "$D/etc/odmrd/odmrd.conf" "$TOP/etc/odmrd.conf.example" 2>&1)" ""
expect_eq "the service files name the installed program (/usr/local/sbin/odmrd)" \
	"$(grep -h -E '^ExecStart=' "$D/usr/local/lib/systemd/system/odmrd@.service")
$(grep -h -E '^[[:space:]]*server[[:space:]]*=' "$D/usr/local/share/doc/odmrd/examples/xinetd.d/odmrd" | tr -s ' \t' ' ')
$(grep -v -E '^(#|$)' "$D/usr/local/share/doc/odmrd/examples/inetd/inetd.conf.odmrd" | awk '{ print $6 }')" \
	"ExecStart=/usr/local/sbin/odmrd -f /etc/odmrd/odmrd.conf
 server = /usr/local/sbin/odmrd
/usr/local/sbin/odmrd"
expect_eq "the TLS wrapper-port service files too" \
	"$(grep -h -E '^ExecStart=' "$D/usr/local/lib/systemd/system/odmrs@.service")
$(grep -h -E '^[[:space:]]*server[[:space:]]*=' "$D/usr/local/share/doc/odmrd/examples/xinetd.d/odmrs" | tr -s ' \t' ' ')
$(grep -v -E '^(#|$)' "$D/usr/local/share/doc/odmrd/examples/inetd/inetd.conf.odmrs" | awk '{ print $6 }')" \
	"ExecStart=/usr/local/sbin/odmrd -f /etc/odmrd/odmrd.conf -o tls_wrappermode=yes
 server = /usr/local/sbin/odmrd
/usr/local/sbin/odmrd"
expect_eq "the TLS module is where odmrd looks for it (the compiled-in default of tls_module)" \
	"$(strings "$D/usr/local/sbin/odmrd" | grep -x '/usr/local/lib/odmrd/odmrd-tls.so')" "/usr/local/lib/odmrd/odmrd-tls.so"
expect_eq "no installed service file or example names /usr/sbin/odmrd any more" \
	"$(grep -rl '/usr/sbin/odmrd' "$D/etc" "$D/usr/local/lib" "$D/usr/local/share/doc/odmrd/examples")" ""
expect_eq "the installed binaries are the built ones" \
	"$(cmp "$D/usr/local/sbin/odmrd" "$TOP/odmrd" 2>&1)$(cmp "$D/usr/local/sbin/odmrd-map" "$TOP/odmrd-map" 2>&1)$(cmp "$D/usr/local/lib/odmrd/odmrd-tls.so" "$TOP/odmrd-tls.so" 2>&1)" ""

# The admin edits odmrd.conf; a second install keeps it, uninstall leaves it.
echo "hostname = edited.test" >>"$D/etc/odmrd/odmrd.conf"
edited=$(cat "$D/etc/odmrd/odmrd.conf")
check "make install again" mk install DESTDIR="$D"
expect_eq "a second install keeps the edited odmrd.conf" "$(cat "$D/etc/odmrd/odmrd.conf")" "$edited"
check "make uninstall" mk uninstall DESTDIR="$D"
expect_eq "uninstall removes every file but the edited odmrd.conf" "$(installed "$D")" "644 etc/odmrd/odmrd.conf"
rm -f "$D/etc/odmrd/odmrd.conf"

# Unedited: everything goes, with the directories that were odmrd's own.
check "make install (fresh)" mk install DESTDIR="$D"
check "make uninstall (fresh)" mk uninstall DESTDIR="$D"
expect_eq "uninstall after install leaves no file" "$(installed "$D")" ""
expect_eq "... and no directory of odmrd's own (doc, examples, /etc/odmrd)" \
	"$(cd "$D" && find . -type d \( -name odmrd -o -name examples \) | sort)" ""
check "make uninstall when nothing is installed" mk uninstall DESTDIR="$D"

# --- PREFIX=/usr, Debian's unit directory ---------------------------------------------------------

D2=$WORK/dest-usr
check "make install PREFIX=/usr SYSTEMDUNITDIR=/lib/systemd/system" \
	mk install DESTDIR="$D2" PREFIX=/usr SYSTEMDUNITDIR=/lib/systemd/system TMPFILESDIR=/usr/lib/tmpfiles.d
expect_eq "PREFIX=/usr: the units as shipped, in /lib/systemd/system" \
	"$(cmp "$D2/lib/systemd/system/odmrd.socket" "$TOP/systemd/odmrd.socket" 2>&1)$(cmp "$D2/lib/systemd/system/odmrd@.service" "$TOP/systemd/odmrd@.service" 2>&1)$(cmp "$D2/usr/lib/tmpfiles.d/odmrd.conf" "$TOP/systemd/odmrd.tmpfiles" 2>&1)" ""
check "make uninstall PREFIX=/usr ..." \
	mk uninstall DESTDIR="$D2" PREFIX=/usr SYSTEMDUNITDIR=/lib/systemd/system TMPFILESDIR=/usr/lib/tmpfiles.d
expect_eq "PREFIX=/usr: uninstall leaves no file" "$(installed "$D2")" ""

t_summary
