#!/usr/bin/python3
"""faults_customer.py - an ODMR customer (or a customer's SMTP server) that can stop on cue.

Why: tests/faults.sh kills things (Postfix's lmtp client, Postfix, odmrd, the customer) in the
middle of a delivery. To kill at a known point, the receiving side must stop there and say so.
This is smtpsink.py's server (same stored-file format, so e2e.sh's tools read the output) with
two pause points:

  --pause-in-data N       on the Nth DATA (1-based, counted over this process), after reading the
                          first line of message data: create --state-file (content "in-data N"),
                          then stop reading until --release-file exists (or --pause-max seconds).
                          The sender's writes back up, so the transfer is stalled mid-DATA.
  --pause-in-data-match RE
                          the same, on the first DATA whose header block (the lines before the
                          first empty line) matches the regular expression RE (re.search): with a
                          message larger than every buffer in between (several MB: loopback TCP
                          send buffers grow to 4 MB), the sender is then provably still inside
                          DATA, not past its final ".".
  --pause-before-reply N  on the Nth DATA: read the whole message and store it (the customer has
                          accepted it), create --state-file ("stored N"), wait for --release-file,
                          and only then send the 250. A kill meanwhile is the RFC 1047 window.

Two modes:
  odmr (default)  connect to odmrd at --port, EHLO, AUTH CRAM-MD5 --user/--password, ATRN
                  --domains; on 250 serve SMTP on the same connection (the turned line) until
                  QUIT or EOF. Prints one line: "atrn=CODE stored=N end=quit|eof|error".
  --listen        be the customer's local SMTP server for a real fetchmail (--smtphost):
                  listen on 127.0.0.1 (free port, written to --port-file), serve connections
                  one after another until SIGTERM.

Python 3 standard library + tests/lib/smtpsink.py.
"""

import argparse
import base64
import hashlib
import hmac
import os
import re
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import smtpsink  # noqa: E402


class CueSink(smtpsink.Sink):
    """smtpsink.Sink with the two pause points."""

    def __init__(self, args):
        super().__init__(args.outdir, log_path=args.log)
        self.args = args
        self.current = 0  # number of the DATA in progress
        self.matched = False  # --pause-in-data-match fired already

    def pause(self, what):
        a = self.args
        if a.state_file:
            tmp = a.state_file + ".tmp"
            with open(tmp, "w") as f:
                f.write(what + "\n")
            os.replace(tmp, a.state_file)
        self.log(0, "paused: " + what)
        end = time.monotonic() + a.pause_max
        while a.release_file and not os.path.exists(a.release_file) and time.monotonic() < end:
            time.sleep(0.02)
        self.log(0, "released")

    def next_data(self):
        with self.lock:
            self.data_count += 1
            self.current = self.data_count
        return False

    def store(self, mail_line, rcpt_lines, data):
        path = super().store(mail_line, rcpt_lines, data)
        if self.current == self.args.pause_before_reply:
            self.pause("stored %d" % self.current)
        return path


class CueSession(smtpsink.Session):
    def read_data(self, drop):
        chunks = []
        at_line_start = True
        first = True
        in_header = True
        a = self.sink.args
        while True:
            chunk = self.rfile.readline(smtpsink.DATA_CHUNK)
            if not chunk:
                return None
            if first and self.sink.current == a.pause_in_data:
                self.sink.pause("in-data %d" % self.sink.current)
            first = False
            if in_header and chunk in (b"\r\n", b"\n"):
                in_header = False
                if a.pause_in_data_match and not self.sink.matched and \
                        re.search(a.pause_in_data_match.encode(), b"".join(chunks)):
                    self.sink.matched = True
                    self.sink.pause("in-data %d (header matched)" % self.sink.current)
            if at_line_start and chunk.startswith(b"."):
                if chunk in (b".\r\n", b".\n"):
                    return b"".join(chunks)
                chunk = chunk[1:]
            chunks.append(chunk)
            at_line_start = chunk.endswith(b"\n")


def serve_socket(sink, sock):
    """Serve one SMTP session on SOCK; returns 'quit', 'eof' or 'error'."""
    rfile = sock.makefile("rb")
    wfile = sock.makefile("wb")
    s = CueSession(sink, rfile, wfile)
    end = ["eof"]
    orig_quit = s.cmd_QUIT

    def quit_(line, arg):
        end[0] = "quit"
        return orig_quit(line, arg)

    s.cmd_QUIT = quit_
    try:
        s.run()
    except Exception as e:  # the peer may vanish while we reply
        sink.log(s.conn, "error: %r" % e)
        end[0] = "error"
    for f in (wfile, rfile):
        try:
            f.close()
        except OSError:
            pass
    return end[0]


def odmr(a, sink):
    sock = socket.create_connection(("127.0.0.1", a.port), timeout=a.timeout)
    f = sock.makefile("rb")

    def reply():
        lines = []
        while True:
            ln = f.readline(4096)
            if not ln:
                return None, lines
            ln = ln.rstrip(b"\r\n")
            lines.append(ln[4:].decode("latin-1"))
            if len(ln) < 4 or ln[3:4] == b" ":
                return int(ln[:3]) if ln[:3].isdigit() else None, lines

    def cmd(text):
        sock.sendall(text.encode("latin-1") + b"\r\n")
        return reply()

    code, _ = reply()
    if code == 220:
        code, _ = cmd("EHLO customer.test")
    if code == 250:
        code, lines = cmd("AUTH CRAM-MD5")
        if code == 334:
            ch = base64.b64decode(lines[0])
            dig = hmac.new(a.password.encode(), ch, hashlib.md5).hexdigest()
            code, _ = cmd(base64.b64encode(("%s %s" % (a.user, dig)).encode()).decode())
    if code == 235:
        code, _ = cmd("ATRN " + a.domains)
        atrn = code
    else:
        atrn = "auth%s" % code
    if code != 250:
        try:
            cmd("QUIT")
        except OSError:
            pass
        print("atrn=%s stored=0 end=-" % atrn, flush=True)
        return 0
    f.close()
    sock.settimeout(a.timeout)
    end = serve_socket(sink, sock)
    sock.close()
    print("atrn=250 stored=%d end=%s" % (sink.stored, end), flush=True)
    return 0


def listen(a, sink):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(8)
    smtpsink.write_atomically(a.port_file, "%d\n" % ls.getsockname()[1])
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    ls.settimeout(0.2)
    while not stop:
        try:
            conn, _ = ls.accept()
        except socket.timeout:
            continue
        except InterruptedError:
            continue
        conn.settimeout(a.timeout)
        serve_socket(sink, conn)
        conn.close()
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, help="odmrd's port (odmr mode)")
    p.add_argument("--user")
    p.add_argument("--password")
    p.add_argument("--domains", default="")
    p.add_argument("--listen", action="store_true")
    p.add_argument("--port-file")
    p.add_argument("--outdir", required=True)
    p.add_argument("--log")
    p.add_argument("--pause-in-data", type=int, default=0)
    p.add_argument("--pause-in-data-match", metavar="RE")
    p.add_argument("--pause-before-reply", type=int, default=0)
    p.add_argument("--state-file")
    p.add_argument("--release-file")
    p.add_argument("--pause-max", type=float, default=60.0)
    p.add_argument("--timeout", type=float, default=120.0)
    a = p.parse_args()
    os.makedirs(a.outdir, exist_ok=True)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    sink = CueSink(a)
    return listen(a, sink) if a.listen else odmr(a, sink)


if __name__ == "__main__":
    sys.exit(main())
