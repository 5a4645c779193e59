#!/usr/bin/python3
"""burst.py - a burst of TCP connections to a super-server's port, for the rate-limit tests.

Why: inetd-style super-servers have rate limits that one client can trip (openbsd-inetd's
"nowait.N" per minute, systemd's socket trigger limit); the tests must show that a burst does
NOT switch the service off. A burst is N connections opened by C threads as fast as they can.
Each connection either closes at once (--mode close: the super-server has accepted it, which is
what its limit counts) or reads the greeting and sends QUIT (--mode greet: a real short
session). Loopback only. Python 3 standard library only.

    burst.py --port P [--n 300] [--conc 20] [--mode close|greet] [--timeout 5]

Prints one line: n= wall= connected= refused= greeted= closed= (greeted: got a 220;
closed: the server closed without a greeting; refused: connect() failed, i.e. nothing listens).
Exit status 0 when every connection was at least accepted.
"""

import argparse
import socket
import sys
import threading
import time


def one(port, mode, timeout, counts, lock):
    """One connection; adds its outcome to COUNTS."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    except OSError:
        with lock:
            counts["refused"] += 1
        return
    outcome = "connected"
    try:
        if mode == "greet":
            data = b""
            while b"\n" not in data:
                chunk = s.recv(512)
                if not chunk:
                    break
                data += chunk
            if data.startswith(b"220"):
                outcome = "greeted"
                s.sendall(b"QUIT\r\n")
                s.recv(512)
            else:
                outcome = "closed"
    except OSError:
        outcome = "closed"
    finally:
        s.close()
    with lock:
        counts[outcome] += 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--conc", type=int, default=20)
    ap.add_argument("--mode", choices=("close", "greet"), default="close")
    ap.add_argument("--timeout", type=float, default=5.0)
    a = ap.parse_args()
    counts = {"connected": 0, "refused": 0, "greeted": 0, "closed": 0}
    lock = threading.Lock()
    todo = list(range(a.n))
    todo_lock = threading.Lock()

    def worker():
        while True:
            with todo_lock:
                if not todo:
                    return
                todo.pop()
            one(a.port, a.mode, a.timeout, counts, lock)

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(a.conc)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    accepted = counts["connected"] + counts["greeted"] + counts["closed"]
    print("n=%d wall=%.2f connected=%d refused=%d greeted=%d closed=%d" % (
        a.n, wall, accepted, counts["refused"], counts["greeted"], counts["closed"]))
    return 0 if counts["refused"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
