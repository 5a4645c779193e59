#!/usr/bin/python3
"""hostile_mta.py PORT SOCKET [MODE] - a customer and a misbehaving MTA or customer around one
odmrd session.

Why: the relay trusts the MTA for content but not for framing, and the customer for nothing. This
plays both ends of a reversed session: the customer (ATRN, greeting, EHLO reply, then plain SMTP
server) and an MTA connecting to odmrd's domain socket. Prints one line of key=value results.
MODE bare-lf (default): the MTA sends LHLO, MAIL, RCPT, DATA and then message data with a bare LF;
    odmrd must end the customer session unfinished (no end-of-data reaches the customer) and close
    the MTA side without a reply, so the MTA keeps the message.
MODE trickle-greeting: the customer sends its 220 greeting one octet per second (25 octets); odmrd
    must give up after its greeting deadline (idle_timeout), whole, not per octet.
MODE trickle-rcpt: the customer answers RCPT one octet every 0.7 s, each octet well within any
    per-read timeout; max_session_time must end the reversed state: the MTA's open transaction
    dropped unanswered, nothing further to the customer.
"""
import hashlib
import hmac
import select
import base64
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from odmrclient import connect_unix  # noqa: E402

port, sockpath = int(sys.argv[1]), sys.argv[2]
mode = sys.argv[3] if len(sys.argv) > 3 else "bare-lf"
res = {}


def lines(sock, buf=[b""]):
    """Read one CRLF line (customer side)."""
    while b"\r\n" not in buf[0]:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError
        buf[0] += chunk
    line, buf[0] = buf[0].split(b"\r\n", 1)
    return line.decode("latin-1")


def reply(sock):
    while True:
        line = lines(sock)
        if len(line) < 4 or line[3] == " ":
            return line


c = socket.create_connection(("127.0.0.1", port), timeout=10)
reply(c)
c.sendall(b"EHLO client.test\r\n")
reply(c)
c.sendall(b"AUTH CRAM-MD5\r\n")
ch = base64.b64decode(reply(c)[4:])
dig = hmac.new(b"alice-secret", ch, hashlib.md5).hexdigest()
c.sendall(base64.b64encode(("alice " + dig).encode()) + b"\r\n")
reply(c)
c.sendall(b"ATRN a.example\r\n")
res["atrn"] = reply(c)[:3]
t_turn = time.monotonic()


def customer_rest():
    """Everything odmrd still sends to the customer, until it closes."""
    got = b""
    c.settimeout(30)
    try:
        while True:
            chunk = c.recv(65536)
            if not chunk:
                break
            got += chunk
        res["customer"] = "EOF"
    except OSError:
        res["customer"] = "RESET"
    return got


def trickle(sock, text, pause):
    """Send TEXT one octet per PAUSE seconds; stop early when odmrd closes (or says anything)."""
    try:
        for b in text:
            sock.sendall(bytes([b]))
            if select.select([sock], [], [], pause)[0]:
                return
    except OSError:
        pass


if mode == "trickle-greeting":
    trickle(c, b"220 slow.test ESMTP xyz\r\n", 1)
    rest = customer_rest()
    res["closed_after_s"] = "%d" % (time.monotonic() - t_turn)
    res["sent_to_customer"] = rest.decode("latin-1").strip().replace("\r\n", "|") or "-"
    print(" ".join("%s=%s" % kv for kv in res.items()))
    sys.exit(0)
c.sendall(b"220 customer.test ESMTP\r\n")
lines(c)                                    # EHLO from odmrd
c.sendall(b"250 customer.test\r\n")

m = connect_unix(sockpath, 5, 10)
mf = m.makefile("rb")


def mta(cmd, customer_answer=None):
    """Send CMD as the MTA; let the customer answer what odmrd forwards; return odmrd's reply."""
    m.sendall(cmd + b"\r\n")
    if customer_answer is not None:
        res.setdefault("forwarded", []).append(lines(c))
        c.sendall(customer_answer + b"\r\n")
    while True:
        line = mf.readline().decode("latin-1").rstrip("\r\n")
        if len(line) < 4 or line[3] == " ":
            return line[:3]


mf.readline()                               # the replayed greeting
if mode == "trickle-rcpt":
    res["lhlo"] = mta(b"LHLO mta.test")
    res["mail"] = mta(b"MAIL FROM:<s@x.test>", b"250 ok")
    m.sendall(b"RCPT TO:<u@a.example>\r\n")
    res["forwarded"].append(lines(c))
    trickle(c, b"250 2.1.5 ok\r\n", 0.7)
    rest = customer_rest()
    res["closed_after_s"] = "%d" % (time.monotonic() - t_turn)
    res["sent_to_customer"] = rest.decode("latin-1").strip().replace("\r\n", "|") or "-"
    m.settimeout(30)
    res["mta_after_rcpt"] = mf.read().decode("latin-1").strip().replace("\r\n", "|") or "EOF"
    res["forwarded"] = "|".join(res["forwarded"])
    print(" ".join("%s=%s" % kv for kv in res.items()))
    sys.exit(0)
res["lhlo"] = mta(b"LHLO mta.test")
res["mail"] = mta(b"MAIL FROM:<s@x.test>", b"250 ok")
res["rcpt"] = mta(b"RCPT TO:<u@a.example>", b"250 ok")
res["data"] = mta(b"DATA", b"354 go")
m.sendall(b"Subject: smuggle\r\n\r\nbare\nline\r\n.\r\n")
got = customer_rest()
res["customer_saw_end"] = "yes" if b"\r\n.\r\n" in got else "no"
rest = mf.read()
res["mta_after_data"] = rest.decode("latin-1").strip().replace("\r\n", "|") or "EOF"
keys = ["atrn", "lhlo", "mail", "rcpt", "data", "customer", "customer_saw_end", "mta_after_data"]
print(" ".join("%s=%s" % (k, res.get(k, "-")) for k in keys), "forwarded=" + "|".join(res["forwarded"]))
