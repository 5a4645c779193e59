#!/bin/bash
# bench/bindnow.sh - what "-Wl,-z,now" (bindnow, dpkg-buildflags' hardening=+bindnow) costs odmrd
# per session, in callgrind instructions (Ir).
#
# Why: odmrd is exec'd once per connection, so any start-up work is paid per session; bindnow
# makes ld.so resolve every symbol of the program and of the libraries loaded at start before
# main() instead of on first call. The Debian package decides whether to build with it
# (debian/rules) from these figures. Instruction counts, not CPU time: the machine is shared,
# callgrind's counts do not depend on the load.
#
# Builds odmrd twice in a scratch copy of the tree with dpkg-buildflags' flags, once with
# DEB_BUILD_MAINT_OPTIONS=hardening=+all,-bindnow and once with hardening=+all (they differ only
# in -Wl,-z,now), runs one complete session under callgrind for each (bench/hsclient -x:
# greeting, EHLO, AUTH CRAM-MD5 against a private sasldb, ATRN refused with 450, QUIT) with
# libsasl2's plugin directory and with a private one holding only crammd5 + sasldb, and prints
# one line per run: variant, plugin dir, total Ir, Ir spent in ld.so (ld-linux*).
# Needs valgrind, libssl-dev (hsclient's CRAM-MD5), dpkg-dev, sasl2-bin. Usage: bench/bindnow.sh
set -eu
TOP=$(cd "$(dirname "$0")/.." && pwd)
W=$(mktemp -d /tmp/odmrd-bindnow.XXXXXX)
trap 'rm -rf "$W"' EXIT
SASLDIR=$(pkg-config --variable=libdir libsasl2 2>/dev/null || echo /usr/lib/x86_64-linux-gnu)/sasl2
[ -d "$SASLDIR" ] || SASLDIR=/usr/lib/x86_64-linux-gnu/sasl2

gcc -O2 -Wall -o "$W/hsclient" "$TOP/bench/hsclient.c" "$TOP/bench/bclient.c" -lcrypto -lpthread
for v in lazy now; do
	case $v in
	lazy) opts=hardening=+all,-bindnow ;;
	now) opts=hardening=+all ;;
	esac
	mkdir -p "$W/$v"
	tar -C "$TOP" -c --exclude=./.git --exclude=./build --exclude=./tests/work --exclude='*.o' \
		--exclude=./odmrd --exclude=./odmrd-map . | tar -x -C "$W/$v"
	(
		cd "$W/$v"
		eval "$(DEB_BUILD_MAINT_OPTIONS=$opts dpkg-buildflags --export=sh)"
		make -s odmrd >/dev/null
		echo "$v: LDFLAGS=$LDFLAGS"
		readelf -d odmrd | grep -E 'BIND_NOW|FLAGS' || true
	)
done

printf 'secret' | saslpasswd2 -f "$W/sasldb" -u provider.test -p -c alice
printf 'alice a.example\n' >"$W/map"
"$TOP/odmrd-map" "$W/map" 2>/dev/null || "$W/lazy/odmrd-map" "$W/map" 2>/dev/null ||
	(cd "$W/lazy" && make -s odmrd-map >/dev/null && ./odmrd-map "$W/map")
mkdir -p "$W/run" "$W/plug"
chmod 750 "$W/run"
ln -s "$SASLDIR"/libcrammd5.so* "$SASLDIR"/libsasldb.so* "$W/plug/"
for p in system private; do
	{
		echo "hostname = provider.test"
		echo "customer_map = $W/map.db"
		echo "sasl_realm = provider.test"
		echo "sasl_pwcheck_method = auxprop"
		echo "sasl_auxprop_plugin = sasldb"
		echo "sasl_sasldb_path = $W/sasldb"
		echo "log_file = $W/odmrd.log"
		echo "run_dir = $W/run"
		echo "postqueue = /bin/false"
		[ $p = private ] && echo "sasl_plugin_dir = $W/plug"
	} >"$W/$p.conf"
done

printf '%-5s %-8s %12s %12s\n' variant plugins Ir Ir_ld.so
for p in system private; do
	for v in lazy now; do
		out=$W/cg.$v.$p
		"$W/hsclient" -x -- valgrind --tool=callgrind --callgrind-out-file="$out" \
			"$W/$v/odmrd" -f "$W/$p.conf" >"$W/hs.txt" 2>&1 ||
			{ cat "$W/hs.txt" >&2; echo "bindnow.sh: the session failed" >&2; exit 1; }
		total=$(grep -m1 '^summary:' "$out" | awk '{print $2}')
		ld=$(callgrind_annotate --threshold=100 "$out" 2>/dev/null |
			awk '/^ *[0-9,]+ .*\[.*\/ld-linux[^]]*\]/ { ir = $1; gsub(",", "", ir); s += ir }
			     END { print s + 0 }')
		printf '%-5s %-8s %12s %12s\n' "$v" "$p" "$total" "$ld"
	done
done
