# shellcheck shell=bash
# tests/lib/e2e.sh - MTA-neutral helpers for odmrd's end-to-end suites (real MTA, real fetchmail).
#
# Why: the Postfix suite (t-30) and a Sendmail suite need the same customer side - the customer's
# local SMTP server (smtpsink.py), real fetchmail as the ODMR customer, a record of every injected
# message and a check that each arrived exactly once with envelope and body intact - and the same
# after-session invariants (no odmrd, no runner, nothing left in run_dir). Nothing here knows
# which MTA holds the mail: injection takes the MTA's send function (pf_send, sm_send, ...).
#
# Source after tests/lib/common.sh (uses WORK, LIB, PY, spawn, kill_tree, wait_for, wait_sessions).
#
#   e2e_sink_start NAME [SMTPSINK-OPTION...]  smtpsink.py on a free loopback port, messages in
#                                      $WORK/sink-NAME; sets SINK_PORT SINK_PID SINK_DIR SINK_LOG
#   e2e_sink_stop                      stop the current sink
#   e2e_sink_files [DIR]               number of messages stored in DIR (default $SINK_DIR)
#   e2e_sink_conns [LOG]               number of connections the sink accepted
#   e2e_tail_ms [LOG]                  the QUIT tail seen by the customer: ms from the sink's
#                                      last end-of-data reply to odmrd's QUIT ("-" if none)
#   e2e_fetchmail NAME USER PASS DOMAINS [ODMR-PORT]
#                                      real fetchmail (private HOME/FETCHMAILHOME and --pidfile:
#                                      as root it would share /var/run/fetchmail.pid; rcfile 0600,
#                                      fetchdomains DOMAINS, smtphost 127.0.0.1/$SINK_PORT) against
#                                      ODMR-PORT (default $PORT); bounded by E2E_FM_TIMEOUT (120 s).
#                                      Sets FM_RC (exit status), FM_MS (wall ms), FM_OUT (its -v log).
#                                      E2E_FM_OPTS: more rcfile keywords for the user, e.g. TLS:
#                                      "ssl sslcertck sslcertfile CA sslcommonname NAME"
#   e2e_inject SENDFN ID FROM RCPT... < MESSAGE
#                                      record the message in $E2E_MANIFEST (an "X-E2E-Id: ID" header
#                                      is put first) and queue it with `SENDFN FROM RCPT...`
#   e2e_reinject SENDFN PREFIX ID...   queue each ID's manifest message again as PREFIX-ID: the
#                                      same envelope and content, under a new X-E2E-Id
#   e2e_verify SINKDIRS SPEC...        compare the sink(s) (colon-separated dirs) with the manifest;
#                                      SPEC = ID | ID@domain | ID=rcpt (ID may be a glob): the
#                                      deliveries expected, each exactly once, and nothing else.
#                                      Prints "deliveries=N files=N" then one line per problem;
#                                      status 0 iff no problem
#   e2e_log_mark / e2e_log_new         remember odmrd's log length / print the lines added since
#   e2e_log_wait ERE [SECONDS]         wait for a new log line (since the mark) matching ERE
#   e2e_msg_check SINKDIRS [MAILLOG]   odmrd's per-message "msg" lines (from e2e_log_new) against
#                                      what the sink(s) stored (issue 13): each result=sent line
#                                      quotes the sink's reply "stored as NNNNNN.msg"; that file's
#                                      MAIL FROM (escaped as odmrd escapes), accepted RCPTs and
#                                      data length must be the line's from=, accepted= and size=,
#                                      and no file is named twice. With MAILLOG (Postfix's), each
#                                      accepted recipient has its lmtp "to=<rcpt>,
#                                      relay=...[.../domain], ... status=sent (reply)" line there,
#                                      and Postfix's qmgr line of that queue ID the same size=
#                                      (unless the message has control characters). Prints "sent=N" then one
#                                      line per problem; status 0 iff no problem
#   e2e_session_fields                 from e2e_log_new: "atrn=NNN code=NNN result=R" (ATRN reply,
#                                      then the summary line's last code and result)
#   e2e_leftovers RUNDIR RUNNER-ERE [ODMRD-ERE]
#                                      print what a finished session must not leave: odmrd
#                                      processes (command line matching ODMRD-ERE, default: any
#                                      "odmrd -f $WORK/..."), MTA runner processes matching
#                                      RUNNER-ERE, entries in RUNDIR, open files under RUNDIR
#
# Variables: E2E_MANIFEST (default $WORK/manifest), E2E_FM_TIMEOUT, E2E_ODMRD_LOG (default
# $WORK/odmrd.log).

E2E_MANIFEST=${E2E_MANIFEST:-$WORK/manifest}
E2E_FM_TIMEOUT=${E2E_FM_TIMEOUT:-120}
E2E_ODMRD_LOG=${E2E_ODMRD_LOG:-$WORK/odmrd.log}
E2E_LOG_MARK=0
mkdir -p "$E2E_MANIFEST"

# --- the customer's local SMTP server ------------------------------------------------------------

# e2e_sink_start NAME [SMTPSINK-OPTION...]: start a fresh sink (its directory emptied first).
e2e_sink_start() {
	local name=$1
	shift
	SINK_DIR=$WORK/sink-$name
	SINK_LOG=$WORK/sink-$name.log
	rm -rf "$SINK_DIR" "$SINK_LOG" "$SINK_DIR.port"
	mkdir -p "$SINK_DIR"
	spawn "$PY" "$LIB/smtpsink.py" --port 0 --port-file "$SINK_DIR.port" --outdir "$SINK_DIR" \
		--log "$SINK_LOG" "$@" >/dev/null 2>>"$WORK/sink-$name.stderr"
	SINK_PID=$BG_PID
	if ! wait_for 10 test -s "$SINK_DIR.port"; then
		echo "e2e.sh: smtpsink.py did not start (see $WORK/sink-$name.stderr)" >&2
		return 1
	fi
	SINK_PORT=$(cat "$SINK_DIR.port")
}

# e2e_sink_stop: stop the sink started last.
e2e_sink_stop() {
	[ -n "${SINK_PID:-}" ] && kill_tree "$SINK_PID"
	SINK_PID=
}

# e2e_sink_files [DIR]: messages stored.
e2e_sink_files() {
	find "${1:-$SINK_DIR}" -maxdepth 1 -name '*.msg' | wc -l
}

# e2e_sink_conns [LOG]: connections accepted.
e2e_sink_conns() {
	grep -c ' connect$' "${1:-$SINK_LOG}" 2>/dev/null || true
}

# e2e_tail_ms [LOG]: from the customer's side (its SMTP server's transcript, which fetchmail's
# relay passes through unchanged): the time from the last "250 ... stored" reply to the QUIT that
# ends that session, in ms; "-" when the log has no such pair.
e2e_tail_ms() {
	awk '/> 250 2\.0\.0 Ok: stored/ { t = $1 } /< QUIT/ { if (t) tail = ($1 - t) * 1000; t = 0 }
		END { if (tail == "") print "-"; else printf "%d\n", tail }' "${1:-$SINK_LOG}" 2>/dev/null
}

# --- the ODMR customer -------------------------------------------------------------------------------

# e2e_fetchmail NAME USER PASS DOMAINS [ODMR-PORT]: one fetchmail run; never fails itself.
e2e_fetchmail() {
	local name=$1 user=$2 pass=$3 doms=$4 port=${5:-$PORT} home t0 t1
	home=$WORK/fm-$name
	rm -rf "$home"
	mkdir -p "$home"
	chmod 700 "$home"
	cat >"$home/fetchmailrc" <<-EOF
		poll 127.0.0.1 protocol odmr service $port timeout 60
		    user "$user" password "$pass" fetchdomains $doms ${E2E_FM_OPTS:-}
		    smtphost 127.0.0.1/$SINK_PORT
	EOF
	chmod 600 "$home/fetchmailrc"
	FM_OUT=$home/out
	t0=$(date +%s%N)
	HOME=$home FETCHMAILHOME=$home timeout -k 5 "$E2E_FM_TIMEOUT" \
		"${T_FETCHMAIL[@]}" -f "$home/fetchmailrc" --nosyslog -v --pidfile "$home/fetchmail.pid" \
		</dev/null >"$FM_OUT" 2>&1
	FM_RC=$?
	t1=$(date +%s%N)
	FM_MS=$(((t1 - t0) / 1000000))
	return 0
}

# --- injected messages and what arrived ----------------------------------------------------------

# e2e_inject SENDFN ID FROM RCPT... < MESSAGE
e2e_inject() {
	local fn=$1 id=$2 from=$3
	shift 3
	{
		printf 'X-E2E-Id: %s\n' "$id"
		cat
	} >"$E2E_MANIFEST/$id.eml" || return
	printf '%s\n' "$from" "$@" >"$E2E_MANIFEST/$id.env" || return
	"$fn" "$from" "$@" <"$E2E_MANIFEST/$id.eml"
}

# e2e_reinject SENDFN PREFIX ID...
e2e_reinject() {
	local fn=$1 prefix=$2 id
	local -a env
	shift 2
	for id in "$@"; do
		mapfile -t env <"$E2E_MANIFEST/$id.env" || return
		tail -n +2 "$E2E_MANIFEST/$id.eml" | e2e_inject "$fn" "$prefix-$id" "${env[@]}" || return
	done
}

# e2e_verify SINKDIRS SPEC...
e2e_verify() {
	local sinks=$1
	shift
	"$PY" - "$LIB" "$E2E_MANIFEST" "$sinks" "$@" <<-'PY'
		import collections, fnmatch, glob, os, re, sys
		lib, mdir, sinks, specs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
		sys.path.insert(0, lib)
		from smtpsink import read_message

		problems = []
		man = {}
		for env in glob.glob(os.path.join(mdir, "*.env")):
		    mid = os.path.basename(env)[:-4]
		    with open(env, "rb") as f:
		        lines = f.read().decode("utf-8", "surrogateescape").splitlines()
		    with open(env[:-4] + ".eml", "rb") as f:
		        eml = f.read()
		    man[mid] = (lines[0].strip("<>"), lines[1:], eml)

		expected = set()
		for s in specs:
		    if "=" in s:
		        pat, arg = s.split("=", 1)
		        sel = lambda r, arg=arg: r == arg
		    elif "@" in s:
		        pat, arg = s.split("@", 1)
		        sel = lambda r, arg=arg: r.rpartition("@")[2].lower() == arg.lower()
		    else:
		        pat, sel = s, (lambda r: True)
		    hits = [(i, r) for i in man if fnmatch.fnmatchcase(i, pat) for r in man[i][1] if sel(r)]
		    if not hits:
		        problems.append("spec %r matches no injected recipient" % s)
		    expected.update(hits)

		seen = collections.Counter()
		files = 0
		for d in sinks.split(":"):
		    for path in sorted(glob.glob(os.path.join(d, "*.msg"))):
		        files += 1
		        name = os.path.relpath(path, os.path.dirname(d))
		        m = read_message(path)
		        data = m["data"]
		        head = data.split(b"\r\n\r\n", 1)[0]
		        hit = re.search(rb"(?mi)^X-E2E-Id: *(\S+)\r?$", head)
		        if not hit:
		            problems.append("%s: no X-E2E-Id header (not an injected message)" % name)
		            continue
		        mid = hit.group(1).decode("ascii", "replace")
		        if mid not in man:
		            problems.append("%s: unknown id %s" % (name, mid))
		            continue
		        sender, rcpts, eml = man[mid]
		        got_from = (m["mail_from"] or b"").decode("utf-8", "surrogateescape")
		        if m["mail_from"] is None or got_from != sender:
		            problems.append("%s (%s): MAIL FROM %r, injected %r" % (name, mid, m["mail_line"], sender))
		        ihead, body = eml.split(b"\n\n", 1)
		        want = body.replace(b"\n", b"\r\n")
		        if not data.endswith(want):
		            k = 0
		            while k < min(len(want), len(data)) and want[-1 - k] == data[-1 - k]:
		                k += 1
		            problems.append("%s (%s): body differs: %d bytes received, injected body %d, "
		                            "common tail %d; near the difference got %r want %r"
		                            % (name, mid, len(data), len(want), k,
		                               data[max(0, len(data) - k - 20):len(data) - k][-20:],
		                               want[max(0, len(want) - k - 20):len(want) - k][-20:]))
		        elif ihead.replace(b"\n", b"\r\n") + b"\r\n" not in data[:len(data) - len(want)]:
		            problems.append("%s (%s): injected header lines not found unchanged" % (name, mid))
		        if not m["rcpts"]:
		            problems.append("%s (%s): no RCPT" % (name, mid))
		        for r in m["rcpts"]:
		            r = (r or b"").decode("utf-8", "surrogateescape")
		            if r not in rcpts:
		                problems.append("%s (%s): RCPT %s was not an envelope recipient" % (name, mid, r))
		            seen[(mid, r)] += 1

		for k in sorted(expected):
		    if seen[k] != 1:
		        problems.append("%s=%s delivered %d times, want once" % (k[0], k[1], seen[k]))
		for k in sorted(seen):
		    if k not in expected:
		        problems.append("%s=%s delivered %d times, want never (here)" % (k[0], k[1], seen[k]))
		print("deliveries=%d files=%d" % (sum(seen.values()), files))
		for p in problems[:20]:
		    print("  " + p)
		if len(problems) > 20:
		    print("  ... %d more problems" % (len(problems) - 20))
		sys.exit(1 if problems else 0)
	PY
}

# --- odmrd's log ---------------------------------------------------------------------------------

# e2e_msg_check SINKDIRS [MAILLOG]
e2e_msg_check() {
	"$PY" - "$LIB" "$1" "${2:-}" <(e2e_log_new) <<-'PY'
		import os, re, sys
		lib, sinks, maillog, odmrdlog = sys.argv[1:5]
		sys.path.insert(0, lib)
		from smtpsink import read_message

		def esc(b):
		    # log.c's log_esc: printable ASCII but space, backslash and quote; the rest \xHH
		    return "".join(chr(c) if 0x21 <= c < 0x7f and c not in (0x5c, 0x22) else "\\x%02x" % c
		                   for c in b)

		files = {}
		for d in sinks.split(":"):
		    for n in os.listdir(d):
		        if n.endswith(".msg"):
		            files.setdefault(n, os.path.join(d, n))
		mlog = open(maillog, encoding="utf-8", errors="replace").read() if maillog else ""
		problems, sent, seen = [], 0, set()
		for line in open(odmrdlog, encoding="utf-8", errors="replace").read().splitlines():
		    if "]: msg " not in line:
		        continue
		    f = dict(re.findall(r' ([a-z_]+)=("[^"]*"|\S+)', line))
		    if f.get("result") != "sent":
		        continue
		    sent += 1
		    m = re.search(r"stored as (\d+\.msg)", f.get("reply", ""))
		    if not m or m.group(1) not in files:
		        problems.append("no stored file for: " + line)
		        continue
		    name = m.group(1)
		    if name in seen:
		        problems.append("%s named twice: %s" % (name, line))
		    seen.add(name)
		    msg = read_message(files[name])
		    want = {"from": "<%s>" % esc(msg["mail_from"] or b""),
		            "size": str(len(msg["data"])),
		            "accepted": ",".join("<%s>" % esc(r or b"") for r in msg["rcpts"])}
		    for k, v in want.items():
		        if f.get(k) != v:
		            problems.append("%s: %s=%s, the sink has %s" % (name, k, f.get(k), v))
		    if maillog:
		        reply = re.escape(f["reply"].strip('"'))
		        for r in msg["rcpts"]:
		            # not by pid: a cached connection opened by one lmtp process (mta_pid) may
		            # carry another's delivery (Postfix logs conn_use=N)
		            pat = r"lmtp\[\d+\]: (\w+): to=<%s>, relay=[^[]*\[[^]]*/%s\],.* status=sent \(%s\)" % (
		                re.escape(r.decode("utf-8", "replace")), re.escape(f["domain"]), reply)
		            hits = list(re.finditer(pat, mlog))   # the latest: names repeat over sessions
		            hit = hits[-1] if hits else None
		            if not hit:
		                problems.append("%s: no Postfix line %s" % (name, pat))
		                continue
		            # the same size as Postfix's qmgr line for that queue ID (not for a message with
		            # control characters: t-30's "latin1", every octet 0x01-0xff, is one more there)
		            qs = re.findall(r": %s: from=<[^>]*>, size=(\d+)," % hit.group(1), mlog)
		            if f["size"] not in qs and not re.search(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", msg["data"]):
		                problems.append("%s: size=%s, Postfix's qmgr says size=%s" % (name, f["size"], qs))
		print("sent=%d" % sent)
		for p in problems[:20]:
		    print("  " + p)
		sys.exit(1 if problems else 0)
	PY
}

e2e_log_mark() {
	E2E_LOG_MARK=0
	[ -f "$E2E_ODMRD_LOG" ] && E2E_LOG_MARK=$(wc -l <"$E2E_ODMRD_LOG")
	return 0
}

e2e_log_new() {
	tail -n +"$((E2E_LOG_MARK + 1))" "$E2E_ODMRD_LOG" 2>/dev/null
}

# e2e_log_wait ERE [SECONDS]: wait until a line added since e2e_log_mark matches ERE.
e2e_log_wait() {
	wait_for "${2:-10}" e2e__log_has "$1"
}
e2e__log_has() { e2e_log_new | grep -qE -- "$1"; }

# e2e_session_fields: one line "atrn=NNN code=NNN result=R" per session logged since
# e2e_log_mark, joined by spaces: the ATRN reply, the summary line's last reply code and result.
# The ATRN reply comes from the summary's atrn= when odmrd logs it, else from the "ATRN from"
# line (250 when reversing, else the refusal code); if both exist and differ: atrn=LINE/SUMMARY.
e2e_session_fields() {
	e2e_log_new | awk '
		/ ATRN from .*: reversing$/ { a = "250"; next }
		/ ATRN from .*: [0-9][0-9][0-9] / { s = $0; sub(/.*: /, "", s); a = substr(s, 1, 3); next }
		/ session peer=/ {
			sa = ""; c = ""; r = ""
			for (i = 1; i <= NF; i++) {
				if ($i ~ /^atrn=/) sa = substr($i, 6)
				if ($i ~ /^code=/) c = $i
				if ($i ~ /^result=/) r = $i
			}
			if (a == "") a = sa
			else if (sa != "" && sa != a) a = a "/" sa
			out = out (out == "" ? "" : " ") "atrn=" (a == "" ? "-" : a) " " c " " r
			a = ""
		}
		END { print out }'
}

# --- after a session -----------------------------------------------------------------------------

# e2e_leftovers RUNDIR RUNNER-ERE [ODMRD-ERE]: print anything a finished session left behind
# (empty = clean). Waits (bounded) for the sessions of every inetd1.py started by start_odmrd.
e2e_leftovers() {
	local rundir=$1 runner=$2 odmrd=${3:-"^[^ ]*odmrd -f $WORK/"} p f
	wait_sessions 30 || echo "inetd1: a session has not exited after 30 s"
	p=$(pgrep -f "$odmrd" | tr '\n' ' ')
	[ -n "$p" ] && echo "odmrd still running: $p"
	p=$(pgrep -f "$runner" | tr '\n' ' ')
	[ -n "$p" ] && echo "MTA runner still running: $p"
	f=$(find "$rundir" -mindepth 1 -printf '%f ' 2>/dev/null)
	[ -n "$f" ] && echo "left in $rundir: $f"
	f=$(find /proc/[0-9]*/fd -lname "$rundir/*" -printf '%h->%l ' 2>/dev/null)
	[ -n "$f" ] && echo "open under $rundir: $f"
	return 0
}
