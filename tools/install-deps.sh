#!/bin/bash
# tools/install-deps.sh - install the Debian 12 packages odmrd needs to build and to run its tests.
#
# Why: CI starts from a fresh Debian image, and a developer's machine may lack a few packages.
# Checks each package with dpkg-query and, only if something is missing, runs `apt-get update`
# once and `apt-get install -y --no-install-recommends` non-interactively (root needed then).
# Postfix is preseeded to "No configuration" and its service is not started by the install
# (a temporary policy-rc.d refusing service starts is used when none is present); the tests run
# private instances and never start the system one. Sendmail conflicts with Postfix, so only the
# libraries a `dpkg -x` copy of it needs (tests/lib/sendmail.sh) are installed.
# Idempotent and quiet: prints nothing when everything is present; apt's output is shown only on
# failure. Exits non-zero on failure.
set -euo pipefail

build=(gcc make pkg-config clang libclang-rt-14-dev libsasl2-dev libsasl2-modules libsasl2-modules-db sasl2-bin
	libgdbm-dev libwrap0-dev libjansson-dev check)
tests=(python3 fetchmail valgrind xinetd postfix m4 procps iproute2)
sendmail_runtime=(libdb5.3 libldap-2.5-0 liblockfile1 libnsl2 libwrap0)
# `tools/install-deps.sh bench` (make bench) adds what only the benchmarks use.
bench=()
[ "${1:-}" = bench ] && bench=(gnuplot-nox libssl-dev)

missing=()
for p in "${build[@]}" "${tests[@]}" "${sendmail_runtime[@]}" "${bench[@]}"; do
	if [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)" != installed ]; then
		missing+=("$p")
	fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps.sh: missing packages (run as root to install): ${missing[*]}" >&2
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
if ! apt-get install -y -qq --no-install-recommends -o Dpkg::Use-Pty=0 "${missing[@]}" \
	>"$log" 2>&1 </dev/null; then
	cat "$log" >&2
	echo "install-deps.sh: apt-get install failed for: ${missing[*]}" >&2
	exit 1
fi

still=()
for p in "${missing[@]}"; do
	[ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)" = installed ] || still+=("$p")
done
if [ ${#still[@]} -ne 0 ]; then
	cat "$log" >&2
	echo "install-deps.sh: still missing after install: ${still[*]}" >&2
	exit 1
fi
echo "install-deps.sh: installed ${missing[*]}"
