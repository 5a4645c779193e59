#!/usr/bin/python3
"""tls_mta.py SOCKET DONE-FILE N - an MTA delivering one message of N lines through odmrd's socket.

Why: t-60 needs the reversed state over TLS with the real fetchmail --ssl as the customer but no
real MTA: this waits (bounded) for odmrd's per-domain socket, speaks LMTP as Postfix's lmtp
client does (LHLO, MAIL, RCPT, DATA, QUIT), checks every reply, then creates DONE-FILE (the fake
postqueue then reports an empty queue). Prints "lmtp=CODE,CODE,..." and the seconds it took from
DATA to the end-of-data reply.
"""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from odmrclient import connect_unix  # noqa: E402

path, done, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
try:
    s = connect_unix(path, 30, 120)
except OSError:
    print("lmtp=no-socket")
    sys.exit(1)
f = s.makefile("rb")


def reply():
    while True:
        line = f.readline()
        if len(line) < 4 or line[3:4] != b"-":
            return line[:3].decode("latin-1") or "EOF"


codes = [reply()]
for cmd in (b"LHLO mta.test", b"MAIL FROM:<s@x.test>", b"RCPT TO:<u@a.example>", b"DATA"):
    s.sendall(cmd + b"\r\n")
    codes.append(reply())
body = b"".join(b"Subject: tls %d lines\r\n\r\n" % n if i == 0 else
                (b"." if i % 7 == 0 else b"") + b"line %05d of the TLS test message\r\n" % i
                for i in range(n))
t0 = time.monotonic()
s.sendall(body + b".\r\n")
codes.append(reply())
secs = time.monotonic() - t0
s.sendall(b"QUIT\r\n")
codes.append(reply())
open(done, "w").close()
print("lmtp=%s data_s=%.1f" % (",".join(codes), secs))
