#!/bin/bash
# tests/lib/troot-init.sh - the first process of a throwaway root (tests/lib/troot.sh starts it
# as PID 1 of fresh mount, PID, UTS, network and cgroup namespaces; never run it by hand).
#
# Why: package and admin-guide tests must install, configure and purge odmrd as root on a
# Debian 12 system without changing the host. This builds that system from the host's own root
# file system: an overlay whose lower layer is / (read-only to it) and whose upper layer is a
# tmpfs, so every write - dpkg's database, /etc, /var - vanishes with the namespace. It mounts
# private /proc, a read-only /sys, a minimal /dev (no host console, no block devices), /run and
# /tmp as tmpfs, binds SHARE at /troot, brings up lo, then chroots and either execs systemd
# (boot mode) or a small reaping init (PID 1 must reap orphaned daemons).
# Trusts: its arguments and TROOT_DROP_CAPS (from troot.sh). Invariants: nothing is mounted
# outside this mount namespace (unshare gave it private propagation), so the host sees none of
# it; /proc/sys is read-only and every process inside lacks the capabilities in
# TROOT_DROP_CAPS, so nothing inside changes the kernel's global settings, modules or clock.
# Usage: TROOT_DROP_CAPS=-cap,... troot-init.sh BASE SHARE HOSTNAME MODE   (MODE: boot | plain)
set -eu
base=$1 share=$2 name=$3 mode=$4
R=$base/root

mkdir -p "$base/rw" "$R"
mount -t tmpfs -o mode=0755 troot-rw "$base/rw"
mkdir -p "$base/rw/upper" "$base/rw/work"
mount -t overlay troot -o "lowerdir=/,upperdir=$base/rw/upper,workdir=$base/rw/work" "$R"

mount -t proc -o nosuid,nodev,noexec proc "$R/proc"
# Kernel settings are global: read-only here, so neither systemd-sysctl nor binfmt nor anything
# run inside can change the host's (the capabilities troot.sh drops cover modules and the clock).
for p in sys sysrq-trigger; do
	[ -e "$R/proc/$p" ] || continue
	mount --bind "$R/proc/$p" "$R/proc/$p"
	mount -o remount,bind,ro "$R/proc/$p"
done
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$R/sys"
if [ "$mode" = boot ]; then
	# This cgroup namespace's root is the cgroup troot.sh made for it: systemd manages only that.
	mount -t tmpfs -o mode=0755,nosuid,nodev,noexec troot-cgroup "$R/sys/fs/cgroup"
	mkdir "$R/sys/fs/cgroup/unified" "$R/sys/fs/cgroup/systemd"
	mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 "$R/sys/fs/cgroup/unified"
	mount -t cgroup -o nosuid,nodev,noexec,none,name=systemd cgroup "$R/sys/fs/cgroup/systemd"
fi

mount -t tmpfs -o mode=0755,nosuid troot-dev "$R/dev"
for n in null zero full random urandom tty; do
	touch "$R/dev/$n"
	mount --bind "/dev/$n" "$R/dev/$n"
done
touch "$R/dev/console"
mount --bind /dev/null "$R/dev/console"
mkdir "$R/dev/pts" "$R/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$R/dev/pts"
ln -s pts/ptmx "$R/dev/ptmx"
mount -t tmpfs -o mode=1777,nosuid,nodev troot-shm "$R/dev/shm"
ln -s /proc/self/fd "$R/dev/fd"
ln -s /proc/self/fd/0 "$R/dev/stdin"
ln -s /proc/self/fd/1 "$R/dev/stdout"
ln -s /proc/self/fd/2 "$R/dev/stderr"

mount -t tmpfs -o mode=0755,nosuid,nodev troot-run "$R/run"
mount -t tmpfs -o mode=1777,nosuid,nodev troot-tmp "$R/tmp"
mkdir -p "$R/troot"
mount --bind "$share" "$R/troot"

hostname "$name"
echo "$name" >"$R/etc/hostname"
ip link set lo up

if [ "$mode" = boot ]; then
	# Boot only what a test needs: basic.target (journald, tmpfiles, sockets.target with the
	# enabled sockets), not multi-user.target (gettys and every service the host enables).
	cat >"$R/etc/systemd/system/troot.target" <<-'EOF'
		[Unit]
		Description=odmrd throwaway root (tests/lib/troot.sh)
		Requires=basic.target
		After=basic.target
		AllowIsolate=yes
	EOF
	exec setpriv --bounding-set "$TROOT_DROP_CAPS" chroot "$R" /usr/bin/env -i container=odmrd-troot \
		PATH=/usr/sbin:/usr/bin:/sbin:/bin /lib/systemd/systemd --unit=troot.target
fi
touch "$R/run/troot-ready"
# A minimal init: reap every child (daemons started inside are re-parented here), exit on TERM.
exec setpriv --bounding-set "$TROOT_DROP_CAPS" chroot "$R" /usr/bin/python3 -c '
import os, signal, time
signal.signal(signal.SIGTERM, lambda *a: os._exit(0))
while True:
    try:
        os.wait()
    except ChildProcessError:
        time.sleep(0.2)
'
