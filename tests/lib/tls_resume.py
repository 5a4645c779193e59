#!/usr/bin/python3
"""tls_resume.py PORT[,PORT2] CAFILE MODE [TLS-MAX] [CERT KEY] - two TLS sessions, the second
(to PORT2 if given) offering the first one's session ticket; prints "first=<version>/<new|resumed>
second=<...> ticket=<yes|no> caps=<the second session's EHLO keywords>".

Why: every odmrd connection is a new process, so a ticket can only be accepted if another process
sealed it with the same key (tls_ticket_key_file). This is the client that reports reuse: Python's
ssl module (OpenSSL). MODE starttls or wrapper; TLS-MAX 1.2 to stay below TLS 1.3 ("-" for none);
CERT/KEY: a client certificate for both sessions.
"""
import os
import ssl
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from odmrclient import Client  # noqa: E402

ports, cafile, mode = [int(p) for p in sys.argv[1].split(",")], sys.argv[2], sys.argv[3]
tls_max = sys.argv[4] if len(sys.argv) > 4 else "-"
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.load_verify_locations(cafile)
if tls_max == "1.2":
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
if len(sys.argv) > 6:
    ctx.load_cert_chain(sys.argv[5], sys.argv[6])


def session(port, prev):
    c = Client("127.0.0.1", port, timeout=10, tls=(ctx, "provider.test"), wrapper=mode == "wrapper",
               session=prev)
    if mode == "starttls":
        c.ehlo()
        if c.starttls().code != 220:
            return c, "no-tls", None, ""
    r = c.ehlo()   # under TLS 1.3 the ticket arrives with the first reply after the handshake
    info = c.tls_info()
    sess = c.sock.session if isinstance(c.sock, ssl.SSLSocket) else None
    caps = "+".join(x.replace(" ", "_") for x in r.lines[1:])
    c.quit()
    c.close()
    return c, info, sess, caps


_, first, sess, _ = session(ports[0], None)
_, second, _, caps = session(ports[-1], sess)
print("first=%s second=%s ticket=%s caps=%s" % (first, second, "yes" if sess is not None and
                                                 sess.has_ticket else "no", caps))
