#!/usr/bin/python3
"""local_user.py PORT RUNDIR HOLDFILE - local users at a domain socket during a reversed session.

Why (issue 11 #1): odmrd's per-domain sockets were created 0666 and the relay served anyone, so an
unprivileged local user who could reach run_dir/a.example while alice was in the reversed state
got 250 to a MAIL and a RCPT of its own choosing, and the message went to alice's server. This
plays alice (ATRN, then a plain SMTP server on the turned connection, recording every command it
gets) and, while her session is open, three local clients of run_dir/a.example:
  - uid 65534 (nobody) with no group of the MTA's: must not even reach the socket;
  - uid 65534 with gid postfix (a user in the MTA's group): reaches it, must be closed unanswered;
  - root (the MTA may be root): may talk, but a RCPT outside a.example must get a 4xx from odmrd
    and never reach alice.
Then it removes HOLDFILE (the fake postqueue then lists nothing, so odmrd ends the session) and
waits for odmrd's QUIT. Prints one line of key=value results. Run as root.
"""
import grp
import os
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from odmrclient import Client  # noqa: E402

port, rundir, hold = int(sys.argv[1]), sys.argv[2], sys.argv[3]
sock_path = os.path.join(rundir, "a.example")
res = {}
seen = []  # commands alice's server received


def serve_customer(c):
    """alice's SMTP server on the turned connection: 250 to everything, 221 to QUIT."""
    c.send(b"220 customer.test ESMTP\r\n")
    while True:
        try:
            line = c._readline(time.monotonic() + 30)
        except (EOFError, socket.timeout):
            res["customer_end"] = "EOF"
            return
        text = line.decode("latin-1")
        seen.append(text)
        verb = text[:4].upper()
        if verb == "EHLO":
            c.send(b"250-customer.test\r\n250 8BITMIME\r\n")
        elif verb == "QUIT":
            c.send(b"221 bye\r\n")
            res["customer_end"] = "QUIT"
            return
        else:
            c.send(b"250 ok\r\n")


# The intruder, run as another user: connect, read what comes within 3 s, try MAIL and RCPT.
INTRUDER = r'''
import socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print("connect=" + type(e).__name__); sys.exit(0)
s.settimeout(3)
def get():
    try:
        d = s.recv(4096)
    except OSError as e:
        return type(e).__name__
    return d[:3].decode("latin-1") if d else "EOF"
g = get()
out = ["greeting=" + g]
if g == "220":
    for cmd in (b"LHLO evil.test\r\n", b"MAIL FROM:<evil@evil.test>\r\n", b"RCPT TO:<victim@outside.test>\r\n"):
        s.sendall(cmd); out.append(cmd.split(b" ")[0].decode() + "=" + get())
print(" ".join(out))
'''


def intruder(gid):
    """Run INTRUDER as uid 65534 with primary group GID and no other group."""
    r = subprocess.run(["setpriv", "--reuid=65534", "--regid=%d" % gid, "--clear-groups",
                        sys.executable, "-c", INTRUDER, sock_path],
                       capture_output=True, text=True, timeout=20)
    return r.stdout.strip() or "error:" + "_".join(r.stderr.split()[-6:])


def mta_root():
    """Root, as a Sendmail queue run would be: allowed, but only a.example recipients pass."""
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock_path)
    f = s.makefile("rwb", buffering=0)

    def rep():
        code = None
        while True:
            line = f.readline()
            if not line:
                return "EOF"
            code = line[:3].decode()
            if line[3:4] != b"-":
                return code

    out = {"mta_greeting": rep()}
    for key, cmd in (("mta_lhlo", b"LHLO mta.test"), ("mta_mail", b"MAIL FROM:<s@x.test>"),
                     ("rcpt_outside", b"RCPT TO:<victim@outside.test>"),
                     ("rcpt_sub", b"RCPT TO:<bob@a.example.com>"),
                     ("rcpt_in", b"RCPT TO:<u@a.example>"), ("mta_rset", b"RSET"),
                     ("mta_quit", b"QUIT")):
        f.write(cmd + b"\r\n")
        out[key] = rep()
    s.close()
    return out


c = Client("127.0.0.1", port, timeout=10)
c.ehlo()
c.auth_cram("alice", "alice-secret")
res["atrn"] = c.atrn(["a.example"]).token
if res["atrn"] == "250":
    t = threading.Thread(target=serve_customer, args=(c,), daemon=True)
    t.start()
    time.sleep(0.5)  # odmrd greets, EHLOs, and listens
    st = os.stat(sock_path)
    res["sockmode"] = "%04o:%s" % (st.st_mode & 0o7777, grp.getgrgid(st.st_gid).gr_name)
    res["nobody"] = intruder(65534).replace(" ", ",")
    res["postfix_group"] = intruder(grp.getgrnam("postfix").gr_gid).replace(" ", ",")
    res.update(mta_root())
    os.unlink(hold)
    t.join(15)
rcpts = [x.split(":", 1)[1] for x in seen if x.upper().startswith("RCPT TO:")]
res["customer_rcpts"] = ",".join(rcpts) or "-"
res["customer_mail_from"] = ",".join(x.split(":", 1)[1] for x in seen if x.upper().startswith("MAIL FROM:")) or "-"
print(" ".join("%s=%s" % (k, v) for k, v in res.items()))
