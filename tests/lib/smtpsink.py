#!/usr/bin/python3
"""SMTP sink for odmrd end-to-end tests: the customer's "local MTA".

fetchmail, acting as the ODMR customer, relays the provider's SMTP session into
this server (fetchmail --smtphost 127.0.0.1/PORT). Every accepted message is
written to OUTDIR as one file, NNNNNN.msg, created atomically (written to a
temporary name, then renamed), in this format:

    MAIL FROM:<sender> PARAMS      the MAIL command line exactly as received
    RCPT TO:<rcpt> PARAMS          one line per *accepted* RCPT, as received
                                   (empty line)
    <message data>                 exactly as received, dot-stuffing removed,
                                   without the terminating "." line

Envelope lines end in CRLF. read_message() parses such a file.

Test controls:
  --tempfail-rcpt RE   answer 450 to RCPTs whose address matches RE (re.search)
  --reject-rcpt RE     answer 550 to RCPTs whose address matches RE
  --drop-in-data N     on the Nth DATA (counted over the server's lifetime,
                       from 1), read one line of message data, then close the
                       connection without replying
  --log FILE           append a transcript (commands and replies, data sizes)

Prints the listening port on stdout (and writes it to --port-file) once it
accepts connections; exits 0 on SIGTERM or SIGINT.

The protocol engine (Session) also speaks LMTP server (RFC 2033) for
fake_lmtp_server.py, which imports this module.

Python 3 standard library only (no smtpd/asyncore: deprecated, gone in 3.12).
"""

import argparse
import ipaddress
import os
import re
import signal
import socket
import socketserver
import sys
import tempfile
import threading
import time

HOSTNAME = "sink.test"
MAX_SIZE = 10240000  # advertised SIZE, enforced on MAIL ... SIZE=
MAX_CMD = 4096  # longest command line accepted (RFC 5321 asks for 512)
DATA_CHUNK = 65536  # read size for message data; longer lines are fine

# Capabilities after the EHLO/LHLO greeting line. No PIPELINING, on purpose:
# odmrd must cope with a customer MTA that answers one command at a time.
CAPABILITIES = ["8BITMIME", "SIZE %d" % MAX_SIZE, "ENHANCEDSTATUSCODES"]


class Dropped(Exception):
    """Raised to end a session by closing the connection without a reply."""


class Sink:
    """Configuration and state shared by all sessions of one server process."""

    def __init__(self, outdir, tempfail_re=None, reject_re=None,
                 drop_in_data=0, log_path=None, lmtp=False):
        self.outdir = outdir
        self.tempfail_re = re.compile(tempfail_re) if tempfail_re else None
        self.reject_re = re.compile(reject_re) if reject_re else None
        self.drop_in_data = drop_in_data
        self.lmtp = lmtp
        self.lock = threading.Lock()
        self.connections = 0
        self.data_count = 0
        self.stored = 0
        self.log_file = open(log_path, "a", encoding="utf-8",
                             errors="backslashreplace") if log_path else None

    def log(self, conn, text):
        if self.log_file:
            with self.lock:
                self.log_file.write("%.3f conn %d %s\n" % (time.time(), conn, text))
                self.log_file.flush()

    def next_connection(self):
        with self.lock:
            self.connections += 1
            return self.connections

    def next_data(self):
        """Count a DATA command; True if this one must be dropped."""
        with self.lock:
            self.data_count += 1
            return self.data_count == self.drop_in_data

    def store(self, mail_line, rcpt_lines, data):
        """Write one message file atomically; return its path."""
        with self.lock:
            self.stored += 1
            name = "%06d.msg" % self.stored
        fd, tmp = tempfile.mkstemp(dir=self.outdir, prefix=".tmp-")
        os.fchmod(fd, 0o644)  # mkstemp makes 0600; let any test user read it
        with os.fdopen(fd, "wb") as f:
            f.write(mail_line + b"\r\n")
            for line in rcpt_lines:
                f.write(line + b"\r\n")
            f.write(b"\r\n")
            f.write(data)
        path = os.path.join(self.outdir, name)
        os.replace(tmp, path)
        return path


def angle_address(arg):
    """Return the address inside <...> at the start of arg, or None."""
    m = re.match(rb"\s*<([^<>]*)>", arg)
    return m.group(1) if m else None


class Session:
    """One SMTP or LMTP server conversation over binary file objects."""

    def __init__(self, sink, rfile, wfile):
        self.sink = sink
        self.rfile = rfile
        self.wfile = wfile
        self.conn = sink.next_connection()
        self.greeted = False
        self.reset()

    def reset(self):
        self.mail_line = None
        self.rcpt_lines = []  # accepted RCPT command lines
        self.rcpts = []  # their addresses (for LMTP per-recipient replies)

    def reply(self, *lines):
        """Send a (multi-line) reply; each line is 'NNN text'."""
        out = b""
        for i, line in enumerate(lines):
            sep = "-" if i < len(lines) - 1 else " "
            text = line[:3] + sep + line[4:]
            self.sink.log(self.conn, "> " + text)
            out += text.encode("utf-8", "surrogateescape") + b"\r\n"
        self.wfile.write(out)
        self.wfile.flush()

    def run(self):
        self.sink.log(self.conn, "connect")
        self.reply("220 %s %s ready" % (HOSTNAME, "LMTP" if self.sink.lmtp else "ESMTP"))
        try:
            while True:
                line = self.rfile.readline(MAX_CMD)
                if not line:
                    self.sink.log(self.conn, "EOF")
                    return
                if not line.endswith(b"\n"):
                    self.sink.log(self.conn, "command line too long")
                    self.reply("500 5.5.2 Line too long")
                    return
                line = line.rstrip(b"\r\n")
                self.sink.log(self.conn, "< " + line.decode("utf-8", "backslashreplace"))
                verb, _, arg = line.partition(b" ")
                handler = getattr(self, "cmd_" + verb.decode("ascii", "replace").upper(), None)
                if handler is None:
                    self.reply("500 5.5.2 Command not recognized")
                elif handler(line, arg) is False:
                    return
        except Dropped:
            self.sink.log(self.conn, "dropped connection (no reply)")
        except (ConnectionError, OSError) as e:
            self.sink.log(self.conn, "connection error: %s" % e)

    def greet(self, arg):
        self.greeted = True
        self.reset()
        self.reply("250 " + HOSTNAME, *("250 " + c for c in CAPABILITIES))

    def cmd_EHLO(self, line, arg):
        if self.sink.lmtp:
            self.reply("500 5.5.1 LMTP server: use LHLO")
        else:
            self.greet(arg)

    def cmd_LHLO(self, line, arg):
        if self.sink.lmtp:
            self.greet(arg)
        else:
            self.reply("500 5.5.1 SMTP server: use EHLO or HELO")

    def cmd_HELO(self, line, arg):
        if self.sink.lmtp:
            self.reply("500 5.5.1 LMTP server: use LHLO")
            return
        self.greeted = True
        self.reset()
        self.reply("250 " + HOSTNAME)

    def cmd_MAIL(self, line, arg):
        if not self.greeted:
            return self.reply("503 5.5.1 Send EHLO first")
        if self.mail_line is not None:
            return self.reply("503 5.5.1 Nested MAIL command")
        if not arg.upper().startswith(b"FROM:") or angle_address(arg[5:]) is None:
            return self.reply("501 5.5.4 Syntax: MAIL FROM:<address>")
        m = re.search(rb"(?i)\bSIZE=(\d+)", arg)
        if m and int(m.group(1)) > MAX_SIZE:
            return self.reply("552 5.3.4 Message too big")
        self.mail_line = line
        self.reply("250 2.1.0 Ok")

    def cmd_RCPT(self, line, arg):
        if self.mail_line is None:
            return self.reply("503 5.5.1 Need MAIL command")
        addr = angle_address(arg[3:]) if arg.upper().startswith(b"TO:") else None
        if not addr:
            return self.reply("501 5.5.4 Syntax: RCPT TO:<address>")
        text = addr.decode("utf-8", "surrogateescape")
        if self.sink.reject_re and self.sink.reject_re.search(text):
            return self.reply("550 5.1.1 <%s>: Recipient rejected (test)" % text)
        if self.sink.tempfail_re and self.sink.tempfail_re.search(text):
            return self.reply("450 4.2.1 <%s>: Recipient temporarily unavailable (test)" % text)
        self.rcpt_lines.append(line)
        self.rcpts.append(text)
        self.reply("250 2.1.5 Ok")

    def cmd_DATA(self, line, arg):
        if self.mail_line is None:
            return self.reply("503 5.5.1 Need MAIL command")
        if not self.rcpts:
            return self.reply("554 5.5.1 No valid recipients")
        drop = self.sink.next_data()
        self.reply("354 End data with <CR><LF>.<CR><LF>")
        data = self.read_data(drop)
        if data is None:
            self.sink.log(self.conn, "EOF in DATA")
            return False
        path = self.sink.store(self.mail_line, self.rcpt_lines, data)
        self.sink.log(self.conn, "<data %d bytes> stored %s" % (len(data), os.path.basename(path)))
        if self.sink.lmtp:
            # LMTP: one reply per accepted recipient, in RCPT order.
            for rcpt in self.rcpts:
                self.reply("250 2.1.5 <%s> delivered" % rcpt)
        else:
            self.reply("250 2.0.0 Ok: stored as " + os.path.basename(path))
        self.reset()

    def read_data(self, drop):
        """Read message data up to the "." line; undo dot-stuffing.

        Returns the data, or None on EOF. If drop is set, raises Dropped
        after the first line (or at EOF) instead.
        """
        chunks = []
        at_line_start = True
        while True:
            chunk = self.rfile.readline(DATA_CHUNK)
            if drop:
                raise Dropped()
            if not chunk:
                return None
            if at_line_start and chunk.startswith(b"."):
                if chunk in (b".\r\n", b".\n"):
                    return b"".join(chunks)
                chunk = chunk[1:]
            chunks.append(chunk)
            at_line_start = chunk.endswith(b"\n")

    def cmd_RSET(self, line, arg):
        self.reset()
        self.reply("250 2.0.0 Ok")

    def cmd_NOOP(self, line, arg):
        self.reply("250 2.0.0 Ok")

    def cmd_QUIT(self, line, arg):
        self.reply("221 2.0.0 Bye")
        return False


def read_message(path):
    """Parse a stored message file into a dict (bytes values)."""
    with open(path, "rb") as f:
        raw = f.read()
    head, _, data = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    return {
        "mail_line": lines[0],
        "mail_from": angle_address(lines[0][10:]),
        "rcpt_lines": lines[1:],
        "rcpts": [angle_address(l[8:]) for l in lines[1:]],
        "data": data,
    }


class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        Session(self.server.sink, self.rfile, self.wfile).run()


class TCPServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


class TCP6Server(TCPServer):
    address_family = socket.AF_INET6


def serve(servers, cleanup=None):
    """Run servers (each in a thread) until SIGTERM/SIGINT; then stop them."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    for srv in servers:
        threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.2},
                         daemon=True).start()
    while not stop.wait(0.5):
        pass
    for srv in servers:
        srv.shutdown()
        srv.server_close()
    if cleanup:
        cleanup()


def add_sink_options(p):
    """Options shared with fake_lmtp_server.py."""
    p.add_argument("--outdir", required=True, help="directory for stored messages")
    p.add_argument("--tempfail-rcpt", metavar="RE", help="450 to matching RCPT addresses")
    p.add_argument("--reject-rcpt", metavar="RE", help="550 to matching RCPT addresses")
    p.add_argument("--drop-in-data", metavar="N", type=int, default=0,
                   help="drop the connection during the Nth DATA, without a reply")
    p.add_argument("--log", metavar="FILE", help="append a session transcript to FILE")


def sink_from_args(args, lmtp):
    os.makedirs(args.outdir, exist_ok=True)
    return Sink(args.outdir, args.tempfail_rcpt, args.reject_rcpt,
                args.drop_in_data, args.log, lmtp=lmtp)


def write_atomically(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def main():
    p = argparse.ArgumentParser(description="SMTP sink for odmrd tests")
    p.add_argument("--bind", default="127.0.0.1", help="loopback address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="TCP port, 0 = pick a free one")
    p.add_argument("--port-file", help="write the port number to this file")
    add_sink_options(p)
    args = p.parse_args()
    if not ipaddress.ip_address(args.bind).is_loopback:
        p.error("--bind must be a loopback address")

    server_class = TCP6Server if ":" in args.bind else TCPServer
    srv = server_class((args.bind, args.port), Handler)
    srv.sink = sink_from_args(args, lmtp=False)
    port = srv.server_address[1]
    if args.port_file:
        write_atomically(args.port_file, "%d\n" % port)
    print(port, flush=True)
    serve([srv])


if __name__ == "__main__":
    sys.exit(main())
