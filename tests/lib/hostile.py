#!/usr/bin/python3
"""hostile.py - misbehaving ODMR customers for tests/t-50-hostile.sh.

Why: odmrclient.py drives the well-formed conversation and the simple framing errors; the
hostile suite also needs customers that vanish at every step, drip one byte at a time, never
read, send lines of exact sizes, inject control characters into SASL user names, and measure
how long a 535 takes. Each run also reports its local port, so the suite can find the odmrd
process that served it in inetd1.py's log ("conn N pid=P peer=127.0.0.1:LPORT") and check that
this very process exited cleanly. Python 3 standard library only; reuses odmrclient.Client.

    hostile.py --port P [--timeout S] [--early TEXT] [--no-greeting] [--rcvbuf N]
               [--lport-file F] [--drip-interval S] STEP...
Prints two lines: the tokens (as odmrclient.py: greeting code, then one token per step; "-"
for the greeting with --no-greeting), then "lport=N secs=S" (S: seconds from connect to the
end of the last step). Steps: every odmrclient.py step, plus
    bigline=N,PREFIX  send PREFIX padded with "A" to exactly N octets including CRLF, read a reply
    cramx=USER:PASS   AUTH CRAM-MD5 with USER escape-decoded (\\x1b \\r \\n), token = final code
    plainz=Z:U:PASS   AUTH PLAIN with authzid Z and authcid U (initial response)
    close             close the connection (FIN) and stop; token CLOSED
    reset             close with SO_LINGER 0 (RST) and stop; token RST
    drip=TEXT         send TEXT (escapes decoded) one octet every --drip-interval seconds, stop
                      early once the server says something; then read a reply
    flood=S           never read; send "EHLO flood.test" every 20 ms for up to S seconds, one
                      command at a time (the server reads each before the next arrives); token
                      SENDFAIL once a send fails (the server gave up and closed), else STILLOPEN
    mark=NAME         append NAME to LPORT_FILE.mark (with --lport-file), for the suite to act on
    hold=S            keep the connection open S seconds, reading nothing

    hostile.py timing --port P [--n 20] --known USER:WRONGPASS --unknown USER:PASS
CRAM-MD5 failures, alternating known user with a wrong password and unknown user, one per
connection; measures from sending the CRAM-MD5 response to receiving the 535. Prints
"known_median_ms unknown_median_ms known_codes unknown_codes".
"""

import base64
import hashlib
import hmac
import os
import select
import socket
import statistics
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from odmrclient import Client, _unescape, run_steps  # noqa: E402


def cram_response(challenge_b64, user, password):
    challenge = base64.b64decode(challenge_b64)
    digest = hmac.new(password, challenge, hashlib.md5).hexdigest().encode()
    return base64.b64encode(user + b" " + digest)


def step(c, st, out, opts):
    """Run one step; returns False when the connection is gone on purpose (stop)."""
    name, has_arg, arg = st.partition("=")
    if name == "bigline":
        n, _, prefix = arg.partition(",")
        body = prefix.encode("latin-1")
        body += b"A" * (int(n) - 2 - len(body))
        c.send(body + b"\r\n")
        out.append(c.read_reply().token)
    elif name == "cramx":
        user, _, password = arg.rpartition(":")
        r = c.cmd("AUTH CRAM-MD5")
        if r.code == 334:
            c.send(cram_response(r.lines[0], _unescape(user), password.encode()) + b"\r\n")
            r = c.read_reply()
        out.append(r.token)
    elif name == "plainz":
        z, u, password = arg.split(":", 2)
        ir = base64.b64encode(b"\0".join([z.encode(), u.encode(), password.encode()])).decode()
        out.append(c.cmd("AUTH PLAIN " + ir).token)
    elif name == "close":
        c.sock.close()
        out.append("CLOSED")
        return False
    elif name == "reset":
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.sock.close()
        out.append("RST")
        return False
    elif name == "drip":
        for b in _unescape(arg):
            r, _, _ = select.select([c.sock], [], [], 0)
            if r:
                break
            c.send(bytes([b]))
            r, _, _ = select.select([c.sock], [], [], opts.drip_interval)
            if r:
                break
        out.append(c.read_reply().token)
    elif name == "flood":
        end = time.monotonic() + float(arg)
        token = "STILLOPEN"
        c.sock.settimeout(1.0)
        # No Nagle: two commands coalesced into one segment would be refused as pipelining (554).
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while time.monotonic() < end:
            try:
                c.sock.send(b"EHLO flood.test\r\n")
            except socket.timeout:
                pass  # our own send buffer is full as well: keep trying until the deadline
            except OSError:
                token = "SENDFAIL"
                break
            time.sleep(0.02)
        out.append(token)
    elif name == "mark":
        if opts.lport_file:
            with open(opts.lport_file + ".mark", "a") as f:
                f.write(arg + "\n")
        return True
    elif name == "hold":
        time.sleep(float(arg))
        return True
    else:
        run_steps(c, [st], out)
    return True


def run(argv):
    import argparse

    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--timeout", type=float, default=10.0)
    p.add_argument("--early")
    p.add_argument("--no-greeting", action="store_true")
    p.add_argument("--rcvbuf", type=int, default=0)
    p.add_argument("--lport-file")
    p.add_argument("--drip-interval", type=float, default=2.0)
    p.add_argument("steps", nargs="*")
    a = p.parse_args(argv)
    t0 = time.monotonic()
    if a.rcvbuf:
        # The receive buffer must be set before connect() to limit the advertised window.
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, a.rcvbuf)
        s.settimeout(a.timeout)
        s.connect((a.host, a.port))
        c = Client.__new__(Client)
        c.timeout, c.buf, c.closed, c.tfile, c.scram_verified = a.timeout, b"", False, None, None
        c.sock, c.greeting = s, None
    else:
        c = Client(a.host, a.port, a.timeout, read_greeting=False)
    lport = c.sock.getsockname()[1]
    if a.lport_file:
        with open(a.lport_file + ".tmp", "w") as f:
            f.write("%d\n" % lport)
        os.rename(a.lport_file + ".tmp", a.lport_file)
    out = []
    try:
        if a.early is not None:
            c.send(_unescape(a.early))
        if a.no_greeting:
            out.append("-")
        else:
            out.append(c.read_reply().token)
        for st in a.steps:
            if not step(c, st, out, a):
                break
    finally:
        secs = time.monotonic() - t0
        print(" ".join(out))
        print("lport=%d secs=%.2f" % (lport, secs), flush=True)
        try:
            c.sock.close()
        except OSError:
            pass
    return 0


def timing(argv):
    import argparse

    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--n", type=int, default=20)
    p.add_argument("--known", required=True)
    p.add_argument("--unknown", required=True)
    a = p.parse_args(argv)
    res = {"known": [], "unknown": []}
    codes = {"known": set(), "unknown": set()}
    for i in range(2 * a.n):
        kind = "known" if i % 2 == 0 else "unknown"
        user, _, password = getattr(a, kind).partition(":")
        c = Client("127.0.0.1", a.port, 10.0)
        c.ehlo()
        r = c.cmd("AUTH CRAM-MD5")
        if r.code != 334:
            codes[kind].add(r.token)
            c.close()
            continue
        resp = cram_response(r.lines[0], user.encode(), password.encode()) + b"\r\n"
        t = time.monotonic()
        c.send(resp)
        r = c.read_reply()
        res[kind].append((time.monotonic() - t) * 1000)
        codes[kind].add(r.token)
        c.cmd("QUIT")
        c.close()
    med = {k: statistics.median(v) if v else -1 for k, v in res.items()}
    print("%.1f %.1f %s %s" % (med["known"], med["unknown"], ",".join(sorted(codes["known"])),
                               ",".join(sorted(codes["unknown"]))))
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["timing"]:
        sys.exit(timing(sys.argv[2:]))
    sys.exit(run(sys.argv[1:]))
