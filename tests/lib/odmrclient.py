#!/usr/bin/python3
"""odmrclient.py - a scriptable ODMR (RFC 2645) customer for odmrd's tests.

Why: the suites must drive every reply code through the real odmrd process, including the
misbehaviours (pipelining, bare LF, NUL, early talkers) that no real client produces, and compute
the SASL exchanges themselves (CRAM-MD5, SCRAM-SHA-256 with server-signature check, PLAIN) so a
test does not depend on a second SASL implementation. Python 3 standard library only.

As a module:
    from odmrclient import Client
    c = Client("127.0.0.1", port)        # reads the greeting into c.greeting
    r = c.ehlo("client.test")            # Reply: r.code (int or None), r.lines, r.token
    r = c.auth_scram("alice", "secret")  # c.scram_verified is True if v= matched
    r = c.atrn(["a.example"]); c.quit(); c.wait_eof()

From the command line: STEPs run in order, one output token per step on stdout, space separated
(a reply's code, or EOF when the server closed, TIMEOUT when it said nothing in time, OPEN/EOF
for the eof step). Example:
    odmrclient.py --port 2525 ehlo cram=alice:secret atrn=a.example quit eof
    -> 220 250 235 451 221 EOF
Steps:
    ehlo[=NAME]        EHLO NAME (default client.test)
    line=TEXT          send TEXT CRLF, read a reply
    raw=TEXT           send TEXT with Python escapes decoded (\\r \\n \\x00 \\x1b), read a reply
    send=TEXT          like raw, but read nothing
    read               read one reply
    cram=USER:PASS     AUTH CRAM-MD5 exchange, token = final code
    cram-ir=USER:PASS  AUTH CRAM-MD5 with an (illegal) initial response
    scram=USER:PASS    AUTH SCRAM-SHA-256; token = final code, with "!nosig" appended if the
                       server sent v= and it did not verify
    plain=USER:PASS    AUTH PLAIN with an initial response
    plainz=Z:USER:PASS AUTH PLAIN with authorization identity Z
    atrn[=D1,D2]       ATRN [domains]
    caps[=NAME]        EHLO; token = code, then ":" and the extension lines joined by "+"
                       (spaces as "_"), e.g. 250:STARTTLS+AUTH_CRAM-MD5+ATRN
    starttls           STARTTLS; on 220 the TLS handshake (token 220, or 220!tls-failed)
    external           AUTH EXTERNAL with an empty authorization identity ("=")
    login=USER:PASS    AUTH LOGIN (two 334 prompts)
    tlsinfo            token = the TLS version and whether the session was resumed, e.g.
                       TLSv1.3/new or TLSv1.3/resumed (- when not under TLS)
    quit               QUIT
    eof                wait up to --timeout for the server to close: EOF or OPEN
    sleep=SECONDS      pause
Options: --host (loopback only) --port --timeout SECONDS --early TEXT (send TEXT, escapes
decoded, right after connecting, before reading the greeting) --transcript FILE (append every
line sent "C: " and received "S: ", escaped). TLS: --tls (TLS from the first octet, wrapper
mode), --cafile F (verify the server against F; without it no verification), --cert F --key F
(client certificate), --servername NAME (SNI, default none), --tls-max 1.2 (no TLS 1.3).
"""

import argparse
import base64
import hashlib
import hmac
import ipaddress
import os
import socket
import ssl
import sys
import time


def connect_unix(path, wait_s, timeout):
    """Connect to odmrd's per-domain socket PATH, retrying until it appears (up to WAIT_S seconds).

    The socket is bound only after odmrd's 250 to ATRN, so an MTA stand-in races it; raises
    OSError when it never appears."""
    end = time.monotonic() + wait_s
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(path)
            return s
        except OSError:
            s.close()
            if time.monotonic() > end:
                raise
            time.sleep(0.05)


class Reply:
    """One SMTP reply: code (int, or None for EOF/TIMEOUT/garbage), its text lines, token."""

    def __init__(self, code, lines, token):
        self.code = code
        self.lines = lines
        self.token = token

    @property
    def text(self):
        return "\n".join(self.lines)

    def __repr__(self):
        return "Reply(%s, %r)" % (self.token, self.lines)


def _esc(b):
    return b.decode("latin-1").encode("unicode_escape").decode("ascii")


class Client:
    def __init__(self, host="127.0.0.1", port=25, timeout=10.0, transcript=None, early=None,
                 read_greeting=True, tls=None, wrapper=False, session=None):
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError("tests only talk to loopback addresses")
        self.timeout = timeout
        self.buf = b""
        self.closed = False
        self.tfile = open(transcript, "a") if transcript else None
        self.scram_verified = None
        self.tls = tls            # (ssl.SSLContext, server_hostname) for STARTTLS / wrapper mode
        self.session = session    # an ssl.SSLSession to offer for resumption
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.greeting = None
        if wrapper:
            self.start_tls()
        if early is not None:
            self.send(early)
        if read_greeting:
            self.greeting = self.read_reply()

    def start_tls(self):
        """Run the TLS handshake on the socket; False (and closed) if it failed."""
        if self.buf:
            raise RuntimeError("plaintext left in the buffer before the TLS handshake")
        ctx, name = self.tls
        try:
            self.sock.settimeout(self.timeout)
            self.sock = ctx.wrap_socket(self.sock, server_hostname=name, session=self.session)
            return True
        except (OSError, ssl.SSLError) as e:
            self._log("S", ("(TLS handshake failed: %s)" % e).encode())
            self.closed = True
            return False

    def starttls(self):
        r = self.cmd("STARTTLS")
        if r.code == 220 and not self.start_tls():
            r.token = "220!tls-failed"
        return r

    def tls_info(self):
        if not isinstance(self.sock, ssl.SSLSocket):
            return "-"
        return "%s/%s" % (self.sock.version(), "resumed" if self.sock.session_reused else "new")

    def _log(self, who, data):
        if self.tfile:
            for ln in data.split(b"\n"):
                if ln:
                    self.tfile.write("%s: %s\n" % (who, _esc(ln)))
            self.tfile.flush()

    def send(self, data):
        """Send raw bytes (or str, latin-1) in one write."""
        if isinstance(data, str):
            data = data.encode("latin-1")
        self._log("C", data)
        try:
            self.sock.sendall(data)
        except OSError:
            self.closed = True

    def _readline(self, deadline):
        while b"\r\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout()
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, ssl.SSLError):
                chunk = b""
            if not chunk:
                self.closed = True
                raise EOFError()
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        self._log("S", line)
        return line

    def read_reply(self, timeout=None):
        """Read one (possibly multi-line) reply."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        lines = []
        code = None
        if self.closed:
            return Reply(None, lines, "EOF")
        try:
            while True:
                line = self._readline(deadline)
                if len(line) < 3 or not line[:3].isdigit() or (len(line) > 3 and line[3:4] not in b" -"):
                    return Reply(None, lines + [line.decode("latin-1")], "BAD")
                code = int(line[:3])
                lines.append(line[4:].decode("latin-1"))
                if len(line) == 3 or line[3:4] == b" ":
                    return Reply(code, lines, str(code))
        except EOFError:
            return Reply(None, lines, "EOF")
        except socket.timeout:
            return Reply(None, lines, "TIMEOUT")

    def cmd(self, line):
        self.send(line.encode("latin-1") + b"\r\n")
        return self.read_reply()

    def ehlo(self, name="client.test"):
        return self.cmd("EHLO " + name)

    def auth_cram(self, user, password, initial_response=False):
        if initial_response:
            return self.cmd("AUTH CRAM-MD5 " + base64.b64encode(user.encode()).decode())
        r = self.cmd("AUTH CRAM-MD5")
        if r.code != 334:
            return r
        challenge = base64.b64decode(r.lines[0])
        digest = hmac.new(password.encode(), challenge, hashlib.md5).hexdigest()
        return self.cmd(base64.b64encode(("%s %s" % (user, digest)).encode()).decode())

    def auth_plain(self, user, password, authzid=""):
        ir = base64.b64encode(authzid.encode() + b"\0" + user.encode() + b"\0" + password.encode()).decode()
        return self.cmd("AUTH PLAIN " + ir)

    def auth_scram(self, user, password):
        """RFC 5802/7677 SCRAM-SHA-256 without channel binding; checks the server signature."""
        self.scram_verified = None
        name = user.replace("=", "=3D").replace(",", "=2C")
        cnonce = base64.b64encode(os.urandom(18)).decode()
        bare = "n=%s,r=%s" % (name, cnonce)
        r = self.cmd("AUTH SCRAM-SHA-256")
        if r.code != 334:
            return r
        r = self.cmd(base64.b64encode(("n,," + bare).encode()).decode())
        if r.code != 334:
            return r
        server_first = base64.b64decode(r.lines[0]).decode()
        attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
        if not attrs["r"].startswith(cnonce):
            self.send(b"*\r\n")
            return self.read_reply()
        salt = base64.b64decode(attrs["s"])
        iters = int(attrs["i"])
        salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iters)
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        stored_key = hashlib.sha256(client_key).digest()
        without_proof = "c=biws,r=" + attrs["r"]
        auth_msg = ("%s,%s,%s" % (bare, server_first, without_proof)).encode()
        sig = hmac.new(stored_key, auth_msg, hashlib.sha256).digest()
        proof = bytes(x ^ y for x, y in zip(client_key, sig))
        final = "%s,p=%s" % (without_proof, base64.b64encode(proof).decode())
        r = self.cmd(base64.b64encode(final.encode()).decode())
        if r.code != 334:
            return r
        server_final = base64.b64decode(r.lines[0]).decode()
        server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
        want = "v=" + base64.b64encode(hmac.new(server_key, auth_msg, hashlib.sha256).digest()).decode()
        self.scram_verified = hmac.compare_digest(server_final, want)
        return self.cmd("")

    def auth_login(self, user, password):
        r = self.cmd("AUTH LOGIN")
        if r.code != 334:
            return r
        r = self.cmd(base64.b64encode(user.encode()).decode())
        if r.code != 334:
            return r
        return self.cmd(base64.b64encode(password.encode()).decode())

    def atrn(self, domains=None):
        if domains:
            return self.cmd("ATRN " + (domains if isinstance(domains, str) else ",".join(domains)))
        return self.cmd("ATRN")

    def quit(self):
        return self.cmd("QUIT")

    def wait_eof(self, timeout=None):
        """True once the server has closed the connection (unread data is discarded)."""
        if self.closed:
            return True
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return False
            except (ConnectionResetError, ssl.SSLError):
                chunk = b""
            if not chunk:
                self.closed = True
                return True
            self._log("S", chunk)

    def close(self):
        self.sock.close()
        if self.tfile:
            self.tfile.close()


def _userpass(arg):
    user, _, password = arg.partition(":")
    return user, password


def _unescape(text):
    return text.encode("latin-1").decode("unicode_escape").encode("latin-1")


def run_steps(c, steps, out):
    for step in steps:
        name, has_arg, arg = step.partition("=")
        if name == "ehlo":
            r = c.ehlo(arg if has_arg else "client.test")
        elif name == "line":
            r = c.cmd(arg)
        elif name == "raw":
            c.send(_unescape(arg))
            r = c.read_reply()
        elif name == "send":
            c.send(_unescape(arg))
            continue
        elif name == "read":
            r = c.read_reply()
        elif name == "cram":
            r = c.auth_cram(*_userpass(arg))
        elif name == "cram-ir":
            r = c.auth_cram(*_userpass(arg), initial_response=True)
        elif name == "scram":
            r = c.auth_scram(*_userpass(arg))
            if c.scram_verified is False:
                out.append(r.token + "!nosig")
                continue
        elif name == "plain":
            r = c.auth_plain(*_userpass(arg))
        elif name == "plainz":
            z, _, rest = arg.partition(":")
            r = c.auth_plain(*_userpass(rest), authzid=z)
        elif name == "atrn":
            r = c.atrn(arg if has_arg else None)
        elif name == "caps":
            r = c.ehlo(arg if has_arg else "client.test")
            if r.code is not None:
                out.append("%d:%s" % (r.code, "+".join(x.replace(" ", "_") for x in r.lines[1:])))
                continue
        elif name == "starttls":
            r = c.starttls()
        elif name == "external":
            r = c.cmd("AUTH EXTERNAL =")
        elif name == "login":
            r = c.auth_login(*_userpass(arg))
        elif name == "tlsinfo":
            out.append(c.tls_info())
            continue
        elif name == "quit":
            r = c.quit()
        elif name == "eof":
            out.append("EOF" if c.wait_eof() else "OPEN")
            continue
        elif name == "sleep":
            time.sleep(float(arg))
            continue
        else:
            raise SystemExit("odmrclient: unknown step %r" % step)
        out.append(r.token)


def tls_context(a):
    """The client's TLS settings from the options (verification only with --cafile)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if a.cafile:
        ctx.load_verify_locations(a.cafile)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if a.cert:
        ctx.load_cert_chain(a.cert, a.key)
    if a.tls_max == "1.2":
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    if a.servername is None:
        ctx.check_hostname = False
    return ctx, a.servername


def main():
    p = argparse.ArgumentParser(description="scriptable ODMR customer (see module docstring)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--timeout", type=float, default=10.0)
    p.add_argument("--early", help="send this (escapes decoded) before reading the greeting")
    p.add_argument("--transcript", help="append the conversation to this file")
    p.add_argument("--tls", action="store_true", help="TLS from the first octet (wrapper mode)")
    p.add_argument("--cafile", help="verify the server certificate against these CAs")
    p.add_argument("--cert", help="client certificate (PEM)")
    p.add_argument("--key", help="client certificate's key (PEM)")
    p.add_argument("--servername", help="SNI name to send")
    p.add_argument("--tls-max", help="highest TLS version, e.g. 1.2")
    p.add_argument("steps", nargs="*")
    a = p.parse_args()
    early = _unescape(a.early) if a.early is not None else None
    c = Client(a.host, a.port, a.timeout, a.transcript, early=early, tls=tls_context(a),
               wrapper=a.tls)
    out = [c.greeting.token]
    try:
        run_steps(c, a.steps, out)
    finally:
        print(" ".join(out), flush=True)
        c.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
