#!/bin/bash
# bench/run.sh - odmrd performance benchmark (make bench; not part of make check).
#
# Writes bench/results/: machine.txt, raw CSVs per measurement, callgrind outputs, PNG plots and
# REPORT.md (made by bench/report.py + gnuplot). Work files go to bench/work/ (deleted at start).
# Needs root (xinetd "user = root", private Postfix instances), loopback only, nothing in /etc.
#
#   BENCH_QUICK=1   smoke run (~3 min): 2 repetitions, fewer handshakes, small queues, maps up to 10k
#   BENCH_REPS=N    repetitions per figure (default 5; medians with min and max are reported)
#   BENCH_ONLY="hs cpu cg mem map tp tls"   run only these parts (report uses what exists)
#   BENCH_TP_SMALL=N, BENCH_TP_BIG=N, BENCH_TP_PATHS="customer direct1", BENCH_TP_SIZES="small big",
#   BENCH_TP_MTAS="postfix sendmail"  throughput: queue sizes, paths, sizes, MTAs (A/B runs); with
#                  BENCH_BASELINE the path customer-base (the baseline odmrd, C customer) is added
#                  after customer, so before and after alternate in one window
#   BENCH_FM_WRAP="strace -tt -o F"  prefix for fetchmail in the throughput runs (diagnosis)
#   BENCH_TP_WRAP="strace -c -o DIR/odmrd.%p"  prefix for odmrd in the throughput runs (%p: its pid)
#   BENCH_TP_PERF=1  perf record -a over each throughput run's timed window (needs perf: linux-perf), CPU per process name
#                  into RESULTS/diag/tp_perf.csv (diagnosis: which process spends what)
#   BENCH_RESULTS=DIR  write results there instead of bench/results (a partial run into
#                  bench/results replaces the CSVs of the parts it runs, keeps the others)
#   BENCH_BASELINE=COMMIT  also build odmrd as of COMMIT (git archive) and measure it beside the
#                  tree in parts hs, cpu and cg: before/after in one run
#
# What is measured (details in REPORT.md):
#   hs   handshake latency, connect -> ATRN reply (450: domain not the customer's), odmrd under a
#        real xinetd, vs Postfix smtpd + Cyrus SASL (same sasldb), connect -> 235; plus
#        concurrency 1/8/32 sessions/s; odmrd variants (private plugin dir, patched builds)
#   cpu  server CPU per session from /proc accounting (xinetd: cutime+cstime of reaped children,
#        and their minor page faults; Postfix: all instance processes + master's cutime/cstime),
#        taken during the sequential hs runs; ratios to the floor and to Postfix per repetition.
#        Beside odmrd: the floor (bench/floor.c) and saslfloor (bench/saslfloor.c: the floor plus
#        odmrd's own auth.c, i.e. the least a per-connection program using libsasl2 costs),
#        odmrd with privilege separation (user = nobody); bench/unitcost.c: what a CPUID, a page
#        fault, a mapping, an open cost here, and how many CPUIDs a process start-up executes
#   cg   callgrind Ir of one session (socketpair client) of odmrd, the floor and saslfloor: top
#        functions, phases; system calls per session (strace -c)
#   mem  smaps_rollup of one session after AUTH, 200 concurrent sessions, and during the relay
#   map  ATRN latency vs customer-map size (10, 10k, 1M), map build time
#   tp   reversed-state throughput: held Postfix queue -> odmrd -> fetchmail -> sink vs direct
#   tls  CPU per session with STARTTLS + AUTH CRAM-MD5 + ATRN under xinetd (full handshake and
#        resumed), vs Postfix smtpd doing STARTTLS + AUTH with the same key and client, for an
#        ECDSA P-256 and an Ed25519 certificate; callgrind Ir of a plaintext, a full-TLS (both key
#        types) and a resumed session; the TLS library candidates
#        (bench/tls/measure.sh) and a 5 MB message relayed plain / TLS per line (bench/tls/relay5m)
set -u
export LC_ALL=C

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
B=$TOP/bench
R=${BENCH_RESULTS:-$B/results}
W=$B/work
QUICK=${BENCH_QUICK:-0}
REPS=${BENCH_REPS:-5}   # QUICK: 2, see below
ONLY=${BENCH_ONLY:-"hs cpu cg mem map tp tls"}
SASLDIR=/usr/lib/x86_64-linux-gnu/sasl2

if [ "$QUICK" = 1 ]; then
	# Smoke run: fewer repetitions (2 unless BENCH_REPS), small sizes, no sink/patch side runs.
	REPS=${BENCH_REPS:-2}
	N_HS=150 N_HS_PF=600 N_CONC=40 N_CONC_PF=200 N_MAP=40
	MAPS="10 10000" TP_SMALL=60 TP_BIG=2 MEM_CONC=50
else
	N_HS=400 N_HS_PF=1500 N_CONC=250 N_CONC_PF=1500 N_MAP=200
	# 30 x 5 MB: a 10-message run lasted 0.1-0.4 s, too short to measure one path against another.
	MAPS="10 10000 1000000" TP_SMALL=1000 TP_BIG=30 MEM_CONC=200
fi
TP_SMALL=${BENCH_TP_SMALL:-$TP_SMALL}
TP_BIG=${BENCH_TP_BIG:-$TP_BIG}

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }
want() { case " $ONLY " in *" $1 "*) return 0 ;; esac; return 1; }

[ "$(id -u)" = 0 ] || die "run as root (xinetd user = root, private Postfix instances)"
for t in xinetd postfix postconf saslpasswd2 fetchmail gnuplot valgrind callgrind_annotate strace python3 gcc; do
	command -v $t >/dev/null || die "missing $t"
done

# --- cleanup: only what this script started -------------------------------------------------
PIDS=()
PF_INSTANCES=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null
	done
	for p in "${PIDS[@]}"; do
		wait "$p" 2>/dev/null
	done
	for p in "${PF_INSTANCES[@]}"; do
		pf_attach "$p" 2>/dev/null && pf_stop >/dev/null 2>&1
	done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# shellcheck source=../tests/lib/postfix.sh
. "$TOP/tests/lib/postfix.sh"
export PF_TIMEOUT=180

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
now_s() { date +%s.%N; }
wait_file() { # wait_file PATH SECONDS
	local end=$((SECONDS + $2))
	while [ ! -e "$1" ]; do
		[ $SECONDS -ge $end ] && return 1
		sleep 0.02
	done
}

# --- set-up --------------------------------------------------------------------------------------
START=$SECONDS
# One run at a time (they share bench/work); stop instances a killed earlier run left behind.
exec 9>"$B/.run.lock"
flock -n 9 || die "another bench/run.sh is running"
for old in "$W/pfhs" "$W/pfrl"; do
	[ -f "$old/pf.env" ] && pf_attach "$old" && pf_stop >/dev/null 2>&1
done
rm -rf "$W"
mkdir -p "$W" "$R"
rm -f "$R/variants.txt"
chmod 755 "$W"
if want hs && want cpu && want cg && want mem && want map && want tp && want tls; then
	rm -f "$R"/*.csv "$R"/*.png "$R"/*.txt "$R"/callgrind.* "$R"/REPORT.md
fi
log "mode: $([ "$QUICK" = 1 ] && echo QUICK || echo FULL), reps=$REPS, parts: $ONLY"

if ! { want hs && want cpu && want cg && want mem && want map && want tp && want tls; } && [ -s "$R/machine.txt" ]; then
	MACHINE_OUT=$R/machine-rerun.txt   # a partial re-run keeps the full run's machine.txt
else
	MACHINE_OUT=$R/machine.txt
	rm -f "$R/machine-rerun.txt" "$R/runs.txt"
fi
echo "$(date -Is) $([ "$QUICK" = 1 ] && echo QUICK || echo FULL) reps=$REPS parts: $ONLY" >>"$R/runs.txt"
{
	echo "date: $(date -Is)"
	echo "parts: $ONLY"
	echo "mode: $([ "$QUICK" = 1 ] && echo "QUICK (BENCH_QUICK=1)" || echo FULL) reps=$REPS"
	echo "host: $(uname -srvm)"
	echo "os: $(. /etc/os-release; echo "$PRETTY_NAME")"
	echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') x $(nproc)"
	echo "mem: $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
	echo "virt: $(systemd-detect-virt 2>/dev/null || echo unknown)"
	echo "odmrd: git $(git -C "$TOP" rev-parse --short HEAD 2>/dev/null) $(git -C "$TOP" status --porcelain -- '*.c' '*.h' Makefile 2>/dev/null | grep -q . && echo '(C sources modified vs HEAD)')"
	echo "cc: $(gcc --version | head -1)"
	echo "postfix: $(postconf -d -h mail_version 2>/dev/null)"
	echo "cyrus-sasl: $(dpkg-query -W -f '${Version}' libsasl2-2 2>/dev/null)"
	echo "xinetd: $(dpkg-query -W -f '${Version}' xinetd 2>/dev/null)"
	echo "fetchmail: $(fetchmail --version 2>/dev/null | head -1)"
	echo "openssl: $(dpkg-query -W -f '${Version}' libssl3 2>/dev/null)"
	echo "valgrind: $(valgrind --version)"
	echo "gnuplot: $(gnuplot --version)"
	echo "loadavg at start: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "other busy processes at start (not started by the benchmark; they share the 2 cores):"
	top -b -n1 -o %CPU | sed -n '8,13p' | awk '$9 > 1.0 {print "   ", $1, $2, "nice=" $4, $9 "%CPU", $12}'
} >"$MACHINE_OUT"

# Build: the tree's sources as they are now (the baseline every figure is about), plus one
# prototype of a change the users have not asked for (bench/patches/forkserver.patch: odmrd
# listening itself and forking without exec), each in its own copy so nothing in the tree is touched.
build_variant() { # build_variant NAME [PATCH...]
	local name=$1 d=$W/build/$1 p
	shift
	mkdir -p "$d"
	cp "$TOP"/*.c "$TOP"/*.h "$TOP"/Makefile "$d"/
	for p in "$@"; do
		if ! (cd "$d" && patch -p1 -s -F3 <"$B/patches/$p") >"$d/patch.log" 2>&1; then
			log "variant $name: patch $p no longer applies to the tree; variant dropped"
			return 1
		fi
	done
	make -s -C "$d" odmrd odmrd-map odmrd-tls.so >"$d/build.log" 2>&1 || { log "build $name failed: $(tail -3 "$d/build.log")"; return 1; }
}
# BENCH_BASELINE: the same from a commit, for before/after in one run.
build_baseline() {
	local d=$W/build/baseline
	mkdir -p "$d"
	if ! git -C "$TOP" archive "$BENCH_BASELINE" | tar -x -C "$d" 2>"$d/build.log"; then
		log "BENCH_BASELINE=$BENCH_BASELINE: git archive failed; baseline dropped"
		return 1
	fi
	make -s -C "$d" odmrd odmrd-map >>"$d/build.log" 2>&1 || { log "baseline build failed: $(tail -3 "$d/build.log")"; return 1; }
}
log "building odmrd (the tree + the forkserver prototype${BENCH_BASELINE:+ + $BENCH_BASELINE}) and bench tools"
build_variant base &
build_variant forkserver forkserver.patch &
[ -n "${BENCH_BASELINE:-}" ] && build_baseline &
wait
[ -x "$W/build/base/odmrd" ] || die "baseline build failed: $(tail -5 "$W/build/base/build.log")"
BASELINE=
if [ -n "${BENCH_BASELINE:-}" ] && [ -x "$W/build/baseline/odmrd" ]; then
	BASELINE=baseline
	echo "baseline: odmrd as of $(git -C "$TOP" rev-parse --short "$BENCH_BASELINE") ($BENCH_BASELINE), built unchanged" >>"$R/variants.txt"
fi
FORKSERVER=forkserver
if [ -x "$W/build/forkserver/odmrd" ]; then
	echo "forkserver: the tree + bench/patches/forkserver.patch" >>"$R/variants.txt"
else
	FORKSERVER=
	echo "forkserver: DROPPED (patch did not apply or build failed)" >>"$R/variants.txt"
fi
ODMRD=$W/build/base/odmrd
ODMRD_MAP=$W/build/base/odmrd-map
gcc -O2 -Wall -o "$W/hsclient" "$B/hsclient.c" "$B/bclient.c" -lssl -lcrypto -lpthread || die "hsclient build failed (needs libssl-dev)"
gcc -O2 -Wall -o "$W/sink" "$B/sink.c" "$B/bclient.c" -lssl -lcrypto || die "sink build failed"
gcc -O2 -Wall -static -o "$W/floor" "$B/floor.c" || die "floor build failed (static libc: libc6-dev)"
gcc -O2 -Wall -o "$W/unitcost" "$B/unitcost.c" || die "unitcost build failed"
# saslfloor: the floor + odmrd's own auth.c/config.c/log.c/net.c objects, as built for odmrd above.
gcc -O2 -g -Wall -D_GNU_SOURCE $(pkg-config --cflags libsasl2) -I"$TOP" -o "$W/saslfloor" "$B/saslfloor.c" \
	"$W/build/base/auth.o" "$W/build/base/config.o" "$W/build/base/log.o" "$W/build/base/net.o" \
	$(pkg-config --libs libsasl2) ||
	die "saslfloor build failed"
gcc -O2 -Wall -I"$TOP" -o "$W/maplookup" "$B/maplookup.c" "$W/build/base/domains.o" "$W/build/base/dynlib.o" || die "maplookup build failed"
HS=$W/hsclient

# Shared credentials: one sasldb for odmrd and Postfix smtpd (smtpd runs as user postfix).
printf 'secret' | saslpasswd2 -f "$W/sasldb" -u provider.test -p -c alice || die saslpasswd2
chgrp postfix "$W/sasldb" && chmod 640 "$W/sasldb"
printf 'alice a.example\n' >"$W/map10.src"
awk 'BEGIN { print "alice a.example"; for (i = 1; i < 10; i++) printf "cust%07d d%07d.example\n", i, i }' >"$W/map10.src"

# Private SASL plugin directories.
mkdir -p "$W/plug-cram"
ln -s "$SASLDIR"/libcrammd5.so* "$SASLDIR"/libsasldb.so* "$W/plug-cram/"

# odmrd.conf writer: conf NAME [extra lines...]
conf() {
	local name=$1
	shift
	{
		echo "hostname = provider.test"
		echo "customer_map = $W/map10.src.db"
		echo "sasl_realm = provider.test"
		echo "sasl_pwcheck_method = auxprop"
		echo "sasl_auxprop_plugin = sasldb"
		echo "sasl_sasldb_path = $W/sasldb"
		echo "log_file = $W/odmrd-$name.log"
		echo "run_dir = $W/run-hs"
		echo "mta = postfix"
		echo "postqueue = /bin/false"
		echo "atrn_interval = 0"  # every handshake the same path (the default, 60 s, would refuse repeats 450 early)
		printf '%s\n' "$@"
	} >"$W/odmrd-$name.conf"
}
mkdir -p "$W/run-hs" && chmod 0700 "$W/run-hs"   # odmrd serves only from a run_dir closed to others

# --- map build (part map; the 10-customer map is needed by everything) ---------------------------
# map_build.csv belongs to part map: a partial run without it must not overwrite the table.
MAPCSV=$R/map_build.csv
want map || MAPCSV=$W/map_build.csv
echo "customers,build_s,db_bytes,lookup_us" >"$MAPCSV"
build_map() { # build_map N
	local n=$1 src=$W/map$1.src t0 t1
	awk -v n="$n" 'BEGIN { print "alice a.example"; for (i = 1; i < n; i++) printf "cust%07d d%07d.example\n", i, i }' >"$src"
	t0=$(now_s)
	"$ODMRD_MAP" -f /dev/null -g nogroup "$src" || die "odmrd-map $src failed"
	t1=$(now_s)
	local lu
	"$W/maplookup" "$src.db" alice 200 >/dev/null
	lu=$("$W/maplookup" "$src.db" alice 2000 | sed 's/lookup_us=//')
	echo "$n,$(echo "$t1 - $t0" | bc -l),$(stat -c %s "$src.db"),$lu" >>"$MAPCSV"
}
build_map 10
if want map; then
	for n in $MAPS; do
		[ "$n" = 10 ] && continue
		log "building customer map with $n customers"
		build_map "$n"
	done
fi

# odmrd configurations under test. privsep: `user` set, as a hardened install runs it (a root
# helper process plus the session dropped to the user; the user needs its own readable copies).
conf default
cp "$W/sasldb" "$W/sasldb-nobody" && cp "$W/map10.src.db" "$W/map10-nobody.db" && chmod 644 "$W/sasldb-nobody" "$W/map10-nobody.db"
conf privsep "user = nobody" "sasl_sasldb_path = $W/sasldb-nobody" "customer_map = $W/map10-nobody.db"
conf plug-cram "sasl_plugin_dir = $W/plug-cram" "sasl_mech_list = CRAM-MD5"
# TLS (part tls): a throwaway PKI made here (tests/lib/tls.sh), ECDSA P-256 chain, ticket keys;
# tls-ed: the same with an Ed25519 server certificate.
. "$TOP/tests/lib/tls.sh"
tls_mk_pki "$W/pki" >/dev/null || die "test PKI"
TLS_CONF=("tls_cert_file = $W/pki/srv-ec.crt" "tls_key_file = $W/pki/srv-ec.key"
	"tls_ticket_key_file = $W/pki/tickets.key" "tls_module = $W/build/base/odmrd-tls.so")
conf tls "${TLS_CONF[@]}"
conf tls-ed "${TLS_CONF[@]}" "tls_cert_file = $W/pki/srv-ed.crt" "tls_key_file = $W/pki/srv-ed.key"
conf tls-plug "${TLS_CONF[@]}" "sasl_plugin_dir = $W/plug-cram" "sasl_mech_list = CRAM-MD5"
conf scram "sasl_mech_list = SCRAM-SHA-256 CRAM-MD5"
for n in $MAPS; do
	conf "map$n" "customer_map = $W/map$n.src.db" "sasl_plugin_dir = $W/plug-cram" "sasl_mech_list = CRAM-MD5"
done

# --- xinetd with one service per configuration -----------------------------------------------------
declare -A PORT
XCONF=$W/xinetd.conf
{
	echo "defaults"
	echo "{"
	echo "	instances = UNLIMITED"
	echo "}"
} >"$XCONF"
xsvc() { # xsvc KEY BINARY CONFNAME [XINETD_CONF]: one service stanza, its port in PORT[KEY]
	local port
	port=$(free_port)
	PORT[$1]=$port
	cat >>"${4:-$XCONF}" <<-EOF
		service odmrd-$1
		{
			type = UNLISTED
			port = $port
			bind = 127.0.0.1
			socket_type = stream
			protocol = tcp
			wait = no
			user = root
			server = $2
			server_args = -f $W/odmrd-$3.conf
			instances = UNLIMITED
			per_source = UNLIMITED
			cps = 10000 1
			log_type = FILE $W/xinetd-svc.log
			log_on_success = PID HOST DURATION
			log_on_failure = HOST ATTEMPT
			libwrap = odmrd
			disable = no
		}
	EOF
}
xsvc default "$ODMRD" default
xsvc plug-cram "$ODMRD" plug-cram
xsvc scram "$ODMRD" scram
if want tls; then
	xsvc tls "$ODMRD" tls
	xsvc tls-ed "$ODMRD" tls-ed
	xsvc tls-plug "$ODMRD" tls-plug
fi
# The floor: the same xinetd service spawning a static canned-reply program (bench/floor.c), and
# the floor with odmrd's SASL code (bench/saslfloor.c, same config).
xsvc floor "$W/floor" default
xsvc saslfloor "$W/saslfloor" default
xsvc privsep "$ODMRD" privsep
[ -n "$BASELINE" ] && xsvc baseline "$W/build/baseline/odmrd" default
if want map; then
	for n in $MAPS; do
		xsvc "map$n" "$ODMRD" "map$n"
	done
fi

start_xinetd() {
	xinetd -dontfork -f "$XCONF" -pidfile "$W/xinetd.pid" -filelog "$W/xinetd.log" >"$W/xinetd.out" 2>&1 &
	XINETD=$!
	PIDS+=("$XINETD")
	local k
	for k in "${!PORT[@]}"; do
		local end=$((SECONDS + 10))
		until ss -ltnH "sport = :${PORT[$k]}" | grep -q LISTEN; do
			[ $SECONDS -ge $end ] && die "xinetd did not listen on ${PORT[$k]} ($k): $(cat "$W/xinetd.out")"
			sleep 0.05
		done
	done
}
start_xinetd
log "xinetd pid $XINETD with ${#PORT[@]} odmrd services"

# --- private Postfix with smtpd + Cyrus SASL on the same sasldb ----------------------------------
PF_SMTPD_PORT=$(free_port)
mkdir -p "$W/sasl-pf"
cat >"$W/sasl-pf/smtpd.conf" <<EOF
pwcheck_method: auxprop
auxprop_plugin: sasldb
sasldb_path: $W/sasldb
mech_list: CRAM-MD5
EOF
chmod 755 "$W/sasl-pf"
PF_DOMAINS="a.example" pf_setup "$W/pfhs" "$W/pfhs-run" a.example || die "pf_setup pfhs"
PF_INSTANCES+=("$W/pfhs")
printf '127.0.0.1:%s inet n - n - - smtpd\n' "$PF_SMTPD_PORT" >>"$PF_CONF/master.cf"
# The same smtpd with STARTTLS, the same ECDSA chain as odmrd's, and tlsmgr for its ticket keys.
PF_TLS_PORT=$(free_port)
printf '127.0.0.1:%s inet n - n - - smtpd -o smtpd_tls_security_level=may -o smtpd_tls_chain_files=%s,%s\n' \
	"$PF_TLS_PORT" "$W/pki/srv-ec.key" "$W/pki/srv-ec.crt" >>"$PF_CONF/master.cf"
# ... and with the same Ed25519 certificate as odmrd's tls-ed (smtpd_tls_chain_files takes any key type).
PF_TLS_ED_PORT=$(free_port)
printf '127.0.0.1:%s inet n - n - - smtpd -o smtpd_tls_security_level=may -o smtpd_tls_chain_files=%s,%s\n' \
	"$PF_TLS_ED_PORT" "$W/pki/srv-ed.key" "$W/pki/srv-ed.crt" >>"$PF_CONF/master.cf"
printf 'tlsmgr unix - - n 1000? 1 tlsmgr\n' >>"$PF_CONF/master.cf"
# Debian's smtpd looks for $config_directory/sasl/smtpd.conf (seen with strace), so put it there too.
mkdir -p "$PF_CONF/sasl" && cp "$W/sasl-pf/smtpd.conf" "$PF_CONF/sasl/smtpd.conf"
postconf -c "$PF_CONF" -e \
	"smtpd_sasl_auth_enable = yes" "smtpd_sasl_type = cyrus" "smtpd_sasl_path = smtpd" \
	"cyrus_sasl_config_path = $PF_CONF/sasl" "smtpd_sasl_local_domain = provider.test" \
	"smtpd_sasl_security_options = noanonymous" "smtpd_tls_security_level = none" \
	"default_process_limit = 300" "smtpd_client_connection_count_limit = 0" \
	"smtpd_client_connection_rate_limit = 0" "smtpd_banner = provider.test ESMTP" || die postconf
pf_start || die "pfhs start"
PFHS_CONF=$PF_CONF
PFHS_WORK=$W/pfhs
until ss -ltnH "sport = :$PF_SMTPD_PORT" | grep -q LISTEN; do sleep 0.05; done
log "Postfix smtpd (Cyrus SASL, sasldb) on port $PF_SMTPD_PORT"

# Sanity: one handshake each.
"$HS" -p "${PORT[default]}" -m odmr -n 1 >/dev/null || die "odmrd handshake failed: $(tail -3 "$W/odmrd-default.log")"
"$HS" -p "$PF_SMTPD_PORT" -m smtp -n 1 >/dev/null || die "Postfix AUTH failed: $(tail -5 "$W/pfhs/maillog")"
if want tls; then
	"$HS" -p "$PF_TLS_PORT" -m smtp -T -n 1 >/dev/null || die "Postfix STARTTLS + AUTH failed: $(tail -5 "$W/pfhs/maillog")"
	"$HS" -p "$PF_TLS_ED_PORT" -m smtp -T -n 1 >/dev/null ||
		die "Postfix STARTTLS + AUTH with Ed25519 failed: $(tail -5 "$W/pfhs/maillog")"
fi
for k in "${!PORT[@]}"; do
	"$HS" -p "${PORT[$k]}" -m odmr -n 1 >/dev/null || die "odmrd service $k handshake failed"
done

# --- CPU accounting helpers ---------------------------------------------------------------------
TCK=$(getconf CLK_TCK)
# proc_fields PID: /proc/PID/stat after "pid (comm) ", i.e. from field 3 (state) on: field N is
# ${N-2} (minflt 10, cminflt 11, utime 14, stime 15, cutime 16, cstime 17)
proc_fields() {
	local s
	s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	echo "${s##*) }"
}
# proc_times PID: "self children" CPU in ticks (utime+stime, cutime+cstime)
proc_times() {
	# shellcheck disable=SC2046
	set -- $(proc_fields "$1")
	[ $# -ge 15 ] || { echo "0 0"; return; }
	echo "$((${12} + ${13})) $((${14} + ${15}))"
}
# proc_children PID: "cutime cstime cminflt" of the reaped children (ticks, ticks, faults)
proc_children() {
	# shellcheck disable=SC2046
	set -- $(proc_fields "$1")
	[ $# -ge 15 ] || { echo "0 0 0"; return; }
	echo "${14} ${15} ${9}"
}
# cpu_xinetd: "self children" ticks of xinetd
cpu_xinetd() { proc_times "$XINETD"; }
# cpu_pf: total ticks of the pfhs instance = all live processes (self) + master's children
cpu_pf() {
	local p tot=0 master self ch
	pf_attach "$PFHS_WORK"
	master=$(cat "$PF_QUEUE/pid/master.pid" | tr -d ' ')
	for p in $(pf_procs); do
		read -r self ch < <(proc_times "$p")
		tot=$((tot + self))
		[ "$p" = "$master" ] && tot=$((tot + ch))
	done
	echo "$tot"
}

# cpu_server PID: "self children" ticks of a forking server, counting children not yet reaped
cpu_server() {
	local self ch c s2 c2
	read -r self ch < <(proc_times "$1")
	for c in $(pgrep -P "$1"); do
		read -r s2 c2 < <(proc_times "$c")
		ch=$((ch + s2 + c2))
	done
	echo "$self $ch"
}

# --- part hs + cpu: handshake latency, concurrency, CPU per session ------------------------------
hs_run() { # hs_run SERVER PORT MODE N CONC REP [LABEL]: LABEL (default CONC) names the run; HS_EXTRA: more hsclient options
	local server=$1 port=$2 mode=$3 n=$4 c=$5 rep=$6 label=${7:-$5} out
	# shellcheck disable=SC2086
	out=$("$HS" -p "$port" -m "$mode" -n "$n" -c "$c" ${HS_EXTRA:-} -o "$R/raw_hs_${server}_c${label}_r${rep}.csv" 2>>"$W/hs.err")
	echo "$server,$label,$rep,$(echo "$out" | sed 's/[a-z0-9_]*=//g; s/ /,/g')" >>"$R/hs_summary.csv"
}
declare -A FSPID
if want hs || want cpu || want mem; then
	# Prototype of a change not taken (bench/patches/forkserver.patch): odmrd listening itself,
	# SASL initialised once, fork per connection without exec. No xinetd in front.
	for v in $FORKSERVER; do
		PORT[$v]=$(free_port)
		"$W/build/$v/odmrd" -L "${PORT[$v]}" -f "$W/odmrd-default.conf" &
		FSPID[$v]=$!
		PIDS+=("${FSPID[$v]}")
		end=$((SECONDS + 10))
		until ss -ltnH "sport = :${PORT[$v]}" | grep -q LISTEN; do
			[ $SECONDS -ge $end ] && die "$v did not listen on ${PORT[$v]}"
			sleep 0.05
		done
		"$HS" -p "${PORT[$v]}" -m odmr -n 1 >/dev/null || die "$v: handshake failed"
	done
fi
if want hs || want cpu; then
	echo "server,conc,rep,n,ok,err,wall_s,rate_per_s,p50_ms,p90_ms,p99_ms,min_ms,max_ms" >"$R/hs_summary.csv"
	echo "server,rep,n,server_cpu_ms_per_session,inetd_cpu_ms_per_session,server_user_ms,server_sys_ms,minflt_per_session" >"$R/cpu_summary.csv"
	HS_SERVERS="default floor saslfloor $BASELINE privsep plug-cram scram $FORKSERVER"
	log "handshake: warm-up"
	"$HS" -p "$PF_SMTPD_PORT" -m smtp -n 200 -c 4 >/dev/null
	for s in $HS_SERVERS; do "$HS" -p "${PORT[$s]}" -m odmr -n 20 >/dev/null; done
	for rep in $(seq "$REPS"); do
		log "handshake rep $rep/$REPS (sequential; CPU accounting)"
		# Postfix: sequential, CPU of the whole instance per session.
		c0=$(cpu_pf)
		hs_run postfix "$PF_SMTPD_PORT" smtp "$N_HS_PF" 1 "$rep" seq
		c1=$(cpu_pf)
		echo "postfix,$rep,$N_HS_PF,$(echo "($c1 - $c0) * 1000 / $TCK / $N_HS_PF" | bc -l),0,,," >>"$R/cpu_summary.csv"
		for s in $HS_SERVERS; do
			spid=${FSPID[$s]:-$XINETD}
			read -r x0 ch0 < <(cpu_server "$spid")
			read -r u0 y0 f0 < <(proc_children "$spid")
			hs_run "$s" "${PORT[$s]}" odmr "$N_HS" 1 "$rep" seq
			sleep 0.2 # let xinetd reap the last child
			read -r x1 ch1 < <(cpu_server "$spid")
			read -r u1 y1 f1 < <(proc_children "$spid")
			echo "$s,$rep,$N_HS,$(echo "($ch1 - $ch0) * 1000 / $TCK / $N_HS" | bc -l),$(echo "($x1 - $x0) * 1000 / $TCK / $N_HS" | bc -l),$(echo "($u1 - $u0) * 1000 / $TCK / $N_HS" | bc -l),$(echo "($y1 - $y0) * 1000 / $TCK / $N_HS" | bc -l),$(echo "($f1 - $f0) / $N_HS" | bc -l)" >>"$R/cpu_summary.csv"
		done
	done
	# The kernel-side unit costs on this machine, and the CPUID instructions of one start-up.
	if want cpu; then
		for rep in $(seq "$REPS"); do "$W/unitcost"; done >"$R/unitcost.txt"
		{
			echo "floor $("$W/unitcost" -c "$W/floor")"
			echo "odmrd $("$W/unitcost" -c "$ODMRD" -f "$W/odmrd-default.conf")"
		} >"$R/cpuid_count.txt"
	fi
	if want hs; then
		for rep in $(seq "$REPS"); do
			log "concurrency rep $rep/$REPS (1, 8, 32 clients)"
			for c in 1 8 32; do
				hs_run postfix "$PF_SMTPD_PORT" smtp "$N_CONC_PF" "$c" "$rep"
				for s in default plug-cram floor $FORKSERVER; do
					[ "$c" = 1 ] && continue # c=1 is the sequential run above
					hs_run "$s" "${PORT[$s]}" odmr "$N_CONC" "$c" "$rep"
				done
			done
		done
	fi
fi

# --- part cg: callgrind of one session (socketpair client) -----------------------------------------
if want cg; then
	log "callgrind and strace: one session per configuration"
	echo "variant,binary,conf,Ir" >"$R/callgrind_summary.csv"
	cg_one() { # cg_one NAME BINARY CONF
		local out=$R/callgrind.$1.out
		"$HS" -x -- valgrind --tool=callgrind --callgrind-out-file="$out" "$2" -f "$W/odmrd-$3.conf" \
			>"$W/cg-$1.txt" 2>&1 || log "callgrind $1: handshake failed ($(tail -1 "$W/cg-$1.txt"))"
		local ir
		ir=$(grep -m1 '^summary:' "$out" | awk '{print $2}')
		echo "$1,$(basename "$(dirname "$2")"),$3,$ir" >>"$R/callgrind_summary.csv"
		callgrind_annotate "$out" 2>/dev/null | head -40 >"$R/callgrind.$1.annotate.txt"
		callgrind_annotate --inclusive=yes --threshold=100 "$out" 2>/dev/null >"$R/callgrind.$1.inclusive.txt"
		# Ir by shared object (exclusive): where the instructions run.
		callgrind_annotate --threshold=100 "$out" 2>/dev/null |
			awk '/^ *[0-9,]+ .*\[/ { ir=$1; gsub(",", "", ir); obj=$0; sub(/.*\[/, "", obj); sub(/\].*/, "", obj); s[obj]+=ir }
			     END { for (o in s) printf "%d,%s\n", s[o], o }' | sort -t, -k1,1nr >"$R/callgrind_by_object.$1.csv"
	}
	cg_one default "$ODMRD" default
	cg_one floor "$W/floor" default
	cg_one saslfloor "$W/saslfloor" default
	[ -n "$BASELINE" ] && cg_one baseline "$W/build/baseline/odmrd" default
	cg_one plug-cram "$ODMRD" plug-cram
	cg_one scram "$ODMRD" scram
	# The kernel's side of one session: system calls by name (strace -c), and for odmrd the
	# complete trace (which files, mappings and reads a session costs).
	echo "variant,calls,errors" >"$R/syscalls_summary.csv"
	for v in default floor saslfloor $BASELINE; do
		case $v in
		default) bin=$ODMRD ;; floor) bin=$W/floor ;; saslfloor) bin=$W/saslfloor ;; baseline) bin=$W/build/baseline/odmrd ;;
		esac
		"$HS" -x -- strace -f -c -o "$R/strace.$v.txt" "$bin" -f "$W/odmrd-default.conf" >/dev/null 2>&1 ||
			log "strace $v: handshake failed"
		awk -v v="$v" '/ total$/ {print v "," $4 "," ($5 ~ /^[0-9]+$/ ? $5 : 0)}' "$R/strace.$v.txt" \
			>>"$R/syscalls_summary.csv"
	done
	"$HS" -x -- strace -o "$R/strace.default.trace.txt" "$ODMRD" -f "$W/odmrd-default.conf" >/dev/null 2>&1
fi

# --- part mem: one session after AUTH, N concurrent sessions -------------------------------------
# smaps KEY...: sums of smaps_rollup fields (kB) over the PIDs on stdin, plus VmHWM
mem_of() { # mem_of PID... -> "rss_kb pss_kb private_clean_kb private_dirty_kb hwm_kb count"
	local p rss=0 pss=0 pc=0 pd=0 hwm=0 n=0 a b c d h
	for p in "$@"; do
		read -r a b c d < <(awk '/^Rss:/ {r=$2} /^Pss:/ {p=$2} /^Private_Clean:/ {c=$2} /^Private_Dirty:/ {d=$2}
			END {print r+0, p+0, c+0, d+0}' "/proc/$p/smaps_rollup" 2>/dev/null) || continue
		h=$(awk '/^VmHWM:/ {print $2}' "/proc/$p/status" 2>/dev/null)
		rss=$((rss + a)) pss=$((pss + b)) pc=$((pc + c)) pd=$((pd + d)) hwm=$((hwm + ${h:-0})) n=$((n + 1))
	done
	echo "$rss $pss $pc $pd $hwm $n"
}
if want mem; then
	echo "what,server,conc,rep,procs,rss_kb,pss_kb,private_clean_kb,private_dirty_kb,vmhwm_kb" >"$R/mem_summary.csv"
	mem_hold() { # mem_hold SERVER PORT MODE CONC REP
		local server=$1 port=$2 mode=$3 c=$4 rep=$5 pids
		rm -f "$W/ready" "$W/go"
		"$HS" -p "$port" -m "$mode" -c "$c" -R "$W/ready" -G "$W/go" >/dev/null 2>>"$W/mem.err" &
		local hp=$!
		wait_file "$W/ready" 60 || log "mem: $server c=$c never got ready"
		sleep 0.3
		if [ "$server" = postfix ]; then
			pf_attach "$PFHS_WORK"
			pids=$(for p in $(pf_procs); do [ "$(cat /proc/$p/comm 2>/dev/null)" = smtpd ] && echo "$p"; done)
		else
			pids=$(pgrep -P "${FSPID[$server]:-$XINETD}")
		fi
		# shellcheck disable=SC2086
		set -- $(mem_of $pids)
		echo "after-auth,$server,$c,$rep,$6,$1,$2,$3,$4,$5" >>"$R/mem_summary.csv"
		touch "$W/go"
		wait "$hp"
		sleep 0.3
	}
	for rep in $(seq "$REPS"); do
		log "memory rep $rep/$REPS (1 and $MEM_CONC sessions held after AUTH)"
		for s in default plug-cram $FORKSERVER; do
			mem_hold "$s" "${PORT[$s]}" odmr 1 "$rep"
			mem_hold "$s" "${PORT[$s]}" odmr "$MEM_CONC" "$rep"
		done
		# Postfix: restart-free; smtpd processes idle from earlier runs would be counted, so
		# reload first (idle smtpd exit) and count only smtpd processes while sessions are held.
		postfix -c "$PFHS_CONF" reload >/dev/null 2>&1
		sleep 1.5
		mem_hold postfix "$PF_SMTPD_PORT" smtp 1 "$rep"
		postfix -c "$PFHS_CONF" reload >/dev/null 2>&1
		sleep 1.5
		mem_hold postfix "$PF_SMTPD_PORT" smtp "$MEM_CONC" "$rep"
	done
fi

# --- part map: ATRN latency vs map size --------------------------------------------------------------
if want map; then
	echo "customers,rep,n,ok,err,wall_s,rate_per_s,p50_ms,p90_ms,p99_ms,min_ms,max_ms" >"$R/map_summary.csv"
	for n in $MAPS; do "$HS" -p "${PORT[map$n]}" -m odmr -n 20 >/dev/null; done
	for rep in $(seq "$REPS"); do
		log "map-size rep $rep/$REPS"
		for n in $MAPS; do
			out=$("$HS" -p "${PORT[map$n]}" -m odmr -n "$N_MAP" -o "$R/raw_map_${n}_r$rep.csv")
			echo "$n,$rep,$(echo "$out" | sed 's/[a-z0-9_]*=//g; s/ /,/g')" >>"$R/map_summary.csv"
		done
	done
fi

# --- part tls: what TLS costs per session, vs Postfix smtpd doing the same ------------------------------
# Sequential sessions, CPU from /proc accounting as in part cpu: odmrd under xinetd doing STARTTLS +
# AUTH CRAM-MD5 + ATRN (full handshake; then resumed with the ticket of the previous session, keys
# from tls_ticket_key_file), Postfix smtpd doing STARTTLS + AUTH CRAM-MD5 with the same ECDSA P-256
# chain and the same client (full; resumed: Postfix's own tickets via tlsmgr); full handshakes of
# both again with one Ed25519 certificate (*-ed). Plus callgrind Ir of one plaintext, one full-TLS
# (ECDSA and Ed25519) and one resumed odmrd session (robust on a noisy machine).
if want tls; then
	echo "server,rep,n,server_cpu_ms_per_session,inetd_cpu_ms_per_session" >"$R/tls_cpu_summary.csv"
	log "tls: warm-up"
	[ -s "$R/hs_summary.csv" ] ||
		echo "server,conc,rep,n,ok,err,wall_s,rate_per_s,p50_ms,p90_ms,p99_ms,min_ms,max_ms" >"$R/hs_summary.csv"
	"$HS" -p "$PF_TLS_PORT" -m smtp -T -n 100 >/dev/null 2>&1
	"$HS" -p "$PF_TLS_ED_PORT" -m smtp -T -n 100 >/dev/null 2>&1
	"$HS" -p "${PORT[tls]}" -m odmr -T -n 10 >/dev/null 2>&1
	"$HS" -p "${PORT[tls-ed]}" -m odmr -T -n 10 >/dev/null 2>&1
	for rep in $(seq "$REPS"); do
		log "tls rep $rep/$REPS"
		for v in "postfix-tls:$PF_TLS_PORT:-T" "postfix-tls-resumed:$PF_TLS_PORT:-T -r" "postfix-tls-ed:$PF_TLS_ED_PORT:-T"; do
			name=${v%%:*} rest=${v#*:}
			c0=$(cpu_pf)
			HS_EXTRA=${rest#*:} hs_run "$name" "${rest%%:*}" smtp "$N_HS_PF" 1 "$rep" seq
			c1=$(cpu_pf)
			echo "$name,$rep,$N_HS_PF,$(echo "($c1 - $c0) * 1000 / $TCK / $N_HS_PF" | bc -l),0" >>"$R/tls_cpu_summary.csv"
		done
		for v in "default::" "tls:tls:-T" "tls-resumed:tls:-T -r" "tls-plug:tls-plug:-T" "tls-plug-resumed:tls-plug:-T -r" \
			"tls-ed:tls-ed:-T"; do
			name=${v%%:*} rest=${v#*:}
			svc=${rest%%:*} opts=${rest#*:}
			[ -z "$svc" ] && svc=$name
			read -r x0 ch0 < <(cpu_server "$XINETD")
			HS_EXTRA=$opts hs_run "$name" "${PORT[$svc]}" odmr "$N_HS" 1 "$rep" tls
			sleep 0.2
			read -r x1 ch1 < <(cpu_server "$XINETD")
			echo "$name,$rep,$N_HS,$(echo "($ch1 - $ch0) * 1000 / $TCK / $N_HS" | bc -l),$(echo "($x1 - $x0) * 1000 / $TCK / $N_HS" | bc -l)" >>"$R/tls_cpu_summary.csv"
		done
	done
	log "tls: callgrind of a plaintext, a full-TLS (ECDSA, Ed25519) and a resumed session"
	echo "variant,Ir" >"$R/tls_callgrind_summary.csv"
	rm -f "$W"/cg-tls.*.out
	"$HS" -x -- valgrind --tool=callgrind --callgrind-out-file="$W/cg-plain.out" "$ODMRD" -f "$W/odmrd-tls.conf" \
		>"$W/cg-plain.txt" 2>&1 || log "callgrind plain: failed ($(tail -1 "$W/cg-plain.txt"))"
	"$HS" -x -n 2 -T -r -- valgrind --tool=callgrind --callgrind-out-file="$W/cg-tls.%p.out" "$ODMRD" -f "$W/odmrd-tls.conf" \
		>"$W/cg-tls.txt" 2>&1 || log "callgrind tls: failed ($(tail -1 "$W/cg-tls.txt"))"
	echo "plain-on-tls-port,$(sed -n 's/^summary: //p' "$W/cg-plain.out")" >>"$R/tls_callgrind_summary.csv"
	k=0
	for f in $(ls -tr "$W"/cg-tls.*.out 2>/dev/null); do
		k=$((k + 1))
		echo "$([ $k = 1 ] && echo tls-full || echo tls-resumed),$(sed -n 's/^summary: //p' "$f")" >>"$R/tls_callgrind_summary.csv"
		cp "$f" "$R/callgrind.tls-$k.out"
	done
	"$HS" -x -T -- valgrind --tool=callgrind --callgrind-out-file="$R/callgrind.tls-ed.out" "$ODMRD" -f "$W/odmrd-tls-ed.conf" \
		>"$W/cg-tls-ed.txt" 2>&1 || log "callgrind tls-ed: failed ($(tail -1 "$W/cg-tls-ed.txt"))"
	echo "tls-ed-full,$(sed -n 's/^summary: //p' "$R/callgrind.tls-ed.out")" >>"$R/tls_callgrind_summary.csv"
	log "tls: the library candidates (bench/tls/measure.sh) and 5 MB relayed (relay5m)"
	TLS_N=$([ "$QUICK" = 1 ] && echo 50 || echo 200) "$B/tls/measure.sh" "$R/tls-libs.md" >/dev/null 2>&1 ||
		log "bench/tls/measure.sh failed"
	make -s -C "$B/tls" relay5m >/dev/null 2>&1 || log "relay5m build failed"
	echo "mode,rep,relay_cpu_ms,wall_ms" >"$R/tls_relay5m.csv"
	for rep in $(seq "$REPS"); do
		for m in plain tls-lines tls-blocks; do
			out=$("$B/tls/relay5m" "$m" "$W/build/base/odmrd-tls.so" "$W/pki/srv-ec.crt" "$W/pki/srv-ec.key" 2>/dev/null)
			echo "$m,$rep,$(echo "$out" | sed -n 's/.*relay_cpu_ms=\([0-9.]*\) wall_ms=\([0-9]*\).*/\1,\2/p')" >>"$R/tls_relay5m.csv"
		done
	done
	for m in plain tls-lines; do
		valgrind --tool=callgrind --callgrind-out-file="$W/cg-relay-$m.out" --toggle-collect=relay_step \
			"$B/tls/relay5m" "$m" "$W/build/base/odmrd-tls.so" "$W/pki/srv-ec.crt" "$W/pki/srv-ec.key" >/dev/null 2>&1
		echo "relay5m-$m,$(sed -n 's/^summary: //p' "$W/cg-relay-$m.out" | head -1)" >>"$R/tls_callgrind_summary.csv"
	done
fi

# --- part tp: reversed-state throughput ---------------------------------------------------------------
# One held queue per MTA, delivered to the same C sink over four paths: ODMR with real fetchmail as the
# customer, ODMR with a C customer (bench/sink.c -C: the sink itself logs in and asks ATRN, so only
# odmrd and the MTA are in the path), and the MTA delivering straight to the sink (Postfix: smtp to
# the sink's TCP port, 1 connection and default concurrency; Sendmail: its queue run delivering over
# the same [IPC] mailer to the sink listening on the domain's socket).
if want tp; then
	log "throughput: private Postfix and Sendmail holding mail for a.example"
	PF_RL_SMTPD=$(free_port)
	PF_DOMAINS="a.example" pf_setup "$W/pfrl" "$W/pfrl-run" a.example || die "pf_setup pfrl"
	PF_INSTANCES+=("$W/pfrl")
	printf '127.0.0.1:%s inet n - n - - smtpd\n' "$PF_RL_SMTPD" >>"$PF_CONF/master.cf"
	printf 'smtp unix - - n - - smtp\n' >>"$PF_CONF/master.cf"
	# Nothing moves unless flushed: long backoff and queue-run delay.
	postconf -c "$PF_CONF" -e "queue_run_delay = 3600s" "minimal_backoff_time = 3600s" \
		"maximal_backoff_time = 3600s" "smtpd_banner = provider.test ESMTP" \
		"message_size_limit = 20480000" "smtp_tls_security_level = none" || die postconf
	cp "$PF_CONF/odmrd_transport" "$PF_CONF/transport.odmr"
	pf_start || die "pfrl start"
	PFRL_CONF=$PF_CONF
	until ss -ltnH "sport = :$PF_RL_SMTPD" | grep -q LISTEN; do sleep 0.05; done
	conf relay-postfix "run_dir = $PF_RUNDIR" "postfix_config_dir = $PFRL_CONF" "postqueue = /usr/sbin/postqueue" \
		"sasl_plugin_dir = $W/plug-cram" "sasl_mech_list = CRAM-MD5"

	# Sendmail 8.17 from the Debian packages, unpacked privately (tests/lib/sendmail.sh).
	. "$TOP/tests/lib/sendmail.sh"
	sm_setup "$W/sm" "$W/sm-run" a.example >"$W/sm_setup.out" 2>&1 || die "sm_setup: $(tail -5 "$W/sm_setup.out")"
	conf relay-sendmail "run_dir = $SM_RUNDIR" "mta = sendmail" "sendmail = $SM_SENDMAIL" "sendmail_cf = $SM_CF" \
		"sasl_plugin_dir = $W/plug-cram" "sasl_mech_list = CRAM-MD5"

	# A separate xinetd for the relay services (the main one keeps running unchanged).
	declare -A RPORT
	sed -n '1,/^}/p' "$XCONF" >"$W/xinetd-relay.conf"
	RELAY_ODMRD=$ODMRD
	if [ -n "${BENCH_TP_WRAP:-}" ]; then
		# Diagnosis: the relay services run odmrd under a prefix (strace, valgrind), "%p" -> a per-run tag.
		printf '#!/bin/sh\nexec %s %s "$@"\n' "${BENCH_TP_WRAP//%p/\$\$}" "$ODMRD" >"$W/odmrd-wrapped"
		chmod 755 "$W/odmrd-wrapped"
		RELAY_ODMRD=$W/odmrd-wrapped
	fi
	for m in postfix sendmail; do
		xsvc "relay-$m" "$RELAY_ODMRD" "relay-$m" "$W/xinetd-relay.conf"
		RPORT[$m]=${PORT[relay-$m]}
		if [ -n "$BASELINE" ]; then
			xsvc "relay-base-$m" "$W/build/baseline/odmrd" "relay-$m" "$W/xinetd-relay.conf"
			RPORT[base-$m]=${PORT[relay-base-$m]}
		fi
	done
	xinetd -dontfork -f "$W/xinetd-relay.conf" -pidfile "$W/xinetd-relay.pid" -filelog "$W/xinetd-relay.log" >"$W/xinetd-relay.out" 2>&1 &
	XRELAY=$!
	PIDS+=("$XRELAY")
	for m in "${!RPORT[@]}"; do
		until ss -ltnH "sport = :${RPORT[$m]}" | grep -q LISTEN; do sleep 0.05; done
	done

	echo "size_label,msgs,msg_bytes,mta,path,rep,start,first,last,session_end,delivered,msgs_per_s,steady_msgs_per_s,session_s,odmrd_cpu_ms" >"$R/tp_summary.csv"
	echo "size_label,mta,path,rep,samples,max_rss_kb,max_private_dirty_kb,vmhwm_kb" >"$R/mem_relay.csv"

	CUR_TRANSPORT=odmr
	pf_transport() { # pf_transport odmr | smtp SINKPORT CONCURRENCY
		local want=$1${2:+:$2:$3}
		[ "$want" = "$CUR_TRANSPORT" ] && return
		if [ "$1" = odmr ]; then
			cp "$PFRL_CONF/transport.odmr" "$PFRL_CONF/odmrd_transport"
		else
			printf 'a.example\tsmtp:[127.0.0.1]:%s\n' "$2" >"$PFRL_CONF/odmrd_transport"
			postconf -c "$PFRL_CONF" -e "smtp_destination_concurrency_limit = $3" \
				"smtp_initial_destination_concurrency = $(($3 < 5 ? $3 : 5))"
		fi
		# The table is odmrd-map's hash: table (also relay_domains): compile the swapped text.
		postmap -c "$PFRL_CONF" "hash:$PFRL_CONF/odmrd_transport" || die "postmap odmrd_transport"
		postfix -c "$PFRL_CONF" reload >/dev/null 2>&1
		CUR_TRANSPORT=$want
		sleep 1
	}
	# start_sink N [-U SOCKET | -C PORT]: the C sink (listening) or the C customer -> SINKPORT SINKPID
	start_sink() {
		local n=$1
		shift
		rm -f "$W/sinkport" "$W/sink.csv"
		"$W/sink" -p "$W/sinkport" -o "$W/sink.csv" -n "$n" "$@" 2>>"$W/sink.err" &
		SINKPID=$!
		PIDS+=("$SINKPID")
		SINKPORT=
		[ "${1:-}" = -C ] && return
		wait_file "$W/sinkport" 10 || die "sink did not start"
		SINKPORT=$(cat "$W/sinkport")
	}
	sink_count() { [ -e "$W/sink.csv" ] && echo $(($(wc -l <"$W/sink.csv") - 1)) || echo 0; }
	# sink_times: "first last" epoch seconds of stored messages
	sink_times() {
		[ -e "$W/sink.csv" ] || { echo "0 0"; return; }
		awk -F, 'NR == 2 {f = $2} NR > 1 {l = $2} END {printf "%.6f %.6f\n", f / 1e6, l / 1e6}' "$W/sink.csv"
	}
	stop_sink() {
		kill "$SINKPID" 2>/dev/null
		wait "$SINKPID" 2>/dev/null
	}
	# fill_queue MTA N BYTES: N distinct messages for u@a.example, all queued and idle
	fill_queue() {
		if [ "$1" = postfix ]; then
			pf_attach "$W/pfrl"
			python3 "$B/inject.py" "$PF_RL_SMTPD" "$2" "$3" "u@a.example" || die "inject failed"
			pf_wait_queued "$2" deferred >/dev/null || die "queue did not reach $2 deferred"
		else
			python3 "$B/inject.py" - "$2" "$3" "u@a.example" "$W/smmsg" || die "message files failed"
			# -odq: queue only; several submissions at once, as a busy host would see.
			find "$W/smmsg" -name '*.eml' -print0 |
				xargs -0 -P 4 -I{} sh -c '"$1" -C "$2" -odq -oi -f bench@x.test u@a.example <"$3"' _ "$SM_SENDMAIL" "$SM_CF" {} ||
				die "sendmail submission failed"
			sm_wait_queued "$2" 120 >/dev/null || die "Sendmail queue did not reach $2"
		fi
	}
	# The timed windows run no program of the bench's own: on two cores a pgrep, awk, wc or sleep
	# every few ms (each exec ~1 ms of CPU here) took CPU from whichever path was being measured.
	# nap SECONDS: sleep without a fork (read on a FIFO nobody writes times out).
	mkfifo "$W/nap.fifo"
	exec {NAPFD}<>"$W/nap.fifo"
	nap() { read -r -t "$1" -u "$NAPFD" _ || :; }
	relay_sampler() { # background: sample the odmrd session's memory until $W/sampling is removed
		local maxr=0 maxd=0 hwm=0 n=0 p k v kids
		while [ -e "$W/sampling" ]; do
			kids=()
			read -r -a kids <"/proc/$XRELAY/task/$XRELAY/children" 2>/dev/null
			for p in "${kids[@]}"; do
				local r=0 d=0 h=0
				while read -r k v _; do
					case $k in Rss:) r=$v ;; Private_Dirty:) d=$v ;; esac
				done <"/proc/$p/smaps_rollup" 2>/dev/null || continue
				while read -r k v _; do
					[ "$k" = VmHWM: ] && h=$v
				done <"/proc/$p/status" 2>/dev/null
				[ "$r" -gt "$maxr" ] && maxr=$r
				[ "$d" -gt "$maxd" ] && maxd=$d
				[ "$h" -gt "$hwm" ] && hwm=$h
				n=$((n + 1))
			done
			nap 0.05
		done
		echo "$n,$maxr,$maxd,$hwm"
	}
	# With BENCH_TP_PERF: perf samples every CPU over the timed window; per process name, the
	# CPU ms (samples x 1 ms at 1000 Hz) go to diag/tp_perf.csv.
	tp_perf_start() {
		[ -n "${BENCH_TP_PERF:-}" ] || return 0
		mkdir -p "$R/diag"
		perf record -a -F 1000 -o "$W/tp.perf" >/dev/null 2>&1 &
		PERFPID=$!
		nap 0.3
	}
	tp_perf_stop() { # LABEL MTA PATH REP
		[ -n "${BENCH_TP_PERF:-}" ] || return 0
		kill -INT "$PERFPID"
		wait "$PERFPID" 2>/dev/null
		[ -s "$R/diag/tp_perf.csv" ] || echo "size_label,mta,path,rep,comm,cpu_ms" >"$R/diag/tp_perf.csv"
		perf report -i "$W/tp.perf" --sort comm --stdio -F sample,comm 2>/dev/null |
			awk -v pre="$1,$2,$3,$4" '/^ *[0-9]+ / {c = $2; for (i = 3; i <= NF; i++) c = c " " $i; print pre "," c "," $1}' \
			>>"$R/diag/tp_perf.csv"
	}
	tp_one() { # tp_one LABEL N BYTES MTA PATH(fetchmail|customer|customer-base|direct1|directN) REP
		local label=$1 n=$2 bytes=$3 mta=$4 path=$5 rep=$6 t0 tend first last got sp x0 c0 x1 c1 cpu=
		[ "$mta" = postfix ] && pf_transport odmr
		fill_queue "$mta" "$n" "$bytes"
		tp_perf_start
		t0=$(now_s)
		case $path in
		fetchmail | customer | customer-base)
			read -r x0 c0 < <(proc_times "$XRELAY")
			touch "$W/sampling"
			relay_sampler >"$W/sampler.out" &
			sp=$!
			if [ "$path" != fetchmail ]; then
				t0=$(now_s)
				start_sink "$n" -C "${RPORT[$([ "$path" = customer-base ] && echo base-)$mta]}"
				wait "$SINKPID" || log "tp: C customer failed: $(tail -2 "$W/sink.err")"
			else
				start_sink "$n"
				mkdir -p "$W/fmhome"
				printf 'poll 127.0.0.1 protocol odmr service %s user alice password secret fetchdomains a.example smtphost 127.0.0.1/%s\n' \
					"${RPORT[$mta]}" "$SINKPORT" >"$W/fmhome/.fetchmailrc"
				chmod 600 "$W/fmhome/.fetchmailrc"
				t0=$(now_s)
				HOME=$W/fmhome FETCHMAILHOME=$W/fmhome timeout 600 ${BENCH_FM_WRAP:-} fetchmail -f "$W/fmhome/.fetchmailrc" \
					--pidfile "$W/fmhome/fetchmail.pid" --nosyslog >>"$W/fetchmail.out" 2>&1
			fi
			tend=$(now_s)
			rm -f "$W/sampling"
			wait "$sp"
			# odmrd's CPU for the session: xinetd reaps it (Postfix: odmrd + postqueue -s; Sendmail:
			# odmrd + its sendmail queue run, which is the MTA's work).
			local k
			for k in $(seq 50); do pgrep -P "$XRELAY" >/dev/null || break; sleep 0.1; done
			read -r x1 c1 < <(proc_times "$XRELAY")
			cpu=$(((c1 - c0) * 1000 / TCK))
			echo "$label,$mta,$path,$rep,$(cat "$W/sampler.out")" >>"$R/mem_relay.csv"
			;;
		direct1 | directN)
			if [ "$mta" = postfix ]; then
				start_sink "$n"
				pf_transport smtp "$SINKPORT" "$([ "$path" = direct1 ] && echo 1 || echo 20)"
				t0=$(now_s)
				postqueue -c "$PFRL_CONF" -f
			else
				start_sink "$n" -U "$SM_RUNDIR/a.example"
				t0=$(now_s)
				sm_queue_run a.example >>"$W/sm_qrun.out" 2>&1
			fi
			local end=$((SECONDS + 600))
			# The sink writes its CSV once all N are stored.
			while [ ! -e "$W/sink.csv" ] && [ $SECONDS -lt $end ]; do nap 0.02; done
			tend=$(now_s)
			;;
		esac
		tp_perf_stop "$label" "$mta" "$path" "$rep"
		sleep 0.3
		got=$(sink_count)
		read -r first last < <(sink_times)
		stop_sink
		if [ "$got" -lt "$n" ]; then
			log "tp $label $mta $path rep $rep: only $got of $n delivered"
			if [ "$mta" = postfix ]; then
				pf_attach "$W/pfrl"
				postsuper -c "$PFRL_CONF" -d ALL >/dev/null 2>&1
			else
				rm -f "$SM_QUEUE"/*
			fi
		fi
		local total steady sess
		total=$([ "$got" -gt 0 ] && echo "$got / ($last - $t0)" | bc -l || echo 0)
		steady=$([ "$got" -gt 1 ] && echo "($got - 1) / ($last - $first)" | bc -l || echo 0)
		sess=$(echo "$tend - $t0" | bc -l)
		echo "$label,$n,$bytes,$mta,$path,$rep,$t0,$first,$last,$tend,$got,$total,$steady,$sess,$cpu" >>"$R/tp_summary.csv"
		log "  tp $label $mta $path rep $rep: $got msgs, $(printf '%.1f' "$total") msg/s (steady $(printf '%.1f' "$steady")), session $(printf '%.2f' "$sess") s"
	}
	TP_PATHS=${BENCH_TP_PATHS:-fetchmail customer direct1 $([ "$QUICK" = 1 ] || echo directN)}
	[ -n "$BASELINE" ] && TP_PATHS=$(echo " $TP_PATHS " | sed 's/ customer / customer customer-base /')
	for rep in $(seq "$REPS"); do
		log "throughput rep $rep/$REPS"
		for mta in ${BENCH_TP_MTAS:-postfix sendmail}; do
			for size in ${BENCH_TP_SIZES:-small big}; do
				for path in $TP_PATHS; do
					# Sendmail has no "default concurrency" direct path: one queue run, one connection.
					[ "$mta-$path" = sendmail-directN ] && continue
					if [ "$size" = small ]; then
						tp_one small "$TP_SMALL" 10240 "$mta" "$path" "$rep"
					else
						tp_one big "$TP_BIG" 5242880 "$mta" "$path" "$rep"
					fi
				done
			done
		done
	done
	pf_transport odmr
	sm_stop
fi

{
	echo "loadavg at end: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "other busy processes at end:"
	top -b -n1 -o %CPU | sed -n '8,13p' | awk '$9 > 1.0 {print "   ", $1, $2, "nice=" $4, $9 "%CPU", $12}'
} >>"$MACHINE_OUT"
log "benchmark parts done in $((SECONDS - START)) s; writing the report"
echo "$((SECONDS - START))" >"$R/elapsed_s$([ "$MACHINE_OUT" = "$R/machine.txt" ] || echo -rerun).txt"
cp "$W/build/base/build.log" "$R/build-base.log" 2>/dev/null
cleanup
trap - EXIT
python3 "$B/report.py" "$R" || die "report failed"
log "done: $R/REPORT.md ($((SECONDS - START)) s)"
