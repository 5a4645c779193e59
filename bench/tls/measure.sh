#!/bin/bash
# bench/tls/measure.sh - the TLS library choice for odmrd, measured (issue 10 "Library and structure").
#
# In the inetd shape every session is a fresh process, so a TLS library's start-up cost is paid per
# connection. For each Debian 12 candidate (OpenSSL 3.0, GnuTLS 3.7, wolfSSL 5.5) one small server
# program (srv_*.c) is exec'd per connection by tlsdrive, exactly as inetd would: library init,
# server context, certificate + key (ECDSA P-256, Ed25519 and RSA 2048), then either exit ("init", the
# figure the issue quotes) or a REAL handshake (TLS 1.3 and 1.2, same OpenSSL client) and one
# record. Figures: server CPU per process (wait4 rusage; mean and median over N), above an empty C
# program, and callgrind instruction counts of one process (the robust figure on a noisy machine).
#
#   bench/tls/measure.sh [OUT.md]     (default bench/results/tls-libs.md)
#   TLS_N=200                         processes per CPU figure
set -eu
cd "$(dirname "$0")"
OUT=${1:-../results/tls-libs.md}
N=${TLS_N:-200}
W=$(mktemp -d /tmp/odmrd-tlsbench.XXXXXX)
trap 'rm -rf "$W"' EXIT
make -s
openssl ecparam -name prime256v1 -genkey -noout -out "$W/ec.key" 2>/dev/null
openssl req -new -x509 -key "$W/ec.key" -out "$W/ec.crt" -days 30 -subj /CN=bench.test 2>/dev/null
openssl genpkey -algorithm ed25519 -out "$W/ed.key"
openssl req -new -x509 -key "$W/ed.key" -out "$W/ed.crt" -days 30 -subj /CN=bench.test 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout "$W/rsa.key" -x509 -out "$W/rsa.crt" -days 30 \
	-subj /CN=bench.test 2>/dev/null

# cpu LIB MODE VER KEYTYPE -> "mean median" ms
cpu() {
	local line
	line=$(./tlsdrive "$N" "$2" "$3" "$PWD/srv_$1" "$2" "$W/$4.crt" "$W/$4.key") || {
		echo "tlsdrive failed for $*: $line" >&2
		exit 1
	}
	echo "$line" | sed -E 's/.*cpu_ms_mean=([0-9.]+) cpu_ms_median=([0-9.]+).*/\1 \2/'
}
# ir LIB MODE VER KEYTYPE -> instructions of one server process (callgrind, dynamic linking included)
ir() {
	rm -f "$W/cg.out"
	./tlsdrive 1 "$2" "$3" "$(command -v valgrind)" --tool=callgrind --callgrind-out-file="$W/cg.out" \
		"$PWD/srv_$1" "$2" "$W/$4.crt" "$W/$4.key" >/dev/null 2>&1 || { echo "?"; return; }
	sed -n 's/^summary: //p' "$W/cg.out"
}

read -r base_mean base_med < <(cpu empty init 1.3 ec)
base_ir=$(ir empty init 1.3 ec)
{
	echo "# TLS library start-up and handshake cost per process (bench/tls/measure.sh)"
	echo
	echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg);" \
		"N=$N processes per CPU figure; versions: $(dpkg-query -W -f='${Package} ${Version} ' libssl3 libgnutls30 libwolfssl35)"
	echo
	echo "Empty C program (fork + exec + libc): CPU mean $base_mean ms (median $base_med), $base_ir instructions."
	echo "Rows below are ABOVE that baseline. \"init\" = library init + server context + certificate and key;"
	echo "\"hs\" = init + a real handshake with an OpenSSL client + one record + close_notify; no tickets."
	echo
	echo "| library | key | mode | TLS | CPU ms mean | CPU ms median | instructions (callgrind, M) |"
	echo "|---|---|---|---|---|---|---|"
	for lib in openssl gnutls wolfssl; do
		for key in ec ed rsa; do
			for mv in "init 1.3" "hs 1.3" "hs 1.2"; do
				set -- $mv
				read -r m med < <(cpu "$lib" "$1" "$2" "$key")
				i=$(ir "$lib" "$1" "$2" "$key")
				awk -v l="$lib" -v k="$key" -v mo="$1" -v v="$([ "$1" = init ] && echo - || echo "$2")" \
					-v m="$m" -v bm="$base_mean" -v d="$med" -v bd="$base_med" -v i="$i" -v bi="$base_ir" \
					'BEGIN { printf "| %s | %s | %s | %s | %.2f | %.2f | %s |\n", l, k, mo, v, m - bm, d - bd,
						 i == "?" ? "?" : sprintf("%.2f", (i - bi) / 1e6) }'
			done
		done
	done
} | tee "$OUT"
