#!/bin/bash
# tests/sanitize.sh - odmrd built and run under the compilers' sanitizers and valgrind
# (`make check-sanitize`).
#
# Why: the protocol suites see only replies. Memory errors, undefined behaviour, leaks and
# descriptor leaks show up only with instrumentation. Others build and test in this tree, so
# nothing here touches it: the sources (tracked and untracked, not ignored) are copied to
# $WORK/src-gcc and $WORK/src-clang and built there.
#   1. gcc and clang both build odmrd, odmrd-map and the unit tests with the Makefile's
#      -Wall -Wextra ... and WERROR=-Werror (copy src-gcc: CC=gcc; copy src-clang: CC=clang);
#      and a plain `make` does not add -Werror (a user's newer compiler may warn where ours does not).
#   2. clang with SAN='-fsanitize=address,undefined -fno-omit-frame-pointer
#      -fno-sanitize-recover=all' (src-clang, rebuilt): the unit tests, then t-10-protocol.sh and
#      t-50-hostile.sh (if present) from that copy, so inetd1.py runs the sanitized odmrd; its
#      stderr goes to the suites' inetd*.stderr files, which must not contain a sanitizer report.
#      ASAN_OPTIONS=detect_leaks=1:abort_on_error=1, plus log_path (reports also land in
#      $WORK/sanitizer-logs/, so they are seen even if odmrd sends its fd 2 to /dev/null).
#   3. valgrind (the gcc build, src-gcc): the unit tests with CK_FORK=no, and t-10-protocol.sh
#      with ODMRD_WRAPPER (tests/lib/common.sh) = valgrind --track-fds=yes ...: no log may report
#      an error, a definitely lost byte, or an open descriptor at exit other than 0, 1, 2 and
#      valgrind's own log file.
# A suite's own failing cases are shown but not counted unless STRICT_SUITES=1 (they are make
# check's business); counted: the suite reaches its summary, no odmrd crashed, no report.
# Prints one ok/FAIL line per case and "N passed, N failed". SAN_SUITES overrides the suites run
# under the sanitizers (default "t-10-protocol t-50-hostile t-60-tls"), VG_SUITES those under
# valgrind (default "t-10-protocol t-60-tls": TLS sessions, the TLS module dlopen'd by odmrd).
# SANITIZE_LIMIT (seconds, default 1200) bounds the whole run.
. "$(dirname "$0")/lib/common.sh"

SAN_FLAGS='-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all'
SAN_SUITES=${SAN_SUITES:-t-10-protocol t-50-hostile t-60-tls}
VG_SUITES=${VG_SUITES:-t-10-protocol t-60-tls}
JOBS=${JOBS:-2}
T0=$SECONDS

spawn bash -c "sleep ${SANITIZE_LIMIT:-1200}; echo 'sanitize: SANITIZE_LIMIT reached' >&2; kill -TERM $$"
WATCHDOG=$BG_PID

for tool in gcc clang valgrind git make; do
	command -v "$tool" >/dev/null || { fail "$tool is installed"; t_summary; }
done

# step NAME: print a timestamped progress line.
step() { printf '# [%3d s] %s\n' $((SECONDS - T0)) "$*"; }

# copy_tree DEST: the sources as git sees them (tracked + untracked, not ignored), no build output.
copy_tree() {
	local dest=$1
	mkdir -p "$dest"
	(cd "$TOP" && git ls-files -z --cached --others --exclude-standard --deduplicate |
		while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done |
		xargs -0 cp --parents -t "$dest")
}

# build DIR NAME MAKE-ARGS...: make the programs, then the unit tests, in DIR: two cases.
# Sets BUILT_ALL and BUILT_UNIT (0 = built).
build() {
	local dir=$1 name=$2
	shift 2
	make -C "$dir" -j"$JOBS" "$@" all >"$WORK/build-$name.log" 2>&1
	BUILT_ALL=$?
	if [ "$BUILT_ALL" = 0 ]; then
		ok "build: $name: odmrd, odmrd-map"
	else
		fail "build: $name: odmrd, odmrd-map" "$(grep -E ': (error|warning|fatal error):|Error [0-9]' "$WORK/build-$name.log" | head -15)"
	fi
	make -C "$dir" -j"$JOBS" "$@" tests/unit/check_odmrd >>"$WORK/build-$name.log" 2>&1
	BUILT_UNIT=$?
	if [ "$BUILT_UNIT" = 0 ]; then
		ok "build: $name: unit tests"
	else
		fail "build: $name: unit tests" "$(grep -E ': (error|warning|fatal error):|Error [0-9]' "$WORK/build-$name.log" | head -15)"
	fi
}

# unit_ok LOG: Check's summary says 100% and no failures/errors.
unit_summary() { grep -E '^[0-9]+%: Checks: [0-9]+, Failures: [0-9]+, Errors: [0-9]+' "$1" | tail -1; }

# san_report FILE...: sanitizer reports in FILEs (first lines), empty if none.
SAN_ERE='ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: (Address|Undefined|Leak)Sanitizer'
san_report() { grep -hE -A3 -- "$SAN_ERE" "$@" 2>/dev/null | head -20; }

# run_suite DIR SUITE LOG [ENV=VALUE...]: run DIR/tests/SUITE.sh with extra environment; status.
run_suite() {
	local dir=$1 suite=$2 log=$3
	shift 3
	env -u ODMRD -u ODMRD_MAP "$@" timeout -k 10 500 bash "$dir/tests/$suite.sh" </dev/null >"$log" 2>&1
}

# suite_result LOG: "N passed, N failed" line of a suite log.
suite_result() { grep -E '^[0-9]+ passed, [0-9]+ failed$' "$1" | tail -1; }

# judge_suite LABEL STATUS LOG WORKDIR: the suite must run to its summary line, and no odmrd it
# started may have died from a signal or exited 127/99 (99 = valgrind --error-exitcode). Its own
# case failures are printed, and count here only with STRICT_SUITES=1: they are the suite's
# business (make check runs it); this file judges what the instrumentation sees.
judge_suite() {
	local label=$1 st=$2 log=$3 wdir=$4 res crashed
	res=$(suite_result "$log")
	if [ -z "$res" ] || [ "$st" = 124 ] || [ "$st" = 137 ]; then
		fail "$label: ran to its summary line" "exit $st" "$(tail -5 "$log")"
		return
	fi
	ok "$label: ran to its summary line ($res)"
	if [ "$st" != 0 ]; then
		if [ "${STRICT_SUITES:-0}" != 0 ]; then
			fail "$label: the suite's own cases pass (STRICT_SUITES=1)" "$(grep -E '^(FAIL|    )' "$log" | head -12)"
		else
			echo "# $label: the suite itself reports failures (not counted here; STRICT_SUITES=1 counts them):"
			grep -E '^(FAIL|    )' "$log" | head -12 | sed 's/^/#   /'
		fi
	fi
	crashed=$(cat "$wdir"/inetd*.log 2>/dev/null | grep -E '^exit .* status=(-[0-9]+|127|99)$' | head -5)
	expect_eq "$label: no odmrd died from a signal or exited 127/99" "$crashed" ""
}

GCC_DIR=$WORK/src-gcc
CLANG_DIR=$WORK/src-clang
step "copying the sources"
copy_tree "$GCC_DIR" && copy_tree "$CLANG_DIR" || { fail "copy the sources"; t_summary; }
ok "sources copied ($(cd "$GCC_DIR" && find . -type f | wc -l) files) to $GCC_DIR and $CLANG_DIR"

# --- 1. both compilers, warnings as errors --------------------------------------------------------
# werror_in MAKE-ARGS...: "yes" if the compile command make would run for session.o has -Werror.
werror_in() {
	env -u WERROR make -C "$GCC_DIR" -n -B "$@" session.o 2>&1 | grep -q -- '-Werror' && echo yes || echo no
}
expect_eq "plain make: no -Werror in the compile command" "$(werror_in)" no
expect_eq "make WERROR=-Werror: -Werror in the compile command" "$(werror_in WERROR=-Werror)" yes
step "gcc build"
build "$GCC_DIR" "gcc -Wall -Wextra -Werror (Makefile WARN, WERROR=-Werror)" CC=gcc WERROR=-Werror
GCC_ALL=$BUILT_ALL GCC_UNIT=$BUILT_UNIT
step "clang build"
build "$CLANG_DIR" "clang -Wall -Wextra -Werror (Makefile WARN, WERROR=-Werror)" CC=clang WERROR=-Werror

# --- 2. AddressSanitizer + UndefinedBehaviorSanitizer ------------------------------------------------
step "clang ASan+UBSan build"
make -C "$CLANG_DIR" clean >/dev/null 2>&1
build "$CLANG_DIR" "clang $SAN_FLAGS" CC=clang "SAN=$SAN_FLAGS" WERROR=-Werror
# Reports go to files (log_path) as well as being looked for on stderr: odmrd may (and should)
# point its fd 2 at /dev/null, which would hide a report written to stderr.
SANLOG=$WORK/sanitizer-logs
mkdir -p "$SANLOG"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:log_path=$SANLOG/asan
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$SANLOG/ubsan
if [ "$BUILT_UNIT" = 0 ]; then
	step "unit tests under ASan+UBSan"
	(cd "$CLANG_DIR" && timeout -k 10 300 env -u CK_RUN_SUITE -u CK_RUN_CASE tests/unit/check_odmrd) \
		>"$WORK/unit-asan.log" 2>&1
	st=$?
	sum=$(unit_summary "$WORK/unit-asan.log")
	rep=$(san_report "$WORK/unit-asan.log" "$SANLOG"/*)
	if [ "$st" = 0 ] && [[ $sum == 100%* ]] && [ -z "$rep" ]; then
		ok "unit tests under ASan+UBSan ($sum)"
	else
		fail "unit tests under ASan+UBSan" "exit $st; ${sum:-no Check summary}" "$rep"
	fi
else
	fail "unit tests under ASan+UBSan: not built (see above)"
fi
if [ "$BUILT_ALL" = 0 ]; then
	for s in $SAN_SUITES; do
		[ -f "$CLANG_DIR/tests/$s.sh" ] || { echo "# $s.sh not present: skipped"; continue; }
		step "$s under ASan+UBSan"
		run_suite "$CLANG_DIR" "$s" "$WORK/$s-asan.log" ODMRC_TIMEOUT=20
		judge_suite "$s with the sanitized odmrd" $? "$WORK/$s-asan.log" "$CLANG_DIR/tests/work/$s"
		rep=$(san_report "$CLANG_DIR/tests/work/$s"/*.stderr "$WORK/$s-asan.log" "$SANLOG"/*)
		expect_eq "$s: no sanitizer report (odmrd's stderr = inetd1 --stderr files, suite output, log_path files)" "$rep" ""
	done
fi
unset ASAN_OPTIONS UBSAN_OPTIONS

# --- 3. valgrind ------------------------------------------------------------------------------
# vg_check NAME LOG...: no errors, no definitely lost bytes, no descriptor open at exit beyond 0-2.
vg_check() {
	local name=$1
	shift
	local out
	out=$("$PY" - "$@" <<-'EOF'
		import os, re, sys
		bad = []
		for path in sys.argv[1:]:
		    text = open(path, errors="replace").read()
		    pid = re.search(r"^==(\d+)==", text, re.M)
		    cmd = re.search(r"^==\d+== Command: (.*)$", text, re.M)
		    where = "%s (%s)" % (path.rsplit("/", 1)[-1], cmd.group(1)[:60] if cmd else "?")
		    m = re.search(r"ERROR SUMMARY: (\d+) errors", text)
		    if m is None:
		        # A child between fork and exec leaves a log without a summary: nothing ran.
		        continue
		    if int(m.group(1)):
		        first = re.search(r"^==\d+== (Invalid|Conditional|Syscall|Mismatched|Source and|Use of|Argument).*$", text, re.M)
		        bad.append("%s: %s errors%s" % (where, m.group(1), ": " + first.group(0) if first else ""))
		    m = re.search(r"definitely lost: ([\d,]+) bytes", text)
		    if m and m.group(1) != "0":
		        bad.append("%s: definitely lost %s bytes" % (where, m.group(1)))
		    for fd in re.finditer(r"^==\d+== Open (?:file descriptor|AF_\w+ socket) (\d+): ?(.*)$", text, re.M):
		        # valgrind lists its own --log-file as an fd "inherited from parent": not odmrd's.
		        if int(fd.group(1)) > 2 and os.path.realpath(fd.group(2).strip()) != os.path.realpath(path):
		            bad.append("%s: fd %s open at exit: %s" % (where, fd.group(1), fd.group(2)))
		print("%d logs checked" % (len(sys.argv) - 1))
		for b in bad[:15]:
		    print(b)
		sys.exit(1 if bad else 0)
	EOF
	)
	if [ $? = 0 ]; then ok "$name (${out%%$'\n'*})"; else fail "$name" "$out"; fi
}

if [ "$GCC_UNIT" = 0 ]; then
	step "unit tests under valgrind"
	(cd "$GCC_DIR" && CK_FORK=no timeout -k 10 300 env -u CK_RUN_SUITE -u CK_RUN_CASE valgrind \
		--error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
		--log-file="$WORK/vg-unit.log" tests/unit/check_odmrd) >"$WORK/unit-valgrind.out" 2>&1
	st=$?
	sum=$(unit_summary "$WORK/unit-valgrind.out")
	if [ "$st" = 0 ] && [[ $sum == 100%* ]]; then
		ok "unit tests under valgrind, CK_FORK=no ($sum)"
	else
		fail "unit tests under valgrind, CK_FORK=no: exit $st, ${sum:-no Check summary}" \
			"$(grep -E '^==[0-9]+== (Invalid|Conditional|.*definitely lost)' "$WORK/vg-unit.log" | head -8)"
	fi
	vg_check "unit tests: valgrind log clean" "$WORK/vg-unit.log"
fi
if [ "$GCC_ALL" = 0 ]; then
	for s in $VG_SUITES; do
		[ -f "$GCC_DIR/tests/$s.sh" ] || { echo "# $s.sh not present: skipped"; continue; }
		step "$s with odmrd under valgrind"
		VGDIR=$WORK/vg-$s
		mkdir -p "$VGDIR"
		run_suite "$GCC_DIR" "$s" "$WORK/$s-valgrind.log" ODMRC_TIMEOUT=30 \
			"ODMRD_WRAPPER=valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --track-fds=yes --log-file=$VGDIR/vg.%p.log"
		judge_suite "$s with odmrd under valgrind" $? "$WORK/$s-valgrind.log" "$GCC_DIR/tests/work/$s"
		n=$(find "$VGDIR" -name 'vg.*.log' | wc -l)
		if [ "$n" -gt 0 ]; then
			vg_check "$s: $n valgrind logs: no error, no definite leak, no fd left open" "$VGDIR"/vg.*.log
		else
			fail "$s: valgrind wrote logs (ODMRD_WRAPPER honoured)"
		fi
	done
fi

step "done"
kill_tree "$WATCHDOG"
t_summary
