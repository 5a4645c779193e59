# shellcheck shell=bash
# tests/lib/postfix.sh -- a private Postfix instance for odmrd's tests and demo.
# Source it; every function and variable it defines starts with pf_ / PF_.
#
# Postfix facts verified with this harness (Postfix 3.7.11, Debian 12) that
# odmrd's relay depends on:
#
# Holding and releasing
# - defer_transports = odmrl holds customer mail: each queue run defers it with
#   delay_reason "deferred transport" (dsn 4.3.2) WITHOUT connecting, even when the
#   socket exists.
# - `postqueue -c CONF -i QUEUE_ID` (Postfix >= 3.5) releases one message held by
#   defer_transports: lmtp connects at once. It also releases mail deferred before
#   its domain entered fast_flush_domains, which `postqueue -s` does not move. One
#   -i per run (a second one: usage error, exit 69); an unknown ID: exit 0, nothing.
#   ~6 ms wall, ~4 ms CPU per run here.
# - `postqueue -c CONF -s DOMAIN` returns in ~10 ms, exit 0; the first LMTP connect
#   follows ~10-20 ms later, asynchronously. Domain not in fast_flush_domains:
#   exit 69, stderr 'fatal: Flush service is not configured for destination "D"'.
#   It only moves mail already in the deferred queue.
# - A flush retries whole messages: flushing a.example also tried the message's
#   c.example recipient (reason then "connect to provider.test[RUNDIR/c.example]:
#   No such file or directory" when no socket is bound for it).
# - After a 4xx from the relay during a flush, Postfix tried that recipient AGAIN
#   through lmtp on a new connection minimal_backoff_time (here 2 s) later, despite
#   defer_transports; only the run after that re-deferred it as "deferred transport".
#   With a longer backoff this retry finds no socket ("No such file or directory").
#   So: a session may see more connections after an earlier one got 4xx, and the
#   delay_reason of held mail is not always "deferred transport".
#
# LMTP client connection pattern (lmtp(8) with default connection caching)
# - Greeting read, then "LHLO provider.test" ($myhostname). Capabilities it uses:
#   SIZE (sends "MAIL FROM:<s> SIZE=n"), 8BITMIME (BODY= only when the message was
#   submitted as 8BITMIME; undeclared 8-bit bodies were sent unchanged),
#   PIPELINING when offered (odmrd offers it).
# - First connection: one transaction, then QUIT. Following connections: reused
#   with RSET before each further transaction and, when idle for
#   lmtp_connection_cache_time_limit (2 s), closed WITHOUT QUIT (plain EOF).
# - One transaction per message and destination; all of a message's recipients in
#   that domain go in one transaction (several RCPTs), in no fixed order.
#   After DATA it expects one reply per accepted RCPT, in RCPT order; rejected
#   RCPTs get no DATA reply. A 450 RCPT reply becomes delay_reason "host
#   provider.test[RUNDIR/D] said: 450 4.2.1 <r>: ... (in reply to RCPT TO command)".
# - Connection dropped during DATA: delay_reason "lost connection with
#   provider.test[RUNDIR/D] while sending end of data -- message may be sent more
#   than once"; that message stayed deferred (not retried within the next 3 s)
#   while the flush went on with the next message on a new connection.
# - With odmrl maxproc 1 the transfers are sequential, but a cached idle connection
#   for one domain stays open while the next domain's connection is opened: two
#   connections to odmrd can be open at once (flush a.example; flush c.example).
#
# postqueue -j (one JSON object per line, one per queued message):
#   {"queue_name": "deferred", "queue_id": "A9A0CA720C2", "arrival_time": 1795598875,
#    "message_size": 264, "forced_expire": false, "sender": "s@x.test",
#    "recipients": [{"address": "u1@a.example", "delay_reason": "deferred transport"},
#                   ...]}
#   queue_name: maildrop, incoming, active, deferred or hold; recipients lists
#   only undelivered recipients (delivered ones vanish from the list); delay_reason is
#   absent for mail not yet tried (seen in "incoming"). The man page warns that a
#   listing taken while the queue changes may show a message twice or miss one.
#   postqueue -j on a stopped instance: exit 69
#   "Queue report unavailable - mail system is down".
#
# Permissions (odmrd as root in tests; what a non-root odmrd needs)
# - The lmtp client connects as user postfix (SO_PEERCRED uid/gid of postfix, seen
#   with a logging socket server): odmrd's default mta_user. It needs search (x) on every directory
#   above the socket and write on the socket. A socket made 0755 (umask 022) gives
#   "connect to ...: Permission denied". pf_setup makes RUNDIR root:postfix 2750
#   (odmrd's layout: set-group-ID, so odmrd's 0660 sockets get group postfix).
# - Non-root odmrd: `postqueue -c CONF` (also MAIL_CONFIG=CONF, and sendmail -C) for
#   a non-default CONF is refused, exit 69: "unauthorized configuration directory
#   name" / 'specify "alternate_config_directories = CONF" or
#   "multi_instance_directories = CONF" in /etc/postfix/main.cf'. So a non-root
#   odmrd needs CONF listed there, or must use the default instance (postqueue is
#   setgid postdrop, so plain `postqueue -j/-s` works for any user). To bind its
#   sockets it needs write on RUNDIR; making RUNDIR owned by the odmrd user, group
#   postfix, mode 2750 (setgid) gives sockets group postfix without odmrd being in
#   that group; bind under umask 0117 gives srw-rw---- (verified as user nobody).
#
# Other
# - Mail injected with sendmail gets Received:, Message-Id:, Date: and From:
#   headers added; the body arrives byte for byte (8-bit, lines starting with ".").
# - Every process of the instance has MAIL_CONFIG=CONF in its environment, and
#   master's children share its process group; pf_procs relies on both.
# - In this container PID 1 reaps orphans late: after `postfix stop` master and its
#   children linger as zombies for a while; pf_procs/pf_stop ignore zombies.
#
# ---------------------------------------------------------------------------
# Usage
#   . tests/lib/postfix.sh
#   pf_setup  WORK RUNDIR [DOMAIN...]  write the instance under WORK (domains default
#                                      to $PF_DOMAINS, else "a.example b.example c.example")
#   pf_setup  WORK RUNDIR -m MAPSRC    the same, the customer domains taken from odmrd's
#                                      customer map source MAPSRC
#   pf_map    MAPSRC                   (re)build MAPSRC.db and the instance's transport table
#                                      with odmrd-map, as an admin does after each change
#   pf_start                           start it (waits until master is up)
#   pf_send   FROM RCPT... < msg       queue a message (sendmail -C; exact body, Postfix
#                                      adds Received:/Message-ID:/Date: headers if absent)
#   pf_wait_queued N [QUEUE]           wait (bounded) until exactly N messages are queued,
#                                      all in QUEUE if given (e.g. deferred); 1 on timeout
#   pf_queue_json                      postqueue -j output (one JSON object a line)
#   pf_count_for_domain DOMAIN         print number of recipients still queued for DOMAIN
#   pf_flush  DOMAIN                   postqueue -s DOMAIN (returns before delivery)
#   pf_conf   NAME=VALUE...            change main.cf (and reload if running)
#   pf_procs                           print PIDs of this instance's processes
#   pf_stop [--purge]                  stop it (bounded), kill leftovers: no process is
#                                      left; --purge also deletes WORK
#   pf_attach WORK                     reload PF_* variables of an instance set up earlier
# Run as root: postqueue/sendmail refuse a private config dir to other users (above).
# Variables after pf_setup/pf_attach: PF_WORK PF_CONF (config_directory) PF_QUEUE
# (queue_directory) PF_RUNDIR PF_DOMAINS PF_LOG (maillog file). PF_TIMEOUT (seconds,
# default 30) bounds every wait. PF_PYTHON (default /usr/bin/python3) parses JSON.
# The transport table (also relay_domains) is odmrd-map's output, never written here:
# $ODMRD_MAP (default: the tree's odmrd-map), the map's group $ODMRD_MAP_GROUP (nogroup).
# ---------------------------------------------------------------------------

PF_TIMEOUT=${PF_TIMEOUT:-30}
PF_PYTHON=${PF_PYTHON:-/usr/bin/python3}

# Print an error on stderr and return 1 (callers do `|| return`).
pf__err() {
	printf 'postfix.sh: %s\n' "$*" >&2
	return 1
}

# pf_setup WORK RUNDIR [-m MAPSRC | DOMAIN...]: write main.cf and master.cf of a private
# instance, and its transport table with odmrd-map from the customer map source MAPSRC (with
# DOMAIN...: from a source holding one made-up customer per domain). Existing configuration
# under WORK is replaced (queue kept); refuses to touch an instance that is still running.
pf_setup() {
	local work=$1 rundir=$2 src d
	shift 2 || { pf__err 'usage: pf_setup WORK RUNDIR [-m MAPSRC | DOMAIN...]'; return; }
	if [ -z "$work" ] || [ -z "$rundir" ]; then
		pf__err 'pf_setup: WORK and RUNDIR required'
		return
	fi
	# Absolute paths: Postfix resolves them from its own working directories.
	work=$(realpath -m -- "$work") && rundir=$(realpath -m -- "$rundir") || return
	if [ "${1:-}" = -m ]; then
		src=$(realpath -m -- "${2:?pf_setup: -m needs MAPSRC}") || return
		set --
	fi
	# shellcheck disable=SC2086 # PF_DOMAINS is a space-separated list
	[ -n "${src:-}" ] || [ $# -gt 0 ] || set -- ${PF_DOMAINS:-a.example b.example c.example}

	PF_WORK=$work
	PF_CONF=$work/etc
	PF_QUEUE=$work/spool
	PF_RUNDIR=$rundir
	PF_DOMAINS="$*"
	PF_LOG=$work/maillog
	if [ -n "$(pf_procs)" ]; then
		pf__err "pf_setup: instance under $work is running; pf_stop first"
		unset PF_WORK PF_CONF PF_QUEUE PF_RUNDIR PF_DOMAINS PF_LOG
		return
	fi

	# mktemp -d makes 0700 directories; the Postfix daemons (user postfix) need to
	# search the path to the queue directory, and the lmtp client (also user postfix)
	# the path to RUNDIR.
	# (data_directory is left to postfix start, which creates it owned by postfix.)
	mkdir -p "$PF_CONF" "$PF_QUEUE" "$rundir" || return
	chmod 0755 "$work" "$PF_CONF" || return
	# RUNDIR: odmrd's layout (odmrd runs as root in tests): group postfix may search it,
	# nobody else; set-group-ID, so the 0660 sockets odmrd binds get group postfix.
	chown root:postfix "$rundir" && chmod 2750 "$rundir" || return
	if ! runuser -u postfix -- test -x "$rundir"; then
		pf__err "pf_setup: user postfix cannot search $rundir (check parent directory modes)"
		return
	fi

	# Without a map: one made-up customer per domain, so the table still comes from odmrd-map.
	if [ -z "${src:-}" ]; then
		src=$work/domains
		: >"$src" || return
		for d in "$@"; do
			printf 'pf-%s %s\n' "$d" "$d" >>"$src"
		done
	fi

	cat >"$PF_CONF/main.cf" <<-EOF || return
		# Private Postfix instance for odmrd tests (written by tests/lib/postfix.sh).
		compatibility_level = 3.6
		queue_directory = $PF_QUEUE
		data_directory = $work/data
		mail_owner = postfix
		setgid_group = postdrop
		myhostname = provider.test
		mydomain = provider.test
		myorigin = \$myhostname
		# Nothing is delivered locally and nothing leaves the host: master.cf has no
		# smtp/local service, and every non-customer destination fails via error(8).
		mydestination =
		local_recipient_maps =
		alias_maps =
		alias_database =
		local_transport = error:5.1.1 local delivery disabled in the odmrd test instance
		default_transport = error:5.7.1 outbound mail disabled in the odmrd test instance
		relay_transport = \$default_transport
		inet_interfaces = loopback-only
		inet_protocols = ipv4
		mynetworks = 127.0.0.0/8
		# Customer domains: held (defer_transports) until odmrd flushes them.
		# odmrd-map's table: its keys are the customer domains, its values their routes.
		relay_domains = hash:$PF_CONF/odmrd_transport
		transport_maps = hash:$PF_CONF/odmrd_transport
		defer_transports = odmrl
		# As shipped in mta/postfix: one connection per customer domain, many customers at once.
		odmrl_destination_concurrency_limit = 1
		fast_flush_domains = \$relay_domains
		# Fast retries so tests need not wait minutes; mail is held for a day.
		queue_run_delay = 2s
		minimal_backoff_time = 2s
		maximal_backoff_time = 4s
		maximal_queue_lifetime = 1d
		bounce_queue_lifetime = 1d
		# Log to a file (no syslog in test containers); needs the postlog service.
		maillog_file = $PF_LOG
		maillog_file_prefixes = $work
		biff = no
	EOF

	# Only the services a relay-only instance needs; chroot off everywhere because
	# the socket paths in the transport table are absolute host paths.
	cat >"$PF_CONF/master.cf" <<-'EOF' || return
		# service type  private unpriv  chroot  wakeup  maxproc command
		pickup    unix  n       -       n       60      1       pickup
		cleanup   unix  n       -       n       -       0       cleanup
		qmgr      unix  n       -       n       300     1       qmgr
		rewrite   unix  -       -       n       -       -       trivial-rewrite
		bounce    unix  -       -       n       -       0       bounce
		defer     unix  -       -       n       -       0       bounce
		trace     unix  -       -       n       -       0       bounce
		verify    unix  -       -       n       -       1       verify
		flush     unix  n       -       n       1000?   0       flush
		proxymap  unix  -       -       n       -       -       proxymap
		showq     unix  n       -       n       -       -       showq
		error     unix  -       -       n       -       -       error
		retry     unix  -       -       n       -       -       error
		discard   unix  -       -       n       -       -       discard
		anvil     unix  -       -       n       -       1       anvil
		scache    unix  -       -       n       -       1       scache
		postlog   unix-dgram n  -       n       -       1       postlogd
		# The LMTP client that delivers customer mail to odmrd, one at a time.
		odmrl     unix  -       -       n       -       -       lmtp
	EOF

	# odmrd's configuration as far as odmrd-map reads it: where the sockets are, which table
	# to write and for which Postfix instance (postmap -c).
	cat >"$work/odmrd-map.conf" <<-EOF || return
		run_dir = $rundir
		postfix_transport = $PF_CONF/odmrd_transport
		postfix_config_dir = $PF_CONF
		customer_map_group = ${ODMRD_MAP_GROUP:-nogroup}
	EOF
	pf_map "$src" || return
	[ $# -gt 0 ] || PF_DOMAINS=$(pf__table_domains)

	# Remember the instance for pf_attach (another shell, a demo script).
	{
		printf 'PF_WORK=%q\nPF_CONF=%q\nPF_QUEUE=%q\n' "$PF_WORK" "$PF_CONF" "$PF_QUEUE"
		printf 'PF_RUNDIR=%q\nPF_DOMAINS=%q\nPF_LOG=%q\n' "$PF_RUNDIR" "$PF_DOMAINS" "$PF_LOG"
	} >"$work/pf.env"
}

# pf_map MAPSRC: odmrd-map MAPSRC with the instance's odmrd-map.conf: MAPSRC.db and the transport
# table are replaced atomically; a running Postfix notices the new table by itself.
pf_map() {
	local map=${ODMRD_MAP:-$(dirname "${BASH_SOURCE[0]}")/../../odmrd-map}
	"$map" -f "$PF_WORK/odmrd-map.conf" "$1" || pf__err "pf_map: odmrd-map $1 failed"
}

# pf__table_domains: the domains in the transport table odmrd-map wrote, space separated.
pf__table_domains() {
	sed -n 's/^\([^#[:space:]][^[:space:]]*\)[[:space:]].*/\1/p' "$PF_CONF/odmrd_transport" | paste -sd' '
}

# pf_attach WORK: set the PF_* variables of an instance set up by pf_setup.
pf_attach() {
	[ -f "$1/pf.env" ] || { pf__err "pf_attach: no instance under $1"; return; }
	# shellcheck source=/dev/null
	. "$1/pf.env"
}

# pf_conf NAME=VALUE...: set main.cf parameters; reload a running instance.
pf_conf() {
	postconf -c "$PF_CONF" -e "$@" || return
	if [ -n "$(pf_procs)" ]; then
		postfix -c "$PF_CONF" reload 2>>"$PF_WORK/postfix.out" || return
	fi
}

# pf__proc_state PID: set `state` and `pgrp` of a process from /proc/PID/stat
# (callers declare both local; bash's dynamic scoping makes this set theirs).
# Fails if the process does not exist.
pf__proc_state() {
	local stat _
	state='' pgrp=''
	read -r stat 2>/dev/null <"/proc/$1/stat" || return
	# Fields after "(comm) " are: state ppid pgrp ...; comm may contain spaces.
	stat=${stat##*) }
	read -r state _ pgrp _ <<<"$stat"
}

# pf__master_pid: print the PID of the instance's master if it is running.
# Zombies count as gone: in some containers PID 1 reaps exited daemons late.
pf__master_pid() {
	local pid state pgrp
	read -r pid 2>/dev/null <"$PF_QUEUE/pid/master.pid" || return
	pf__proc_state "$pid" && [ "$state" != Z ] && echo "$pid"
}

# pf_procs: PIDs of every live (non-zombie) process of this instance. Postfix
# passes the config directory to everything it starts via MAIL_CONFIG in the
# environment, and the master runs its children in its own process group;
# check both.
pf_procs() {
	local f pid master state pgrp
	master=$(pf__master_pid)
	for f in /proc/[0-9]*/stat; do
		pid=${f#/proc/}
		pid=${pid%/stat}
		[ "$pid" = "$$" ] || [ "$pid" = "$BASHPID" ] && continue
		pf__proc_state "$pid" || continue
		[ "$state" = Z ] && continue
		if { [ -n "$master" ] && [ "$pgrp" = "$master" ]; } ||
			grep -qszxF "MAIL_CONFIG=$PF_CONF" "/proc/$pid/environ"; then
			echo "$pid"
		fi
	done
}

# pf_start: start the instance; returns once master reports successful start-up.
pf_start() {
	[ -n "$PF_CONF" ] || { pf__err 'pf_start: pf_setup first'; return; }
	# postfix start runs post-install create-missing (queue directories and owners),
	# an integrity check, then master -w which waits for the master's start-up.
	timeout "$PF_TIMEOUT" postfix -c "$PF_CONF" start >>"$PF_WORK/postfix.out" 2>&1 ||
		pf__err "pf_start failed, see $PF_WORK/postfix.out and $PF_LOG"
}

# pf_stop [--purge]: stop the instance and make sure none of its processes is left;
# --purge then deletes WORK and the sockets left in RUNDIR (default: keep them, so
# maillog and the queue can be inspected). Bounded by PF_TIMEOUT.
# `postfix stop` signals master, waits up to 5 s, then SIGKILLs the process group;
# anything still found after that (e.g. a hung postqueue) is killed by PID.
pf_stop() {
	local pids deadline=$((SECONDS + PF_TIMEOUT))
	[ -n "$PF_CONF" ] || { pf__err 'pf_stop: pf_setup first'; return; }
	if [ -n "$(pf__master_pid)" ]; then
		timeout "$PF_TIMEOUT" postfix -c "$PF_CONF" stop >>"$PF_WORK/postfix.out" 2>&1
	fi
	while pids=$(pf_procs) && [ -n "$pids" ]; do
		if ((SECONDS >= deadline)); then
			pf__err "pf_stop: processes still alive: ${pids//$'\n'/ }"
			return
		fi
		# shellcheck disable=SC2086 # one PID per word
		kill -KILL $pids 2>/dev/null
		sleep 0.1
	done
	if [ "${1:-}" = --purge ]; then
		find "$PF_RUNDIR" -maxdepth 1 -type s -delete
		rm -rf -- "$PF_WORK"
	fi
}

# pf_send FROM RCPT... < message: queue a message via the private instance's
# sendmail/postdrop. -i: a line with a single dot is data, not end of input.
pf_send() {
	local from=$1
	shift || { pf__err 'usage: pf_send FROM RCPT... < message'; return; }
	[ $# -gt 0 ] || { pf__err 'pf_send: no recipient'; return; }
	sendmail -C "$PF_CONF" -i -f "$from" -- "$@"
}

# pf_queue_json: the queue as postqueue -j prints it, one JSON object per message.
pf_queue_json() {
	postqueue -c "$PF_CONF" -j
}

# pf__jq PROGRAM [ARGS]: run a python3 snippet with `msgs` = list of the queue's
# message objects parsed by the json module.
pf__jq() {
	local prog=$1 json
	shift
	json=$(pf_queue_json) || return
	printf '%s\n' "$json" | "$PF_PYTHON" -c '
import json, sys
msgs = [json.loads(l) for l in sys.stdin if l.strip()]
args = sys.argv[1:]
'"$prog" "$@"
}

# pf_count_for_domain DOMAIN: recipients still queued (any queue) whose address is
# in DOMAIN (exact domain match, case-insensitive).
pf_count_for_domain() {
	pf__jq '
dom = args[0].lower()
print(sum(1 for m in msgs for r in m["recipients"]
          if r["address"].rpartition("@")[2].lower() == dom))' "$1"
}

# pf_wait_queued N [QUEUE]: wait until the queue holds exactly N messages (all in
# queue QUEUE, e.g. "deferred", if given). Bounded by PF_TIMEOUT; 1 on timeout.
pf_wait_queued() {
	local want=$1 queue=${2:-} i n
	for ((i = 0; i < PF_TIMEOUT * 5; i++)); do
		n=$(pf__jq '
q = args[0]
other = sum(1 for m in msgs if q and m["queue_name"] != q)
print(len(msgs) if not other else "%d (%d not %s)" % (len(msgs), other, q))' "$queue") || return
		[ "$n" = "$want" ] && return 0
		sleep 0.2
	done
	pf__err "pf_wait_queued: wanted $want${queue:+ $queue}, have: $n"
}

# pf_flush DOMAIN: ask the flush service to deliver DOMAIN's deferred mail now,
# overriding defer_transports for that one pass. Returns at once (exit 69 if the
# domain is not in fast_flush_domains).
pf_flush() {
	postqueue -c "$PF_CONF" -s "$1"
}
