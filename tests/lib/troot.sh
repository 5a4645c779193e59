# shellcheck shell=bash
# tests/lib/troot.sh - a throwaway Debian root for package and admin-guide tests.
#
# Why: the Debian package must be installed, configured, started and purged for real (dpkg,
# adduser, systemd-tmpfiles, systemctl, the system Postfix) without changing the host's /etc or
# dpkg database, and without a network or a download: debootstrap would need both and minutes.
# The root is the host's own / under an overlay whose writes go to a tmpfs, in private mount,
# PID, UTS, network and cgroup namespaces (tests/lib/troot-init.sh builds it). So it has exactly
# the host's Debian 12 with the packages tools/install-deps.sh installed (Postfix, xinetd,
# libsasl2 modules, fetchmail ...), and all of it disappears at troot_stop. The network
# namespace has only lo: nothing inside can reach the host's or anyone else's network.
# Two modes: plain (a reaping init as PID 1, no service manager: a host without systemd) and
# boot (systemd as PID 1, booted to basic.target: units, sockets.target, tmpfiles at boot).
#
# Interface (source after tests/lib/common.sh; needs root, unshare, nsenter):
#   troot_start [--boot] [--name HOSTNAME]   start it; sets TROOT_PID (its PID 1, host view)
#                                            and TROOT_SHARE ($WORK/troot-share, seen inside
#                                            as /troot, read-write both ways). Returns 1 (and
#                                            logs why) if it cannot start.
#   troot_exec CMD [ARG...]                  run CMD inside as root, with stdin/stdout/stderr
#                                            passed through, a clean environment (PATH, HOME,
#                                            LANG=C.UTF-8) and / as cwd; returns CMD's status.
#   troot_sh 'SHELL TEXT'                    bash -c TEXT inside (set -e is NOT implied).
#   troot_changes                            what was written in the root so far, one line per
#                                            path: "f /etc/x" (file), "d /etc" (directory),
#                                            "l ..." (symlink), "D /etc/y" (deleted).
#   troot_stop                               kill everything inside, drop the namespaces and
#                                            the cgroups made for them. Also run by the suite's
#                                            exit trap (troot_start registers it).
# The host's files are visible inside at their usual paths (the overlay's lower layer), so a
# built .deb or a test script in the tree can be used directly; what is written inside stays
# inside, except under /troot. Boot mode: troot_start returns once "systemctl
# is-system-running --wait" says running or degraded; journalctl works inside (odmrd's syslog
# lines land there), "systemctl start postfix" starts the system Postfix inside. Packages: every
# dependency of odmrd is installed on the host (tools/install-deps.sh), so "dpkg -i DEB" or
# "apt-get install -y /absolute/path/odmrd_*.deb" works without a network. A host's
# /usr/sbin/policy-rc.d (Docker-style images have one) is visible inside too and stops
# maintainer scripts from starting or stopping services: remove it inside
# (troot_exec rm -f /usr/sbin/policy-rc.d) to behave like a stock Debian.
# Limits: the kernel is the host's (/proc/sys is read-only inside, and module, clock, raw-I/O,
# BPF and similar capabilities are dropped); one troot per suite at a time (TROOT_* globals).
# Example (what tests/package.sh does):
#     . tests/lib/common.sh; . tests/lib/troot.sh
#     troot_start --boot || t_summary
#     troot_exec dpkg -i "$DEB"
#     troot_exec systemctl enable --now odmrd.socket
#     troot_exec python3 "$LIB/odmrclient.py" --port 366 ehlo quit
#     troot_stop

TROOT_PID=
TROOT_UNSHARE_PID=
TROOT_CGROUPS=()
# Capabilities no process inside gets (setpriv --bounding-set): the ones that reach past the
# namespaces - kernel modules, the clock, raw I/O, kernel log, accounting, audit and LSM
# control, BPF and perf. Together with the read-only /proc/sys the root cannot change the host.
export TROOT_DROP_CAPS=-sys_module,-sys_time,-sys_rawio,-syslog,-sys_pacct,-wake_alarm,-block_suspend,-audit_control,-mac_admin,-mac_override,-bpf,-perfmon

# troot_log TEXT: harness messages, marked as such in the suite's output.
troot_log() { printf '# troot: %s\n' "$*" >&2; }

# troot_start [--boot] [--name HOSTNAME]
troot_start() {
	local mode=plain name=odmrd-troot
	while [ $# -gt 0 ]; do
		case $1 in
		--boot) mode=boot ;;
		--name) name=$2; shift ;;
		*) troot_log "troot_start: unknown option $1"; return 1 ;;
		esac
		shift
	done
	[ -z "$TROOT_PID" ] || { troot_log "troot_start: already started"; return 1; }
	local base=$WORK/troot
	TROOT_SHARE=$WORK/troot-share
	mkdir -p "$base" "$TROOT_SHARE"

	# Boot mode: systemd gets a cgroup of its own in each hierarchy it uses (made here, given to
	# it as the root of its cgroup namespace, removed at troot_stop).
	local cg_dirs=()
	if [ "$mode" = boot ]; then
		local h d
		for h in unified systemd; do
			[ -d "/sys/fs/cgroup/$h" ] || { troot_log "no /sys/fs/cgroup/$h: boot mode needs the hybrid hierarchy"; return 1; }
			d=/sys/fs/cgroup/$h/odmrd-troot.$$
			mkdir -p "$d" || return 1
			cg_dirs+=("$d")
		done
		TROOT_CGROUPS=("${cg_dirs[@]}")
	fi
	# A subshell moves itself into those cgroups, then becomes unshare; its child is PID 1.
	(
		for d in "${cg_dirs[@]}"; do echo "$BASHPID" >"$d/cgroup.procs" || exit 1; done
		exec unshare --mount --propagation private --pid --fork --uts --net --cgroup \
			bash "$LIB/troot-init.sh" "$base" "$TROOT_SHARE" "$name" "$mode"
	) >"$WORK/troot.log" 2>&1 &
	TROOT_UNSHARE_PID=$!
	T_BG_PIDS+=("$TROOT_UNSHARE_PID")
	# t_cleanup exits with the status it finds in $?: keep the suite's.
	trap 'troot_rc=$?; troot_stop; (exit "$troot_rc"); t_cleanup' EXIT

	if ! wait_for 10 troot_pid_found; then
		troot_log "the namespace did not start: $(tail -5 "$WORK/troot.log")"
		troot_stop
		return 1
	fi
	if [ "$mode" = boot ]; then
		local state
		if ! wait_for 30 troot_exec test -S /run/systemd/private; then
			troot_log "systemd did not start: $(tail -5 "$WORK/troot.log")"
			troot_stop
			return 1
		fi
		state=$(troot_exec timeout 60 systemctl is-system-running --wait 2>&1)
		case $state in
		running | degraded) ;;
		*)
			troot_log "systemd did not boot (is-system-running: '$state')"
			troot_exec systemctl --failed --no-pager >&2 2>&1
			troot_stop
			return 1
			;;
		esac
		[ "$state" = degraded ] && troot_log "booted degraded: $(troot_exec systemctl --failed --no-legend --plain --no-pager | awk '{ print $1 }' | tr '\n' ' ')"
	elif ! wait_for 10 troot_exec test -e /run/troot-ready; then
		troot_log "the root was not set up: $(tail -5 "$WORK/troot.log")"
		troot_stop
		return 1
	fi
	return 0
}

# troot_pid_found: sets TROOT_PID once unshare's child (the namespace's PID 1) exists and has
# entered its chroot.
troot_pid_found() {
	local p
	p=$(pgrep -P "$TROOT_UNSHARE_PID" 2>/dev/null | head -1)
	[ -n "$p" ] || return 1
	[ "$(readlink "/proc/$p/root")" != / ] || return 1
	TROOT_PID=$p
}

# troot_exec CMD [ARG...]: run CMD inside, as root, in every namespace of the root.
troot_exec() {
	[ -n "$TROOT_PID" ] || { troot_log "troot_exec: not started"; return 125; }
	nsenter -t "$TROOT_PID" -m -p -n -u -C -r -w -- setpriv --bounding-set "$TROOT_DROP_CAPS" \
		/usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"
}

# troot_sh TEXT: bash -c TEXT inside.
troot_sh() { troot_exec bash -c "$1"; }

# troot_changes: the overlay's upper layer (only the root's mount namespace sees it), as paths.
troot_changes() {
	[ -n "$TROOT_PID" ] || { troot_log "troot_changes: not started"; return 1; }
	nsenter -t "$TROOT_PID" -m -- find "$WORK/troot/rw/upper" -mindepth 1 \
		\( -type c -printf 'D /%P\n' \) -o -printf '%y /%P\n' | sort -k2
}

# troot_stop: end the root (idempotent).
troot_stop() {
	if [ -n "$TROOT_PID" ]; then
		# SIGKILL to a PID namespace's first process kills every process in it.
		kill -KILL "$TROOT_PID" 2>/dev/null
	fi
	if [ -n "$TROOT_UNSHARE_PID" ]; then
		wait_for 10 sh -c "! kill -0 $TROOT_UNSHARE_PID 2>/dev/null" || kill -KILL "$TROOT_UNSHARE_PID" 2>/dev/null
		wait "$TROOT_UNSHARE_PID" 2>/dev/null
	fi
	TROOT_PID= TROOT_UNSHARE_PID=
	# The cgroups systemd made under ours are empty once its processes are gone; deepest first.
	local d _
	for d in "${TROOT_CGROUPS[@]}"; do
		[ -d "$d" ] || continue
		for _ in $(seq 50); do
			find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
			[ -d "$d" ] || break
			sleep 0.1
		done
		[ -d "$d" ] && troot_log "could not remove cgroup $d"
	done
	TROOT_CGROUPS=()
	return 0
}
