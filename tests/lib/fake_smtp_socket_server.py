#!/usr/bin/env python3
"""Minimal SMTP server on unix sockets, standing in for odmrd in harness tests.

Listens on RUNDIR/<domain> for each domain given, answers SMTP as a final
destination would (220, EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT), and
stores every accepted message in OUTDIR as NNNN.msg:

    domain a.example
    conn 3
    mail <sender@x>
    rcpt <u1@a.example>
    <empty line>
    message data, dot-unstuffed, CRLF kept as received

It also appends one line per event to OUTDIR/events.log, with a monotonic
timestamp and a connection number shared by all sockets, so a test can tell
whether the client held one connection open while it opened another:

    0.000123 c1 open a.example
    0.000456 c1 < EHLO mta.odmrd.test
    0.000500 c1 + RCPT TO:<u@a.example>
    0.000789 c1 close quit|eof|error ...

"< " marks a command read after the reply to the previous one was sent, "+ "
one the client had already sent before that reply (pipelining).

Runs until SIGTERM/SIGINT, then removes its sockets.  Once every socket is
bound it writes OUTDIR/ready.
"""

import argparse
import os
import selectors
import signal
import socket
import threading
import time

EHLO_KEYWORDS = ["PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "SIZE 10485760"]


class Recorder:
    """Serialises writes from the connection threads to OUTDIR."""

    def __init__(self, outdir):
        self.outdir = outdir
        self.lock = threading.Lock()
        self.t0 = time.monotonic()
        self.conns = 0
        self.msgs = 0
        self.log = open(os.path.join(outdir, "events.log"), "a", buffering=1)

    def new_conn(self):
        with self.lock:
            self.conns += 1
            return self.conns

    def event(self, conn, text):
        with self.lock:
            self.log.write("%.6f c%d %s\n" % (time.monotonic() - self.t0, conn, text))

    def store(self, domain, conn, mail_from, rcpts, data):
        with self.lock:
            self.msgs += 1
            path = os.path.join(self.outdir, "%04d.msg" % self.msgs)
            head = ["domain " + domain, "conn %d" % conn, "mail " + mail_from]
            head += ["rcpt " + r for r in rcpts]
            # Write under a temporary name so readers never see half a message.
            with open(path + ".tmp", "wb") as f:
                f.write(("\n".join(head) + "\n\n").encode())
                f.write(data)
            os.rename(path + ".tmp", path)


def arg_of(line, verb):
    """'MAIL FROM:<a@b> SIZE=1' -> '<a@b>' (the path, without parameters)."""
    rest = line[len(verb):].strip()
    return rest.split()[0] if rest else ""


class LineReader:
    """Reads CRLF lines from a socket and tells which were pipelined.

    A line counts as pipelined when it was already buffered, i.e. the client
    sent it before it could have seen the server's reply to the previous one.
    """

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.fresh = False  # buffer contents arrived after the last reply

    def replied(self):
        self.fresh = False

    def readline(self):
        """Return (line with its terminator, pipelined), or (b"", False) at EOF."""
        pipelined = bool(self.buf) and not self.fresh
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                return b"", False
            self.buf += chunk
            self.fresh = True
        line, _, self.buf = self.buf.partition(b"\n")
        return line + b"\n", pipelined


def serve(sock, domain, rec):
    conn = rec.new_conn()
    rec.event(conn, "open " + domain)
    rd = LineReader(sock)

    def reply(text):
        sock.sendall(text.encode() + b"\r\n")
        rd.replied()

    mail_from, rcpts, how = None, [], "eof"
    try:
        reply("220 fake.%s ESMTP fake_smtp_socket_server" % domain)
        while True:
            raw, pipelined = rd.readline()
            if not raw:
                break
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            rec.event(conn, ("+ " if pipelined else "< ") + line)
            verb = line.upper()
            if verb.startswith("EHLO"):
                mail_from, rcpts = None, []
                lines = ["fake.%s" % domain] + EHLO_KEYWORDS
                for kw in lines[:-1]:
                    sock.sendall(b"250-" + kw.encode() + b"\r\n")
                reply("250 " + lines[-1])
            elif verb.startswith("HELO"):
                mail_from, rcpts = None, []
                reply("250 fake.%s" % domain)
            elif verb.startswith("MAIL FROM:"):
                if mail_from is not None:
                    reply("503 5.5.1 nested MAIL")
                else:
                    mail_from, rcpts = arg_of(line, "MAIL FROM:"), []
                    reply("250 2.1.0 ok")
            elif verb.startswith("RCPT TO:"):
                if mail_from is None:
                    reply("503 5.5.1 need MAIL")
                else:
                    rcpts.append(arg_of(line, "RCPT TO:"))
                    reply("250 2.1.5 ok")
            elif verb == "DATA":
                if not rcpts:
                    reply("503 5.5.1 need RCPT")
                    continue
                reply("354 go ahead")
                data = bytearray()
                while True:
                    chunk, _ = rd.readline()
                    if not chunk:
                        raise ConnectionError("eof in DATA")
                    if chunk in (b".\r\n", b".\n"):
                        break
                    data += chunk[1:] if chunk.startswith(b".") else chunk
                rec.store(domain, conn, mail_from, rcpts, bytes(data))
                rec.event(conn, "stored %d rcpt" % len(rcpts))
                mail_from, rcpts = None, []
                reply("250 2.0.0 stored")
            elif verb == "RSET":
                mail_from, rcpts = None, []
                reply("250 2.0.0 ok")
            elif verb == "NOOP":
                reply("250 2.0.0 ok")
            elif verb == "QUIT":
                reply("221 2.0.0 bye")
                how = "quit"
                break
            else:
                reply("502 5.5.2 not implemented")
    except (ConnectionError, OSError) as e:
        how = "error %s" % e
    finally:
        rec.event(conn, "close " + how)
        sock.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rundir")
    ap.add_argument("outdir")
    ap.add_argument("domains", nargs="+")
    ap.add_argument("--mode", default="0660", help="socket mode, octal (default 0660)")
    args = ap.parse_args()

    os.makedirs(args.outdir, exist_ok=True)
    rec = Recorder(args.outdir)
    sel = selectors.DefaultSelector()
    paths = []
    for d in args.domains:
        path = os.path.join(args.rundir, d)
        if os.path.exists(path):
            os.unlink(path)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
        os.chmod(path, int(args.mode, 8))
        s.listen(16)
        paths.append(path)
        sel.register(s, selectors.EVENT_READ, d)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    open(os.path.join(args.outdir, "ready"), "w").close()

    try:
        while not stop.is_set():
            for key, _ in sel.select(timeout=0.2):
                c, _ = key.fileobj.accept()
                threading.Thread(target=serve, args=(c, key.data, rec), daemon=True).start()
    finally:
        for p in paths:
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass


if __name__ == "__main__":
    main()
