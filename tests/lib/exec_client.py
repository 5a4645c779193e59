#!/usr/bin/python3
"""exec_client.py OUT USER DOMAINS - a stand-in for an SMTP queue runner under odmrd's mta = exec.

Why: t-15-exec.sh checks the literal handoff shape: after its 250, odmrd execs the configured
program with the customer's socket as fd 0/1, no shell, a clean environment, and %u / %d replaced.
This client reads the customer's greeting, says EHLO and QUIT, and records what it saw in OUT.
"""
import os
import sys


def readline(f):
    line = f.readline()
    return line.decode("latin-1").rstrip("\r\n")


def main():
    out, user, domains = sys.argv[1:4]
    rin = os.fdopen(0, "rb")
    wout = os.fdopen(1, "wb", buffering=0)
    # The environment as execve gave it (Python itself adds LC_CTYPE to os.environ).
    with open("/proc/self/environ", "rb") as f:
        names = sorted(v.split(b"=", 1)[0].decode() for v in f.read().split(b"\0") if v)
    seen = ["user=" + user, "domains=" + domains, "env=" + ",".join(names)]
    seen.append("greeting=" + readline(rin))
    wout.write(b"EHLO provider.test\r\n")
    seen.append("ehlo=" + readline(rin))
    wout.write(b"QUIT\r\n")
    seen.append("quit=" + readline(rin))
    with open(out, "w") as f:
        f.write("\n".join(seen) + "\n")


main()
