#!/usr/bin/python3
"""loadclient.py - many ODMR sessions with mixed outcomes, for tests/load.sh.

Why: the load test must push thousands of real sessions through xinetd and odmrd and know, for
every one, that it got the reply it should. Session i plays scenario i % 8:
    atrn453   alice, CRAM-MD5, ATRN a.example -> 453 (fake empty queue), QUIT
    atrn450   alice, CRAM-MD5, ATRN c.example (bob's) -> 450, QUIT
    atrn451   alice, CRAM-MD5, ATRN a.example on the no-map port -> 451, QUIT
    badpw     alice, wrong password -> 535, QUIT
    quit      QUIT right after the greeting -> 221
    dropauth  EHLO, AUTH CRAM-MD5 -> 334, then hang up
    garbage   a line with a NUL -> 500, closed
    atrnall   bob, CRAM-MD5, ATRN (all his domains) -> 453, QUIT
Concurrently a customer's ATRN may meet another session of the same customer holding its lock:
450 is then also correct for atrn453/atrnall (counted apart as "busy").

    loadclient.py --port P --nomap-port P2 --sessions N [--concurrency C] [--ppid XINETD_PID]
With --concurrency 1 the sessions run one after another. With C > 1 they run in waves of C
threads, started --stagger seconds apart (xinetd's listen backlog is 64); every thread of a wave
connects and reads its greeting, then all wait at a barrier (so C odmrd processes are alive at
once; with --ppid the live children of that pid are counted there and sampled every 50 ms:
peak_children) before
playing their scenario. Prints one line of key=value figures:
    sessions= wall= rate= ok= bad= busy450= peak_children= <scenario>:<code>=count ...
and up to 10 "mismatch ..." lines. Exit 0 if every session got an expected reply.
"""

import argparse
import collections
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from odmrclient import Client  # noqa: E402

GOOD = ("alice", "alice-secret")
BOB = ("bob", "bob-secret")
SCENARIOS = ["atrn453", "atrn450", "atrn451", "badpw", "quit", "dropauth", "garbage", "atrnall"]
# scenario -> (port key, expected token strings, also acceptable under concurrency)
EXPECT = {
    "atrn453": ("main", "220 250 235 453 221", "220 250 235 450 221"),
    "atrn450": ("main", "220 250 235 450 221", None),
    "atrn451": ("nomap", "220 250 235 451 221", None),
    "badpw": ("main", "220 250 535 221", None),
    "quit": ("main", "220 221", None),
    "dropauth": ("main", "220 250 334", None),
    "garbage": ("main", "220 500 EOF", None),
    "atrnall": ("main", "220 250 235 453 221", "220 250 235 450 221"),
}
# Which token is the scenario's outcome (the one the figures count).
OUTCOME_AT = {"atrn453": 3, "atrn450": 3, "atrn451": 3, "atrnall": 3, "badpw": 2, "quit": 1,
              "dropauth": 2, "garbage": 1}


def play(c, name):
    """The rest of scenario NAME after the greeting; returns the tokens after the greeting."""
    t = []
    if name == "quit":
        t.append(c.quit().token)
        return t
    if name == "garbage":
        c.send(b"\x00garbage\r\n")
        t.append(c.read_reply().token)
        t.append("EOF" if c.wait_eof() else "OPEN")
        return t
    t.append(c.ehlo().token)
    if name == "dropauth":
        t.append(c.cmd("AUTH CRAM-MD5").token)
        return t
    user = BOB if name == "atrnall" else GOOD
    if name == "badpw":
        user = (GOOD[0], "wrong")
    r = c.auth_cram(*user)
    t.append(r.token)
    if r.code != 235:
        t.append(c.quit().token)
        return t
    dom = {"atrn453": "a.example", "atrn451": "a.example", "atrn450": "c.example"}.get(name)
    t.append(c.atrn(dom).token)
    t.append(c.quit().token)
    return t


def children_of(ppid):
    n = 0
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        fields = st[st.rindex(")") + 2:].split()
        if int(fields[1]) == ppid and fields[0] != "Z":
            n += 1
    return n


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = collections.Counter()
        self.ok = self.bad = self.busy = 0
        self.mismatch = []
        self.peak = 0

    def record(self, i, name, tokens):
        got = " ".join(tokens)
        _, want, alt = EXPECT[name]
        with self.lock:
            k = OUTCOME_AT[name]
            last = tokens[k] if len(tokens) > k else tokens[-1]
            self.counts["%s:%s" % (name, last)] += 1
            if got == want:
                self.ok += 1
            elif alt is not None and got == alt:
                self.ok += 1
                self.busy += 1
            else:
                self.bad += 1
                if len(self.mismatch) < 10:
                    self.mismatch.append("mismatch session=%d %s got='%s' want='%s'" % (i, name, got, want))


def session(i, ports, timeout, stats, barrier=None):
    name = SCENARIOS[i % len(SCENARIOS)]
    port = ports[EXPECT[name][0]]
    tokens = []
    c = None
    try:
        c = Client("127.0.0.1", port, timeout)
        tokens.append(c.greeting.token)
        if barrier is not None:
            try:
                barrier.wait(timeout)
            except threading.BrokenBarrierError:
                pass
        if c.greeting.code == 220:
            tokens += play(c, name)
    except OSError as e:
        tokens.append("ERR:%s" % e.__class__.__name__)
    finally:
        if c is not None:
            c.sock.close()
    stats.record(i, name, tokens)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--nomap-port", type=int, required=True)
    p.add_argument("--sessions", type=int, required=True)
    p.add_argument("--concurrency", type=int, default=1)
    p.add_argument("--ppid", type=int, default=0)
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument("--stagger", type=float, default=0.01, help="seconds between connects in a wave")
    a = p.parse_args()
    ports = {"main": a.port, "nomap": a.nomap_port}
    stats = Stats()
    t0 = time.monotonic()
    if a.concurrency <= 1:
        for i in range(a.sessions):
            session(i, ports, a.timeout, stats)
    else:
        i = 0
        while i < a.sessions:
            n = min(a.concurrency, a.sessions - i)
            # xinetd listens with a backlog of 64: the connections of a wave are started
            # a.stagger seconds apart so none waits for a SYN-ACK retransmission; they
            # still all live at once, held at the barrier until every one has its greeting.
            def at_barrier():
                # Every thread has its greeting and none has gone on: all n odmrd are alive now.
                if a.ppid:
                    stats.peak = max(stats.peak, children_of(a.ppid))

            barrier = threading.Barrier(n, action=at_barrier)
            threads = [threading.Thread(target=session, args=(i + k, ports, a.timeout, stats, barrier))
                       for k in range(n)]
            done = threading.Event()

            def sample():
                while not done.is_set():
                    if a.ppid:
                        stats.peak = max(stats.peak, children_of(a.ppid))
                    done.wait(0.05)

            sampler = threading.Thread(target=sample)
            sampler.start()
            for t in threads:
                t.start()
                time.sleep(a.stagger)
            for t in threads:
                t.join()
            done.set()
            sampler.join()
            i += n
    wall = time.monotonic() - t0
    counts = " ".join("%s=%d" % kv for kv in sorted(stats.counts.items()))
    print("sessions=%d wall=%.1f rate=%.1f ok=%d bad=%d busy450=%d peak_children=%d %s" % (
        a.sessions, wall, a.sessions / wall if wall else 0, stats.ok, stats.bad, stats.busy,
        stats.peak, counts))
    for m in stats.mismatch:
        print(m)
    return 0 if stats.bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
