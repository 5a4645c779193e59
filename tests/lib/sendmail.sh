# shellcheck shell=bash
# tests/lib/sendmail.sh -- a private Sendmail 8.17 instance for odmrd tests.
#
# Source it, run as root.  Postfix owns the system MTA slot on Debian (the
# sendmail package conflicts with it), so Sendmail runs from a tree unpacked
# with `dpkg -x` and a private .cf; nothing under /etc is changed.
#
# Usage
#   . tests/lib/sendmail.sh
#   sm_setup "$WORK" "$RUNDIR" a.example b.example   # builds $SM_CF, $SM_SENDMAIL
#   sm_setup "$WORK" "$RUNDIR" -m MAPSRC              # the domains of odmrd's customer map
#   sm_send sender@sender.example u1@a.example < msg  # queue one message
#   sm_wait_queued 1                                   # 1 envelope queued, none being delivered
#   sm_count_for_domain a.example                      # -> 1 (recipients still queued)
#   ... bind $RUNDIR/a.example, speak SMTP server on it ...
#   sm_queue_run a.example                             # sendmail -qf -qR@a.example
#   sm_stop                                            # kill leftovers of this instance
#   Every sendmail call must go through "$SM_SENDMAIL" -C "$SM_CF" (see "Host
#   name" below); odmrd under test gets "$SM_SENDMAIL -C $SM_CF" as its command.
#   WORK and RUNDIR must not lie below /tmp or any group/world-writable
#   directory (see "Paths").  Also: sm_queue_listing [DOMAIN] (the probe),
#   sm_pids.  Mail for non-customer domains (DSNs to senders) and postmaster
#   is appended to $SM_LOCALMAIL/root.  Knobs: SM_CACHE (unpacked tree,
#   default /var/cache/odmrd-test/sendmail), SM_DEB_DIR (where to look for
#   already downloaded .debs, default /tmp), SM_QUEUERETURN (bounce after,
#   default 1h).  The per-domain mailers, routes and relay permissions are
#   odmrd-map's .mc fragment (sendmail_m4), never written here: $ODMRD_MAP
#   (default: the tree's odmrd-map), map group $ODMRD_MAP_GROUP (nogroup).
#   Like Debian's stock sendmail.mc (DOMAIN(debian-mta)), the instance keeps
#   persistent host status (HostStatusDirectory): see "Host status" below.
#
# Sendmail facts verified with this harness (Debian 12, sendmail-bin
# 8.17.1.9-2+deb12u2; evidence: tests/lib/sendmail_selftest.sh output):
#
# Routing.  One [IPC] mailer per customer domain, named odmr_<domain, . as _>,
#   and a ruleset 0 route to it (LOCAL_RULE_0, ahead of the mailertable), from
#   odmrd-map's fragment, included as the .mc's last line:
#     Modmr_a_example, P=[IPC], F=mDFMuXa, S=EnvFromSMTP/HdrFromSMTP, R=EnvToSMTP, E=\r\n, L=990,
#                     T=DNS/RFC822/SMTP, A=FILE /run/odmrd/a.example
#     R$* < @ a.example . > $*   $#odmr_a_example $@ localhost $: $1 < @ a.example . > $2
#   F= is the stock esmtp set (m: several RCPTs per transaction, a: EHLO).  The
#   connection cache is per (host, mailer) and an A=FILE mailer's host is
#   always "localhost", so each domain needs its own mailer.  ONE shared mailer
#   with A=FILE RUNDIR/$h (the mailertable host part expands into the path)
#   routes correctly but mixes customers: with sockets for a.example and
#   b.example bound, one queue run delivered b.example's and c.example's
#   (no socket!) mail into a.example's socket ("Using cached ESMTP connection
#   to localhost via odmr"; sendmail_selftest.sh section 6 reproduces it).
#   The harness's own mailertable only sends every other domain to the local
#   file mailer.
# Host status.  debian-mta defines HostStatusDirectory, and its status for
#   "localhost" is shared by every A=FILE mailer and kept across processes:
#   after the submission-time attempts found no socket, a plain `sendmail -q`
#   with the sockets bound delivered nothing ("Deferred: No such file or
#   directory" without connecting) until Timeout.hoststatus (30 min) passed.
#   A run that selects (-qR@dom, -qI<id>), as odmrd's do, ignores the cached
#   status and connects.  The harness keeps a HostStatusDirectory so the
#   suites run with it.
#   Paths: no group/world-writable directory may sit above the .cf's maps or
#   the sockets, sticky /tmp included.  Otherwise maps are ignored ("unsafe map
#   file") and sockets refused ("makeconnection_ds: unsafe domain socket"); a
#   MISSING socket is reported with the same words, then "Deferred: No such
#   file or directory".  The harness uses RUNDIR 0750 root.
#
# Connection pattern (fake server log; odmrd sees the same on RUNDIR/<domain>):
#   - after the 220 greeting: "EHLO mta.odmrd.test" (the instance's $j).
#   - per transaction: MAIL FROM:<s> SIZE=n, then the RCPTs, then DATA.  Every
#     RCPT after the first and DATA come pipelined when PIPELINING is offered;
#     MAIL waits for its reply.  Several recipients of one domain in one
#     envelope share one transaction (one end-of-data reply).
#   - ONE connection per domain per queue run, reused for every queue file:
#     RSET before each later transaction, QUIT on every cached connection at
#     the end of the run.
#   - An envelope with recipients in two domains whose sockets both exist
#     opens the second socket while the first connection is still open (idle,
#     cached): c2 is opened, used and held; then c1 continues, then QUIT c2,
#     QUIT c1.  A relay serving one MTA connection at a time to completion
#     would deadlock; switch connections at transaction boundaries.
#   - Order of queue files in a run is not submission order.
#
# Queue run `sendmail -C CF -qf -qR@DOMAIN` (foreground, returns when done):
#   - ~40 ms for a handful of messages, with or without the socket: a missing
#     socket fails at once and the domain's mailer is not retried in that run.
#   - Socket errors are printed on STDOUT (not stderr), e.g.
#     "makeconnection_ds: unsafe domain socket /run/odmrd/c.example".
#   - Exit status is no delivery verdict: 0 normally, but 70 (EX_SOFTWARE)
#     when a selected envelope also has a recipient of another domain whose
#     socket is missing, even though everything for DOMAIN was delivered.
#   - -qR selects whole envelopes (all their recipients are tried) by a
#     case-insensitive SUBSTRING match: -qR@a.example also selects
#     x@A.Example.evil.  Bind sockets only for granted domains.
#   - `-qf -qIID1 -qIID2` runs exactly those two envelopes (several -qI are
#     ORed); -qI is a substring match too (-qI6B74a5Os ran 6B74a5Os015199).
#     IDs are 8 characters of time and sequence plus the pid, zero-padded to
#     6 digits.  The qf file's N line counts delivery attempts (N0: never tried).
#   - A run started as root connects to the [IPC] socket as root (SO_PEERCRED
#     uid 0; the .cf sets no RunAsUser): odmrd's default mta_user.  Sockets
#     0660 in a 2750 directory are accepted (not "unsafe").
#   - SIGTERM is not acted on while sendmail waits for the server: a run stuck
#     on a socket that never greets ended only at Timeout.initial (30 s here,
#     5 min by default).  End a run by closing the MTA-side socket, or KILL.
#
# Probe "is anything queued for DOMAIN":  sendmail -C CF -bp -qR@DOMAIN
#   (exit 0 either way; same substring match).  Empty:
#     <queuedir> is empty
#     \t\tTotal requests: 0
#   Mail queued (one block per envelope, only undelivered recipients):
#     \t\t<queuedir> (3 requests)
#     -----Q-ID----- --Size-- -----Q-Time----- ------------Sender/Recipient-----------
#     6AP9X3Ck019754       30 Wed Nov 25 09:33 sender@sender.example
#                      (Deferred: No such file or directory)
#     \t\t\t\t\t mix@c.example
#     \t\tTotal requests: 3
#   A queue id followed by "*" is locked by a delivery in progress.  Count
#   exact recipient domains (sm_count_for_domain) rather than trust -qR.
#
# Privileges: root can inject with -f, probe and run the queue.  A non-root
#   user cannot use a root-owned 0700 queue ("can not chdir(<queue>/):
#   Permission denied", exit 78).  With the queue directory and its files
#   owned by that user (e.g. sendmail's RunAsUser), `-bp` and `-qf -qR@dom`
#   worked as that user; it then needs search permission on RUNDIR and write
#   permission on the socket (tested with 0755 and 0666).  Debian's stock
#   sendmail.mc sets PrivacyOptions restrictqrun: only root or the queue owner
#   may run the queue -- so a non-root odmrd needs the queue owned by its user
#   or a root helper limited to "-qf -qR@<granted domain>".
#
# Host name: sendmail qualifies gethostname() before it reads any .cf (so Dj,
#   confDOMAIN_NAME, -oj cannot help); with an unqualified name ("vm") it
#   sends a DNS query and sleeps 60 s ("My unqualified host name ... sleeping
#   for retry").  $SM_SENDMAIL therefore runs sendmail in private UTS and
#   mount namespaces: host name mta.odmrd.test, private /etc/hosts,
#   nsswitch.conf (hosts: files) and resolv.conf (127.0.0.1) bind-mounted
#   there only.  The .cf also needs confSERVICE_SWITCH_FILE (hosts files):
#   without it queue runs query DNS for every recipient/sender domain.
#   Start-up then takes ~50 ms and no packet leaves the host.

SM_CACHE=${SM_CACHE:-/var/cache/odmrd-test/sendmail}
SM_HOSTNAME=mta.odmrd.test
SM_PACKAGES=(sendmail-bin sendmail-base sendmail-cf)
# Runtime dependencies of sendmail-bin (from its Depends) plus m4 for the .cf.
SM_LIBDEPS=(libdb5.3 libldap-2.5-0 liblockfile1 libnsl2 libwrap0 libsasl2-2 libssl3 m4)

sm_log() { printf 'sendmail.sh: %s\n' "$*" >&2; }

# Unpack the three packages into $SM_CACHE once; later calls return at once.
sm_install_tree() {
	local stamp=$SM_CACHE/.odmrd-unpacked
	[[ -f $stamp && -x $SM_CACHE/usr/libexec/sendmail/sendmail ]] && return 0

	local missing=() p
	for p in "${SM_LIBDEPS[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
	done
	if ((${#missing[@]})); then
		sm_log "installing ${missing[*]}"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 || return 1
	fi

	local dl tmp debs=() deb
	# 0755 so apt's unprivileged _apt user may write the download there.
	dl=$(mktemp -d) && chmod 0755 "$dl" || return 1
	for p in "${SM_PACKAGES[@]}"; do
		# Reuse a copy already downloaded (e.g. /tmp/sendmail-bin_*.deb).
		deb=$(ls -1 "${SM_DEB_DIR:-/tmp}/${p}"_*.deb 2>/dev/null | sort -V | tail -n 1)
		if [[ -z $deb ]]; then
			(cd "$dl" && apt-get download "$p" >&2) ||
				{ apt-get update -q >&2 && (cd "$dl" && apt-get download "$p" >&2); } ||
				{ rm -rf "$dl"; return 1; }
			deb=$(ls -1 "$dl/${p}"_*.deb)
		fi
		debs+=("$deb")
	done

	# Unpack beside the target and rename, so an interrupted run never leaves
	# a half tree that the stamp test would accept.
	mkdir -p "$(dirname "$SM_CACHE")" && tmp=$(mktemp -d "$SM_CACHE.new.XXXXXX") || { rm -rf "$dl"; return 1; }
	for deb in "${debs[@]}"; do
		dpkg -x "$deb" "$tmp" || { rm -rf "$dl" "$tmp"; return 1; }
	done
	chmod 0755 "$tmp"
	touch "$tmp/.odmrd-unpacked"
	rm -rf "$SM_CACHE" "$dl"
	mv "$tmp" "$SM_CACHE"
}

# sm_mailer_name DOMAIN -> odmr_a_example, odmrd-map's name for DOMAIN's mailer.
sm_mailer_name() { printf 'odmr_%s\n' "${1//./_}"; }

# sm_safe_path PATH -- fail if an existing ancestor of PATH is group or world
# writable.  sendmail then calls the maps "unsafe" (and silently ignores
# them) and refuses the sockets ("unsafe domain socket"), even for sticky
# directories: WORK and RUNDIR cannot live under /tmp or /var/tmp.
sm_safe_path() {
	local p=$1 mode
	while [[ $p != / ]]; do
		p=$(dirname "$p")
		mode=$(stat -c %a "$p" 2>/dev/null) || continue
		if (((8#$mode & 8#022) != 0)); then
			sm_log "$1: $p is group/world writable (mode $mode); sendmail would reject it"
			return 1
		fi
	done
}

# sm_setup WORK RUNDIR -m MAPSRC | DOMAIN... -- write and check a private
# instance routing the domains of the customer map source MAPSRC (or DOMAIN...,
# through a source with one made-up customer per domain) to RUNDIR/<domain>.
# Sets SM_WORK SM_RUNDIR SM_CF SM_SENDMAIL SM_QUEUE SM_LOCALMAIL SM_DOMAINS.
sm_setup() {
	if (($# < 3)); then sm_log "usage: sm_setup WORK RUNDIR -m MAPSRC | DOMAIN..."; return 2; fi
	[[ $(id -u) == 0 ]] || { sm_log "must run as root"; return 1; }
	local work rundir d src=
	work=$(realpath -m "$1") rundir=$(realpath -m "$2")
	shift 2
	if [[ $1 == -m ]]; then
		src=$(realpath -m "${2:?sm_setup: -m needs MAPSRC}")
		set --
	fi
	sm_safe_path "$work" && sm_safe_path "$rundir" || return 1
	sm_install_tree || return 1

	# shellcheck disable=SC2034 # for callers
	SM_WORK=$work SM_RUNDIR=$rundir
	SM_CF=$work/sendmail.cf
	SM_QUEUE=$work/mqueue
	SM_LOCALMAIL=$work/local-mail
	SM_SENDMAIL=$work/bin/sendmail
	local etc=$work/etc bin=$work/bin

	# sendmail refuses group/world-writable directories on the path of its
	# .cf, maps, queue and unix sockets; keep everything root-owned 0755/0700.
	(umask 022 && mkdir -p "$etc/ns" "$bin" "$SM_QUEUE" "$SM_LOCALMAIL" "$rundir") || return 1
	chmod 0755 "$work" "$etc" "$etc/ns" "$bin"
	chmod 0700 "$SM_QUEUE" "$SM_LOCALMAIL"
	chmod 0750 "$rundir"

	printf '127.0.0.1\t%s localhost\n::1\t\t%s localhost\n' "$SM_HOSTNAME" "$SM_HOSTNAME" >"$etc/ns/hosts"
	printf 'passwd: files\ngroup: files\nshadow: files\nhosts: files\n' >"$etc/ns/nsswitch.conf"
	printf 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n' >"$etc/ns/resolv.conf"
	# sendmail's own switch: no "dns" also means no MX lookups for bounces.
	printf 'hosts\tfiles\naliases\tfiles\n' >"$etc/service.switch"
	cp "$etc/ns/hosts" "$etc/hosts"
	(umask 077 && mkdir -p "$work/hoststat")

	# The customer domains' mailers and routes: odmrd-map's output, as an admin gets it.
	if [[ -z $src ]]; then
		src=$work/domains
		for d in "$@"; do printf 'sm-%s %s\n' "$d" "$d"; done >"$src"
	fi
	cat >"$work/odmrd-map.conf" <<-EOF
		run_dir = $rundir
		sendmail_m4 = $etc/odmrd.m4
		customer_map_group = ${ODMRD_MAP_GROUP:-nogroup}
	EOF
	"${ODMRD_MAP:-$(dirname "${BASH_SOURCE[0]}")/../../odmrd-map}" -f "$work/odmrd-map.conf" "$src" ||
		{ sm_log "odmrd-map $src failed"; return 1; }
	SM_DOMAINS=$(sed -n "s/^\`C{R}\(.*\)'\$/\1/p" "$etc/odmrd.m4" | paste -sd' ')

	# Wrapper: private host name and resolver files (see header, "Host name").
	# unshare execs, so the wrapper's pid is sendmail's pid.
	cat >"$SM_SENDMAIL" <<-EOF
		#!/bin/sh
		# Generated by tests/lib/sendmail.sh: run the private sendmail with an
		# FQDN host name and loopback-only name resolution.
		exec unshare --mount --uts /bin/sh -c '
		    mount --bind "$etc/ns/hosts" /etc/hosts &&
		    mount --bind "$etc/ns/nsswitch.conf" /etc/nsswitch.conf &&
		    mount --bind "$etc/ns/resolv.conf" /etc/resolv.conf &&
		    hostname "$SM_HOSTNAME" &&
		    exec "\$0" "\$@"' "$SM_CACHE/usr/libexec/sendmail/sendmail" "\$@"
	EOF
	# Local mailer: everything not for a customer domain (DSNs to senders,
	# postmaster) ends up in one file per recipient here, never in /var/mail.
	cat >"$bin/local-mail" <<-EOF
		#!/bin/sh
		exec cat >>"$SM_LOCALMAIL/\$1"
	EOF
	chmod 0755 "$SM_SENDMAIL" "$bin/local-mail"

	local port
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])') || return 1

	{
		cat <<-EOF
			divert(-1)
			# Generated by tests/lib/sendmail.sh -- private odmrd test instance.
			divert(0)dnl
			VERSIONID(\`odmrd test instance')dnl
			OSTYPE(\`linux')dnl
			define(\`MAIL_SETTINGS_DIR', \`$etc/')dnl
			define(\`QUEUE_DIR', \`$SM_QUEUE')dnl
			define(\`STATUS_FILE', \`$work/statistics')dnl
			define(\`confPID_FILE', \`$work/sendmail.pid')dnl
			define(\`confDEAD_LETTER_DROP', \`$SM_LOCALMAIL/dead.letter')dnl
			define(\`confSERVICE_SWITCH_FILE', \`$etc/service.switch')dnl
			define(\`confHOSTS_FILE', \`$etc/hosts')dnl
			define(\`ALIAS_FILE', \`$etc/aliases')dnl
			define(\`confDOMAIN_NAME', \`$SM_HOSTNAME')dnl
			define(\`confDONT_PROBE_INTERFACES', \`True')dnl
			define(\`confDELIVERY_MODE', \`background')dnl
			define(\`confMIN_QUEUE_AGE', \`0')dnl
			define(\`confTO_QUEUEWARN', \`0')dnl
			define(\`confTO_QUEUERETURN', \`${SM_QUEUERETURN:-1h}')dnl
			define(\`confTO_CONNECT', \`10s')dnl
			define(\`confTO_ICONNECT', \`10s')dnl
			define(\`confTO_INITIAL', \`30s')dnl
			define(\`confTO_HELO', \`30s')dnl
			define(\`confTO_MAIL', \`30s')dnl
			define(\`confTO_RCPT', \`30s')dnl
			define(\`confTO_DATAINIT', \`30s')dnl
			define(\`confTO_DATABLOCK', \`60s')dnl
			define(\`confTO_DATAFINAL', \`60s')dnl
			define(\`confTO_RSET', \`30s')dnl
			define(\`confTO_QUIT', \`10s')dnl
			dnl As Debian's debian-mta does: host status kept across processes.
			define(\`confHOST_STATUS_DIRECTORY', \`$work/hoststat')dnl
			define(\`confTO_MISC', \`30s')dnl
			define(\`LOCAL_MAILER_PATH', \`$bin/local-mail')dnl
			define(\`LOCAL_MAILER_ARGS', \`local-mail \$u')dnl
			define(\`LOCAL_MAILER_FLAGS', \`SPn9')dnl
			dnl The helpers never run -bd; should anyone, it stays on loopback.
			FEATURE(\`no_default_msa')dnl
			DAEMON_OPTIONS(\`Port=$port, Addr=127.0.0.1, Name=MTA')dnl
			FEATURE(\`nocanonify')dnl
			FEATURE(\`mailertable')dnl
			MAILER(\`local')dnl
			MAILER(\`smtp')dnl
			include(\`$etc/odmrd.m4')dnl
		EOF
	} >"$work/sendmail.mc"
	local cfdir=$SM_CACHE/usr/share/sendmail/cf
	m4 -D_CF_DIR_="$cfdir/" "$cfdir/m4/cf.m4" "$work/sendmail.mc" >"$SM_CF.tmp" || return 1
	mv "$SM_CF.tmp" "$SM_CF"

	# Customer domains are routed by odmrd.m4 ahead of the mailertable; "."
	# catches every other domain (DSNs) and hands it to the local file mailer.
	printf '.\tlocal:root\n' >"$etc/mailertable"
	"$SM_CACHE/usr/libexec/sendmail/makemap" -C "$SM_CF" hash "$etc/mailertable" <"$etc/mailertable" || return 1
	# Without an alias database local delivery defers ("alias database
	# unavailable") instead of reaching the local mailer.
	printf 'postmaster: root\nMAILER-DAEMON: postmaster\n' >"$etc/aliases"
	"$SM_SENDMAIL" -C "$SM_CF" -bi >/dev/null || return 1
	chmod 0644 "$etc/mailertable" "$etc/mailertable.db" "$etc/aliases" "$etc/aliases.db"

	# A map sendmail deems unsafe is silently skipped and mail then goes to
	# the local mailer, so check the routing of every domain now.
	local out
	for d in $SM_DOMAINS; do
		out=$(printf '/parse u@%s\n' "$d" | "$SM_SENDMAIL" -C "$SM_CF" -bt 2>&1)
		grep -q "mailer $(sm_mailer_name "$d"), host localhost" <<<"$out" ||
			{ sm_log "routing check failed for $d:"; printf '%s\n' "$out" >&2; return 1; }
	done
}

# sm_send FROM RCPT... < message -- inject like a local submission would.
# Delivery mode is background: sendmail queues, returns, and a child tries
# delivery at once (deferred if no socket); use sm_wait_queued afterwards.
sm_send() {
	(($# >= 2)) || { sm_log "usage: sm_send FROM RCPT... < message"; return 2; }
	local from=$1
	shift
	"$SM_SENDMAIL" -C "$SM_CF" -oi -f "$from" -- "$@"
}

# sm_queue_listing [DOMAIN] -- `sendmail -bp`, limited to -qR@DOMAIN if given.
sm_queue_listing() {
	"$SM_SENDMAIL" -C "$SM_CF" -bp ${1:+"-qR@$1"} </dev/null 2>&1
}

# sm_queued_total -- number of queued envelopes; fails if one is being delivered.
sm_queued_total() {
	local out
	out=$(sm_queue_listing) || return 1
	# A locked queue file shows as "<qid>*": a delivery is still running.
	grep -Eq '^[[:alnum:]]+\*' <<<"$out" && return 1
	sed -n 's/^[[:space:]]*Total requests: \([0-9][0-9]*\)$/\1/p' <<<"$out"
}

# sm_wait_queued N [TIMEOUT_S] -- wait until exactly N envelopes are queued and
# no delivery attempt is in progress.
sm_wait_queued() {
	local want=$1 deadline=$((SECONDS + ${2:-30})) n
	while ((SECONDS < deadline)); do
		n=$(sm_queued_total) && [[ $n == "$want" ]] && return 0
		sleep 0.2
	done
	sm_log "sm_wait_queued: wanted $want queued, have '${n:-busy}'"
	return 1
}

# sm_count_for_domain DOMAIN -- undelivered recipients whose domain is exactly
# DOMAIN (not the -qR substring match).
sm_count_for_domain() {
	local d=${1,,}
	# Recipient lines are indented addresses, whole only with -v (else cut at 38 characters);
	# indented lines starting with "(" are status notes.
	"$SM_SENDMAIL" -C "$SM_CF" -bp -v "-qR@$1" </dev/null 2>&1 | tr '[:upper:]' '[:lower:]' |
		grep -Ec "^[[:space:]]+[^([:space:]].*@${d//./\\.}>?\$"
}

# sm_queue_run DOMAIN -- one foreground queue run for envelopes matching
# @DOMAIN, as odmrd does it.  Returns sendmail's exit status.
sm_queue_run() {
	"$SM_SENDMAIL" -C "$SM_CF" -qf "-qR@$1" </dev/null
}

# sm_pids -- processes of this instance.  sendmail rewrites its argv (so -C is
# not visible) but always works from inside its queue directory.
sm_pids() {
	local p
	for p in /proc/[0-9]*; do
		[[ $(readlink "$p/cwd" 2>/dev/null) == "$SM_QUEUE" ]] && printf '%s\n' "${p#/proc/}"
	done
}

# sm_stop -- TERM, then KILL after 3 s, every process of this instance.
# sendmail defers SIGTERM while it waits for the SMTP server (a run stuck on
# a silent socket only exits at Timeout.initial), hence the KILL.
sm_stop() {
	[[ -n ${SM_QUEUE:-} ]] || return 0
	local pids deadline=$((SECONDS + 3))
	pids=$(sm_pids)
	[[ -z $pids ]] && return 0
	# shellcheck disable=SC2086
	kill -TERM $pids 2>/dev/null
	while ((SECONDS < deadline)); do
		pids=$(sm_pids)
		[[ -z $pids ]] && return 0
		sleep 0.1
	done
	# shellcheck disable=SC2086
	kill -KILL $pids 2>/dev/null
	sleep 0.2
	[[ -z $(sm_pids) ]]
}
