#!/usr/bin/python3
"""inetd1.py - a one-service "nowait" inetd for odmrd's tests.

Why: odmrd is written to be started by inetd/xinetd with the accepted socket on fd 0 and fd 1.
The tests need exactly that, on a free loopback port, without root-owned inetd configuration.

    inetd1.py [--bind 127.0.0.1] [--port 0] [--port-file F] [--max-conns N]
              [--stderr F] [--log F] [--drain-timeout S] -- COMMAND [ARG...]

Listens on BIND:PORT (port 0 = a free port), prints the chosen port on stdout (and writes it to
--port-file, atomically) once it accepts connections. For every accepted connection it forks and
execs COMMAND with the socket as stdin AND stdout; stderr goes to --stderr (default /dev/null),
never to the socket. Children are reaped as they exit; --log gets one line per event:
    conn N pid=P peer=IP:PORT
    exit N pid=P status=S          (S = exit code, or -SIG if killed by a signal)
With --max-conns N it stops accepting after N connections, waits (bounded by --drain-timeout)
for its children and exits. On SIGTERM/SIGINT it stops accepting, sends SIGTERM to the children
still running, reaps them and exits 0. Loopback addresses only.
"""

import argparse
import ipaddress
import os
import select
import signal
import socket
import sys
import time


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bind", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--max-conns", type=int, default=0, help="0 = unlimited")
    p.add_argument("--stderr", default="/dev/null", help="children's stderr (appended)")
    p.add_argument("--log", help="append conn/exit events here")
    p.add_argument("--drain-timeout", type=float, default=30.0)
    p.add_argument("command", nargs=argparse.REMAINDER)
    a = p.parse_args()
    cmd = a.command[1:] if a.command[:1] == ["--"] else a.command
    if not cmd:
        p.error("no command given")
    if not ipaddress.ip_address(a.bind).is_loopback:
        p.error("only loopback addresses are allowed")

    logf = open(a.log, "a", buffering=1) if a.log else None

    def log(msg):
        if logf:
            logf.write(msg + "\n")

    family = socket.AF_INET6 if ":" in a.bind else socket.AF_INET
    ls = socket.socket(family, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((a.bind, a.port))
    ls.listen(64)
    port = ls.getsockname()[1]
    if a.port_file:
        tmp = a.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.rename(tmp, a.port_file)
    print(port, flush=True)

    children = {}  # pid -> connection number
    stop = []

    def on_term(signum, frame):
        stop.append(signum)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)

    def reap(block=False):
        while children:
            try:
                pid, st = os.waitpid(-1, 0 if block else os.WNOHANG)
            except ChildProcessError:
                children.clear()
                return
            except InterruptedError:
                continue
            if pid == 0:
                return
            n = children.pop(pid, "?")
            code = os.waitstatus_to_exitcode(st)
            log("exit %s pid=%d status=%d" % (n, pid, code))
            if block:
                return

    nconn = 0
    errfd = os.open(a.stderr, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    while not stop and (a.max_conns == 0 or nconn < a.max_conns):
        try:
            r, _, _ = select.select([ls], [], [], 0.2)
        except InterruptedError:
            r = []
        reap()
        if not r:
            continue
        try:
            conn, peer = ls.accept()
        except (InterruptedError, BlockingIOError):
            continue
        nconn += 1
        pid = os.fork()
        if pid == 0:
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                signal.signal(signal.SIGPIPE, signal.SIG_DFL)
                fd = conn.fileno()
                os.dup2(fd, 0)
                os.dup2(fd, 1)
                os.dup2(errfd, 2)
                os.closerange(3, 1024)
                os.execvp(cmd[0], cmd)
            finally:
                os._exit(127)
        conn.close()
        children[pid] = nconn
        log("conn %d pid=%d peer=%s:%d" % (nconn, pid, peer[0], peer[1]))
    ls.close()

    # Drain: wait for the children (bounded), then terminate whatever is left.
    deadline = time.monotonic() + (0 if stop else a.drain_timeout)
    while children and time.monotonic() < deadline:
        reap()
        time.sleep(0.05)
    for pid in list(children):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 5
    while children and time.monotonic() < deadline:
        reap()
        time.sleep(0.05)
    for pid in list(children):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    while children:
        reap(block=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
