#!/bin/bash
# tools/install-deps.sh - install the Debian 12 packages odmrd needs to build and to run its tests.
#
# Why: CI starts from a fresh Debian image, and a developer's machine may lack a few packages.
# Checks each package with dpkg-query and, only if something is missing, runs `apt-get update`
# once and `apt-get install -y --no-install-recommends` non-interactively (root needed then).
# Postfix is preseeded to "No configuration" and its service is not started by the install
# (a temporary policy-rc.d refusing service starts is used when none is present); the tests run
# private instances and never start the system one. Sendmail conflicts with Postfix, so only the
# libraries a `dpkg -x` copy of it needs (tests/lib/sendmail.sh) are installed. The same holds
# for openbsd-inetd: xinetd conflicts with it ("Conflicts: inet-superserver"; installing it would
# remove xinetd), so its .deb is fetched with `apt-get download` and unpacked with `dpkg -x` into
# /var/cache/odmrd-test/openbsd-inetd (no maintainer script runs, no service starts); its
# libraries are installed. The package tests (make check-package) build and lint a .deb
# (debhelper, lintian, dpkg-dev).
# Idempotent and quiet: prints nothing when everything is present; apt's output is shown only on
# failure. Exits non-zero on failure.
set -euo pipefail

build=(gcc make pkg-config clang libclang-rt-14-dev libsasl2-dev libsasl2-modules libsasl2-modules-db sasl2-bin
	libgdbm-dev libwrap0-dev libjansson-dev check libwolfssl-dev)
tests=(python3 fetchmail valgrind xinetd postfix m4 procps iproute2 systemd util-linux
	debhelper dpkg-dev lintian man-db libsasl2-modules-sql sqlite3 openssl libssl-dev swaks testssl.sh)
sendmail_runtime=(libdb5.3 libldap-2.5-0 liblockfile1 libnsl2 libwrap0)
inetd_runtime=(libbsd0 libevent-2.1-7 libsystemd0 libtirpc3 libwrap0)
# Unpacked, never installed (see above): package -> directory under /var/cache/odmrd-test.
UNPACK_DIR=/var/cache/odmrd-test
unpack=(openbsd-inetd)
# `tools/install-deps.sh bench` (make bench) adds what only the benchmarks use.
bench=()
[ "${1:-}" = bench ] && bench=(gnuplot-nox libssl-dev libgnutls28-dev strace)

missing=()
for p in "${build[@]}" "${tests[@]}" "${sendmail_runtime[@]}" "${inetd_runtime[@]}" "${bench[@]}"; do
	if [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)" != installed ]; then
		missing+=("$p")
	fi
done
unpack_missing=()
for p in "${unpack[@]}"; do
	[ -e "$UNPACK_DIR/$p/.odmrd-unpacked" ] || unpack_missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && [ ${#unpack_missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps.sh: missing (run as root to install): ${missing[*]} ${unpack_missing[*]}" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
log=$(mktemp /tmp/install-deps.XXXXXX)
policy=/usr/sbin/policy-rc.d
made_policy=0
cleanup() {
	[ "$made_policy" = 1 ] && rm -f "$policy"
	rm -f "$log"
}
trap cleanup EXIT

# Never start services (the system Postfix in particular) from package scripts during this install.
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\n# temporary, from odmrd tools/install-deps.sh\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	made_policy=1
fi

echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections

if ! apt-get update -qq >"$log" 2>&1; then
	cat "$log" >&2
	echo "install-deps.sh: apt-get update failed" >&2
	exit 1
fi
if [ ${#missing[@]} -gt 0 ] &&
	! apt-get install -y -qq --no-install-recommends -o Dpkg::Use-Pty=0 "${missing[@]}" \
		>"$log" 2>&1 </dev/null; then
	cat "$log" >&2
	echo "install-deps.sh: apt-get install failed for: ${missing[*]}" >&2
	exit 1
fi

# unpack_deb PACKAGE: download PACKAGE's .deb and unpack it under $UNPACK_DIR/PACKAGE, replacing
# an older tree only once the new one is complete.
unpack_deb() {
	local p=$1 dl tmp
	dl=$(mktemp -d) && chmod 0755 "$dl" || return 1 # 0755: apt's _apt user writes the download
	if ! (cd "$dl" && apt-get download -q "$p" >"$log" 2>&1); then
		rm -rf "$dl"
		return 1
	fi
	mkdir -p "$UNPACK_DIR" && tmp=$(mktemp -d "$UNPACK_DIR/$p.new.XXXXXX") || { rm -rf "$dl"; return 1; }
	if ! dpkg -x "$dl/${p}"_*.deb "$tmp"; then
		rm -rf "$dl" "$tmp"
		return 1
	fi
	chmod 0755 "$tmp"
	touch "$tmp/.odmrd-unpacked"
	rm -rf "${UNPACK_DIR:?}/$p" "$dl"
	mv "$tmp" "$UNPACK_DIR/$p"
}
for p in "${unpack_missing[@]}"; do
	if ! unpack_deb "$p"; then
		cat "$log" >&2
		echo "install-deps.sh: could not download and unpack $p" >&2
		exit 1
	fi
done

still=()
for p in "${missing[@]}"; do
	[ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)" = installed ] || still+=("$p")
done
if [ ${#still[@]} -ne 0 ]; then
	cat "$log" >&2
	echo "install-deps.sh: still missing after install: ${still[*]}" >&2
	exit 1
fi
[ ${#missing[@]} -eq 0 ] || echo "install-deps.sh: installed ${missing[*]}"
[ ${#unpack_missing[@]} -eq 0 ] || echo "install-deps.sh: unpacked ${unpack_missing[*]} in $UNPACK_DIR"
