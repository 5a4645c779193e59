#!/bin/bash
# tests/t-10-protocol.sh - every reply code of odmrd's pre-turn protocol, through the real process.
#
# Why: the unit tests drive session.c behind fakes; this suite runs ./odmrd exactly as inetd would
# (tests/lib/inetd1.py: socket on fd 0 and 1) with real Cyrus SASL (private sasldb, realm
# provider.test, users alice and bob) and a real GDBM customer map (alice: a.example, b.example;
# bob: c.example), and checks each answer with tests/lib/odmrclient.py and odmrd's log file.
# Prints "N passed, N failed"; exits non-zero on failure.
# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/lib/common.sh"

A=alice:alice-secret
B=bob:bob-secret
T10_HOSTNAME=$(hostname)

# tc NAME WANT STEP...: one client connection; WANT = the tokens odmrclient.py prints.
tc() {
	local name=$1 want=$2
	shift 2
	expect_eq "$name" "$(odmrc "$@" 2>&1)" "$want"
}

mk_sasldb "$WORK/sasldb2" provider.test alice alice-secret bob bob-secret ||
	fail "saslpasswd2 could not build the sasldb"
mk_map "$WORK/customers" 'alice a.example, b.example' 'bob c.example' ||
	fail "odmrd-map could not build the map"
write_conf "$WORK/odmrd.conf" customer_map="$WORK/customers.db"
start_odmrd "$WORK/odmrd.conf" || t_summary

# --- greeting and EHLO ---
TR=$WORK/ehlo.transcript
out=$(odmrc --transcript "$TR" ehlo quit)
expect_eq "220 greeting, 250 EHLO, 221 QUIT" "$out" "220 250 221"
expect_match "greeting names the provider" "$(sed -n 1p "$TR")" '^S: 220 provider\.test '
ehlo=$(grep '^S: 250' "$TR")
expect_match "EHLO reply is multi-line" "$(echo "$ehlo" | head -1)" '^S: 250-provider\.test$'
expect_match "EHLO advertises AUTH with SCRAM-SHA-256 and CRAM-MD5, not PLAIN" \
	"$(echo "$ehlo" | grep 'AUTH')" '^S: 250-AUTH SCRAM-SHA-256 CRAM-MD5$'
expect_match "EHLO advertises ATRN" "$ehlo" '^S: 250[- ]ATRN$'
expect_match "EHLO last line is '250 <text>'" "$(echo "$ehlo" | tail -1)" '^S: 250 [^ ]'
tc "EHLO without argument -> 501" "220 501" line=EHLO
tc "EHLO twice, lower-case verbs, NOOP and RSET -> 250" "220 250 250 250 250" \
	ehlo=one.test line='ehlo two.test' line=noop line=RSET
tc "unknown command -> 502" "220 502 502" line='VRFY alice' line='HELO x.test'

# --- AUTH ---
tc "AUTH before EHLO -> 503" "220 503" line='AUTH CRAM-MD5'
tc "CRAM-MD5, good password -> 235" "220 250 235" ehlo cram=$A
tc "CRAM-MD5, wrong password -> 535" "220 250 535" ehlo cram=alice:wrong
tc "CRAM-MD5, unknown user -> 535" "220 250 535" ehlo cram=mallory:alice-secret
tc "CRAM-MD5 for bob -> 235" "220 250 235" ehlo cram=$B
# SCRAM-SHA-256: the server-final message (v=...) comes in a 334, the client answers with an empty
# line, then 235; odmrclient.py verifies the server signature.
expect_eq "SCRAM-SHA-256, good password -> 235 (server signature verified)" \
	"$(odmrc ehlo scram=$A)" "220 250 235"
tc "SCRAM-SHA-256, wrong password -> 535" "220 250 535" ehlo scram=alice:wrong
tc "PLAIN is not advertised by default -> 504" "220 250 504" ehlo plain=$A
tc "unknown mechanism -> 504" "220 250 504" ehlo line='AUTH NOSUCH-MECH'
tc "AUTH without mechanism -> 501" "220 250 501" ehlo line=AUTH
tc "'*' cancels the exchange -> 501, then AUTH works again" "220 250 334 501 235" \
	ehlo line='AUTH CRAM-MD5' line='*' cram=$A
tc "invalid base64 response -> 501" "220 250 334 501" ehlo line='AUTH CRAM-MD5' line='!!!notbase64'
# auth.c maps SASL_BADPROT with an initial response to AUTH_SYNTAX; session.c answers 501.
tc "initial response to CRAM-MD5 -> 501" "220 250 501" ehlo cram-ir=$A
tc "invalid base64 initial response -> 501" "220 250 501" ehlo line='AUTH SCRAM-SHA-256 @@@@'
tc "3 failed AUTHs -> 535 535 535 421, connection closed" "220 250 535 535 535 421 EOF" \
	ehlo cram=alice:w1 cram=alice:w2 cram=alice:w3 read eof
tc "second AUTH after success -> 503" "220 250 235 503" ehlo cram=$A line='AUTH CRAM-MD5'
tc "EHLO after AUTH -> 503" "220 250 235 503" ehlo cram=$A ehlo

# --- ATRN ---
tc "ATRN before EHLO -> 530" "220 530" atrn=a.example
tc "ATRN before AUTH -> 530" "220 250 530" ehlo atrn=a.example
tc "ATRN bad syntax (empty label) -> 501" "220 250 235 501" ehlo cram=$A atrn=a.example,,b.example
tc "ATRN bad syntax (leading hyphen) -> 501" "220 250 235 501" ehlo cram=$A atrn=-a.example
tc "ATRN bad syntax (single label) -> 501" "220 250 235 501" ehlo cram=$A atrn=example
tc "ATRN with an empty argument -> 501" "220 250 235 501" ehlo cram=$A 'line=ATRN '
tc "ATRN for bob's domain as alice -> 450" "220 250 235 450" ehlo cram=$A atrn=c.example
tc "ATRN for own and bob's domain as alice -> 450" "220 250 235 450" ehlo cram=$A atrn=a.example,c.example
doms=$(seq -f 'd%g.example' 1 33 | paste -sd,)
tc "ATRN naming 33 domains (max_domains 32) -> 501" "220 250 235 501" ehlo cram=$A atrn="$doms"
# The handoff asks the MTA: here the fake postqueue of t_fake_mta, whose queue is empty, so a
# granted ATRN is 453 (the 250 with mail queued: t-15, t-20, t-30, t-31).
rm -f "$WORK/bin/postqueue.calls"
tc "ATRN for own domain, nothing queued -> 453" "220 250 235 453" ehlo cram=$A atrn=a.example
check "453 came from asking the (fake) MTA queue: postqueue -j" grep -qx -- '-j' "$WORK/bin/postqueue.calls"
tc "ATRN without argument (all of bob's domains), nothing queued -> 453" "220 250 235 453" ehlo cram=$B atrn
log_wait 'ATRN from 127\.0\.0\.1 user=bob@provider\.test asked=\*' 5
check "log: ATRN without argument is logged as asked=*" \
	grep -q 'ATRN from 127\.0\.0\.1 user=bob@provider\.test asked=\*' "$WORK/odmrd.log"
tc "ATRN followed by QUIT in the same write -> 554, closed" "220 250 235 554 EOF" \
	ehlo cram=$A 'raw=ATRN a.example\r\nQUIT\r\n' eof
tc "ATRN followed by a partial line in the same write -> 554, closed" "220 250 235 554 EOF" \
	ehlo cram=$A 'raw=ATRN a.example\r\nQU' eof

tc "ATRN domain names are case-insensitive -> 453 (granted, nothing queued)" "220 250 235 453" ehlo cram=$A atrn=A.Example
tc "ATRN with a trailing comma -> 501" "220 250 235 501" ehlo cram=$A atrn=a.example,

# --- error limits: soft_error_limit 3 (tarpit), hard_error_limit 10 -> 421 ---
tc "10th error (hard_error_limit) -> 502 then 421, closed" \
	"220 502 502 502 502 502 502 502 502 502 502 421 EOF" \
	line=X1 line=X2 line=X3 line=X4 line=X5 line=X6 line=X7 line=X8 line=X9 line=X10 read eof

# --- QUIT in every state ---
tc "QUIT in the initial state -> 221, closed" "220 221 EOF" quit eof
tc "QUIT after EHLO -> 221, closed" "220 250 221 EOF" ehlo quit eof
tc "QUIT when authenticated -> 221, closed" "220 250 235 221 EOF" ehlo cram=$A quit eof

# --- framing violations ---
tc "pipelined 'EHLO x\\r\\nQUIT\\r\\n' in one write -> 554, closed" "220 554 EOF" 'raw=EHLO x\r\nQUIT\r\n' eof
tc "bare LF -> 500, closed" "220 500 EOF" 'raw=EHLO x.test\n' eof
tc "bare CR inside a line -> 500, closed" "220 500 EOF" 'raw=EHLO a\rb.test\r\n' eof
tc "NUL in a line -> 500, closed" "220 500 EOF" 'raw=EHLO x\x00y\r\n' eof
long510=$(printf 'x%.0s' $(seq 505))
tc "512-octet line (with CRLF) is accepted" "220 250" "line=NOOP $long510"
tc "513-octet line -> 500, closed" "220 500 EOF" "line=NOOP ${long510}x" eof
tc "8-bit octet in a command -> 500" "220 500" 'raw=EHLO caf\xe9.test\r\n'

# --- log escaping: control characters from the network never reach the log raw ---
tc "EHLO name with ESC -> 501" "220 501 221" 'raw=EHLO a\x1bb.test\r\n' quit
tc "AUTH mechanism with ESC -> 504" "220 250 504" ehlo 'raw=AUTH X\x1bY\r\n'
tc "ATRN argument with ESC -> 501" "220 250 235 501" ehlo cram=$A 'raw=ATRN a\x1b.example\r\n'
wait_sessions
check "log: the AUTH mechanism's ESC is logged escaped (X\\x1bY)" grep -qF 'unadvertised mechanism X\x1bY' "$WORK/odmrd.log"
check "log: the ATRN argument's ESC is logged escaped" grep -qF 'ATRN syntax error from 127.0.0.1: a\x1b.example' "$WORK/odmrd.log"
expect_eq "log: no raw ESC, CR or NUL anywhere" "$(tr -d -c '\033\r\000' <"$WORK/odmrd.log" | wc -c)" 0

# --- log contents for a successful AUTH ---
check "log: CRAM-MD5 success names the SASL user alice@provider.test" \
	grep -q 'AUTH CRAM-MD5 ok from 127\.0\.0\.1: user=alice@provider\.test$' "$WORK/odmrd.log"
check "log: ATRN refusal for bob's domain logged with 450 and reason" \
	grep -q 'asked=c\.example: 450 domain c\.example not this customer' "$WORK/odmrd.log"

# --- a failed AUTH names the user that was tried (libsasl2's SASL_CB_CANON_USER), escaped ---
check "log: failed CRAM-MD5, unknown user, names user=mallory" \
	grep -q 'AUTH CRAM-MD5 failed from 127\.0\.0\.1 user=mallory: 535 ' "$WORK/odmrd.log"
check "log: failed CRAM-MD5, wrong password, names user=alice" \
	grep -q 'AUTH CRAM-MD5 failed from 127\.0\.0\.1 user=alice: 535 ' "$WORK/odmrd.log"
check "log: failed SCRAM-SHA-256 names user=alice" \
	grep -q 'AUTH SCRAM-SHA-256 failed from 127\.0\.0\.1 user=alice: 535 ' "$WORK/odmrd.log"
tc "CRAM-MD5, user name with a blank, a quote and control octets -> 535" "220 250 535" \
	ehlo cram=$'ev il"\x01\x1b[2J:wrong'
log_wait 'AUTH CRAM-MD5 failed from 127\.0\.0\.1 user=ev' 5
expect_eq "log: the tried name is escaped (blank, quote, control octets as \\xHH)" \
	"$(grep -o 'AUTH CRAM-MD5 failed from 127\.0\.0\.1 user=ev[^:]*:' "$WORK/odmrd.log")" \
	'AUTH CRAM-MD5 failed from 127.0.0.1 user=ev\x20il\x22\x01\x1b[2J:'
tc "SCRAM-SHA-256, unknown user -> 535" "220 250 535" ehlo scram=mallory:x
log_wait 'AUTH SCRAM-SHA-256 failed from 127\.0\.0\.1 user=mallory: ' 5
check "log: failed SCRAM-SHA-256, unknown user, names user=mallory" \
	grep -q 'AUTH SCRAM-SHA-256 failed from 127\.0\.0\.1 user=mallory: 535 ' "$WORK/odmrd.log"

# --- configurations of their own ---
write_conf "$WORK/nomap.conf" customer_map="$WORK/no-such-map.db"
start_odmrd "$WORK/nomap.conf" || t_summary
tc "customer map missing -> ATRN 451" "220 250 235 451" ehlo cram=$A atrn=a.example
log_wait 'customer map .*no-such-map\.db' 5
check "log: missing map is named in the 451 reason" grep -q '451 customer map .*no-such-map\.db' "$WORK/odmrd.log"

write_conf "$WORK/pause.conf" greet_pause_ms=300
start_odmrd "$WORK/pause.conf" || t_summary
tc "data before the greeting (greet_pause_ms 300) -> 554, closed" "554 EOF" --early 'EHLO x.test\r\n' eof
tc "patient client after greet_pause_ms -> 220" "220 250 221" ehlo quit

write_conf "$WORK/idle.conf" idle_timeout=2
start_odmrd "$WORK/idle.conf" || t_summary
t0=$SECONDS
tc "idle timeout (idle_timeout 2) -> 421, closed" "220 250 421 EOF" ehlo read eof
if [ $((SECONDS - t0)) -le 8 ]; then ok "idle timeout fired within 8 s"; else fail "idle timeout took $((SECONDS - t0)) s"; fi

write_conf "$WORK/session.conf" session_timeout=2 idle_timeout=10
start_odmrd "$WORK/session.conf" || t_summary
tc "session timeout (session_timeout 2) despite activity -> 421, closed" "220 250 250 250 250 421 EOF" \
	ehlo line=NOOP sleep=0.8 line=NOOP sleep=0.8 line=NOOP read eof
log_wait 'session timeout for 127\.0\.0\.1' 5
check "log: 'session timeout' (not idle)" grep -q 'session timeout for 127\.0\.0\.1' "$WORK/odmrd.log"

# No sasl_mech_list: CRAM-MD5 only (SCRAM in libsasl2 tells known users from unknown ones).
write_conf "$WORK/defmech.conf" -sasl_mech_list
start_odmrd "$WORK/defmech.conf" || t_summary
TR=$WORK/defmech.transcript
tc "default mechanisms: CRAM-MD5 works" "220 250 235" --transcript "$TR" ehlo cram=$A
check "default mechanisms: the AUTH line is exactly CRAM-MD5" grep -qx 'S: 250-AUTH CRAM-MD5' "$TR"
tc "default mechanisms: SCRAM-SHA-256 not offered -> 504" "220 250 504" ehlo scram=$A

write_conf "$WORK/plain.conf" sasl_mech_list="CRAM-MD5 PLAIN"
start_odmrd "$WORK/plain.conf" || t_summary
TR=$WORK/plain.transcript
# PLAIN and LOGIN are offered only under TLS, whatever the admin lists (issue 10; t-60-tls shows
# them listed and working after STARTTLS, and a wrong password refused there).
tc "PLAIN listed by the admin, no TLS -> not offered, 504" "220 250 504 235" --transcript "$TR" ehlo plain=$A cram=$A
check "PLAIN listed by the admin is not advertised in the clear" sh -c "! grep -q '^S: 250-AUTH .*PLAIN' '$TR'"

# --- what a session loads, and when (ld.so's own trace: LD_DEBUG, one file per process) ---
# ld_trace_of N: the LD_DEBUG output of the odmrd that served connection N of the last inetd1.py.
ld_trace_of() {
	local pid
	pid=$(sed -n "s/^conn $1 pid=\([0-9]*\) .*/\1/p" "$INETD_LOG")
	echo "$WORK/ld.${pid:-none}"
}
# The queue listing has one message, another customer's, so the probe parses JSON and finds
# nothing of ours (453).
cat >"$WORK/bin/postqueue-other" <<FAKE
#!/bin/sh
echo "\$*" >>"$WORK/bin/postqueue-other.calls"
case " \$* " in *" -j "*) echo '{"queue_name": "deferred", "queue_id": "4ABC", "recipients": [{"address": "u@c.example"}]}' ;; esac
exit 0
FAKE
chmod 755 "$WORK/bin/postqueue-other"
write_conf "$WORK/ld.conf" postqueue="$WORK/bin/postqueue-other"
# Not under ODMRD_WRAPPER (valgrind): ld.so keeps its trace file open, which --track-fds reports.
ODMRD_WRAPPER= LD_DEBUG=files,bindings LD_DEBUG_OUTPUT=$WORK/ld start_odmrd "$WORK/ld.conf" || t_summary
tc "no EHLO, QUIT -> 221" "220 221" quit
tc "EHLO, QUIT -> 250 221" "220 250 221" ehlo quit
tc "granted ATRN, another customer's mail queued -> 453" "220 250 235 453" ehlo cram=$A atrn=a.example
check "the probe listed the queue" grep -q -- '-j' "$WORK/bin/postqueue-other.calls"
wait_sessions
T1=$(ld_trace_of 1) T2=$(ld_trace_of 2) T3=$(ld_trace_of 3)
check "ld.so trace written for the three sessions" test -s "$T1" -a -s "$T2" -a -s "$T3"
# Not linked: GDBM and jansson are opened by the session that needs them (dynlib.c).
expect_eq "odmrd is not linked with libgdbm or libjansson (DT_NEEDED)" \
	"$(readelf -dW "$ODMRD" | grep -cE 'NEEDED.*(libgdbm|libjansson)')" 0
expect_eq "a session that never says EHLO loads no SASL plugin" \
	"$(grep -cE 'file=[^ ]*sasl2/lib' "$T1")" 0
check "after EHLO the sasldb plugin is loaded" grep -qE 'file=[^ ]*sasl2/libsasldb' "$T2"
expect_eq "sessions without ATRN load neither libgdbm nor libjansson" \
	"$(cat "$T1" "$T2" | grep -cE 'file=libgdbm|file=libjansson')" 0
check "a granted ATRN loads libgdbm (customer map)" grep -q 'file=libgdbm' "$T3"
check "a granted ATRN loads libjansson (parsing the Postfix queue listing)" grep -q 'file=libjansson' "$T3"
# The plugins are opened lazily before libsasl2 opens them with RTLD_NOW (auth_verifyfile), so a
# library the sasldb plugin pulls in (Berkeley DB on Debian) is not bound eagerly: fewer symbol
# bindings than it has PLT entries. With RTLD_NOW every PLT entry was bound at start-up.
for dep in $(sed -n 's/.*file=\([^ ]*\) \[0\];  needed by [^ ]*sasl2\/libsasldb.*/\1/p' "$T2" | sort -u); do
	path=$(grep -oE "binding file [^ ]*/$dep " "$T2" | head -1 | awk '{print $3}')
	[ -n "$path" ] || continue
	nplt=$(readelf -rW "$path" | grep -c JUMP_SLOT)
	nbind=$(grep -c "binding file $path " "$T2")
	check "$dep (needed by the sasldb plugin) bound lazily: $nbind bindings < $nplt PLT entries" \
		test "$nbind" -lt "$nplt"
done
stop_odmrd
rm -f "$WORK"/ld.*

# SASL that cannot work is found at the first EHLO: 421 there, the reason in the log.
write_conf "$WORK/nomech.conf" sasl_mech_list=NO-SUCH-MECH
start_odmrd "$WORK/nomech.conf" || t_summary
tc "no usable SASL mechanism -> 220, then 421 to EHLO, closed" "220 421 EOF" ehlo eof
log_wait 'cannot serve 127\.0\.0\.1: no usable SASL mechanism' 5
check "log: the 421 names the SASL problem" \
	grep -q 'cannot serve 127\.0\.0\.1: no usable SASL mechanism' "$WORK/odmrd.log"

nsum_ok=$(cat "${T_INETD_LOGS[@]}" | grep -c '^conn ')

# A config error: the customer still gets a 421 (naming the configured host, not "localhost") and
# the admin learns file:line: key.
write_conf "$WORK/bad.conf" log_file="$WORK/bad.log" 'RAW:no_such_key = 1'
start_odmrd "$WORK/bad.conf" || t_summary
badline=$(grep -n '^no_such_key' "$WORK/bad.conf" | cut -d: -f1)
TR=$WORK/bad.transcript
tc "config with an unknown key -> 421 greeting, closed" "421 EOF" --transcript "$TR" eof
expect_match "the 421 names the configured host" "$(head -1 "$TR")" '^S: 421 provider\.test '
wait_sessions
# A config that fails after its log_file line still logs there.
expect_eq "log: config error names file:line: key" \
	"$(grep -o "bad\.conf:$badline: no_such_key: unknown key" "$WORK/bad.log" 2>/dev/null | head -1)" \
	"bad.conf:$badline: no_such_key: unknown key"
# The broken line before the hostname line: the 421 still names the configured host.
printf 'log_file = %s\nsasl_mech_lst = CRAM-MD5\nhostname = odmr.provider.test\n' "$WORK/bad2.log" >"$WORK/bad2.conf"
start_odmrd "$WORK/bad2.conf" || t_summary
TR=$WORK/bad2.transcript
tc "misspelt sasl_* key -> 421 greeting, closed" "421 EOF" --transcript "$TR" eof
expect_match "the 421 names the host configured after the broken line" "$(head -1 "$TR")" \
	'^S: 421 odmr\.provider\.test '
wait_sessions
check "log: the misspelt sasl_ key is named" \
	grep -q "bad2\.conf:2: sasl_mech_lst: unknown key" "$WORK/bad2.log"

# --- log_file: root opens it, so a link planted where the session's user can write is refused ---
# log_file lies in a directory that user nobody owns (where a compromised session could plant
# things). odmrd opens it as root before dropping privileges: a symbolic link to a root-only file,
# a FIFO, or a hard link to that file must not be used; the session still runs, and syslog says
# why. syslog is a socket of ours: odmrd runs in a private mount namespace (unshare -m) whose /dev
# holds null, zero, random, urandom and log = tests/lib/syslog_sink.py.
if [ "$(id -u)" = 0 ] && unshare -m true 2>/dev/null && id nobody >/dev/null 2>&1; then
	NS=$WORK/ns
	mkdir -p "$NS/dev" "$WORK/logdir"
	chown nobody "$WORK/logdir"
	for f in null zero random urandom; do : >"$NS/dev/$f"; done
	ln -sfn /proc/self/fd "$NS/dev/fd"
	SYSLOG=$WORK/syslog.txt
	: >"$SYSLOG"
	spawn "$PY" "$LIB/syslog_sink.py" "$NS/dev/log" "$SYSLOG" >"$WORK/syslog_sink.out"
	wait_for 5 grep -q ready "$WORK/syslog_sink.out" || fail "syslog_sink.py did not start"
	cat >"$WORK/nspy" <<-EOF
		#!/bin/sh
		# python3 (and the odmrd it starts) in a private mount namespace whose /dev/log is the test's
		exec unshare -m --propagation private sh -c '
			for f in null zero random urandom; do mount --bind /dev/\$f "\$1/dev/\$f" || exit 1; done
			mount --rbind "\$1/dev" /dev || exit 1
			shift; exec python3 "\$@"' nspy "$NS" "\$@"
	EOF
	chmod 755 "$WORK/nspy"
	ROOTFILE=$WORK/root-only.txt
	printf 'root only\n' >"$ROOTFILE"
	chmod 600 "$ROOTFILE"
	# logfile_case NAME WHY-ERE: plant $WORK/logdir/NAME.log beforehand; one session; judge.
	logfile_case() {
		local name=$1 why=$2 lf=$WORK/logdir/$1.log
		write_conf "$WORK/$name.conf" log_file="$lf"
		PY=$WORK/nspy start_odmrd "$WORK/$name.conf" || return
		expect_eq "log_file $name: the session is served anyway (220 250 221)" \
			"$(odmrc ehlo=$name.test quit)" "220 250 221"
		wait_sessions
		stop_odmrd
		expect_eq "log_file $name: the root-only file is unchanged" "$(cat "$ROOTFILE")" "root only"
		check "log_file $name: syslog says it was refused ($why)" \
			grep -qE "odmrd\[[0-9]+\]: log_file $lf refused \($why\); logging to syslog" "$SYSLOG"
		check "log_file $name: ... and gets the session's lines instead" \
			grep -qE "odmrd\[[0-9]+\]: session peer=127\.0\.0\.1 helo=$name\.test " "$SYSLOG"
	}
	ln -s "$ROOTFILE" "$WORK/logdir/symlink.log"
	logfile_case symlink 'is a symbolic link'
	mkfifo "$WORK/logdir/fifo.log"
	logfile_case fifo 'is not a regular file'
	ln "$ROOTFILE" "$WORK/logdir/hardlink.log"
	logfile_case hardlink 'has 2 hard links'
	# Control: a plain path in the same directory, same namespace, is used (nothing to syslog).
	write_conf "$WORK/plainlog.conf" log_file="$WORK/logdir/plain.log"
	PY=$WORK/nspy start_odmrd "$WORK/plainlog.conf" || t_summary
	expect_eq "log_file control: a new regular file -> served" "$(odmrc ehlo=plainlog.test quit)" "220 250 221"
	wait_sessions
	stop_odmrd
	check "log_file control: the file gets the session's lines" \
		grep -q 'session peer=127\.0\.0\.1 helo=plainlog\.test ' "$WORK/logdir/plain.log"
	check "log_file control: nothing about it in syslog" sh -c "! grep -q 'plain\.log\|plainlog' '$SYSLOG'"
else
	echo "SKIP - log_file link cases (need root, unshare -m and user nobody)"
fi

# --- one summary line per session, well-formed ---
wait_sessions
nsum=$(log_count '^[-0-9T:]+ odmrd\[[0-9]+\]: session peer=')
expect_eq "log: one 'session peer=... user=... code=...' line per session" "$nsum" "$nsum_ok"
# Fields are key=value without spaces; peer, helo, user, mech and code are required, others may come.
bad=$(grep ': session peer=' "$WORK/odmrd.log" |
	grep -vE ': session peer=127\.0\.0\.1 helo=[^ ]+ user=[^ ]+ mech=[^ ]+( [a-z_]+=[^ ]+)* code=[0-9]{3}( [a-z_]+=[^ ]+)*$' || true)
expect_eq "log: every summary line is well-formed" "$bad" ""
check "log: summary of an authenticated session" \
	grep -qE 'session peer=127\.0\.0\.1 helo=client\.test user=alice@provider\.test mech=CRAM-MD5 .*code=221( |$)' "$WORK/odmrd.log"
check_no_crashes
check "odmrd wrote nothing to stderr" test ! -s "$WORK/inetd1.stderr"

# --- no hostname: gethostname(2) as it is, never completed through the resolver ---
# In private UTS and mount namespaces: host name "odmrt-short", and an /etc/hosts that would
# complete it to "odmrt-short.resolver.test" for anyone who asked the resolver.
if [ "$(id -u)" = 0 ] && unshare -u -m true 2>/dev/null; then
	printf '127.0.0.1\todmrt-short.resolver.test odmrt-short\n' >"$WORK/hosts"
	write_conf "$WORK/nohost.conf" -hostname log_file="$WORK/nohost.log"
	# shellcheck disable=SC2016
	spawn unshare -u -m --propagation private sh -c 'set -e; hostname odmrt-short
		mount --bind "$1" /etc/hosts; shift; exec "$@"' t10-ns "$WORK/hosts" \
		"$PY" "$LIB/inetd1.py" --port-file "$WORK/nohost.port" --log "$WORK/nohost.inetd" -- \
		${ODMRD_WRAPPER:-} "$ODMRD" -f "$WORK/nohost.conf" >/dev/null
	if wait_for 10 test -s "$WORK/nohost.port"; then
		PORT=$(cat "$WORK/nohost.port")
		TR=$WORK/nohost.transcript
		tc "no hostname: greeting and EHLO -> 220 250 221" "220 250 221" --transcript "$TR" ehlo quit
		expect_match "no hostname: the greeting names gethostname() as is" "$(sed -n 1p "$TR")" \
			'^S: 220 odmrt-short ESMTP '
	else
		fail "inetd1.py in a private UTS namespace did not start"
	fi
	kill_tree "$BG_PID"
	expect_eq "the real host name is untouched" "$(hostname)" "$T10_HOSTNAME"
else
	echo "skip: the no-hostname case needs root and unshare -u -m"
fi

t_summary
