#!/usr/bin/python3
"""inject.py PORT COUNT SIZE RCPT - queue COUNT messages of about SIZE bytes to RCPT through one
SMTP connection to 127.0.0.1:PORT (the benchmark Postfix's smtpd).
inject.py - COUNT SIZE RCPT DIR - write the same messages as DIR/NNNNNN.eml (LF line ends, for
submission with sendmail -odq), replacing what DIR held.
Each message is distinct (Subject and first body line carry its number); the body is
76-character lines of text."""
import os
import shutil
import smtplib
import sys


def message(rcpt, i, size, eol):
    line = ("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-.,:;!?()[]=+" * 2)[:76]
    body = eol.join([line] * max(1, (size - 200) // 78))
    return ("From: bench@x.test{e}To: {r}{e}Subject: bench {i:06d}{e}{e}message {i:06d}{e}{b}{e}"
            .format(e=eol, r=rcpt, i=i, b=body))


def main():
    port, count, size, rcpt = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    if port == "-":
        out = sys.argv[5]
        shutil.rmtree(out, ignore_errors=True)
        os.makedirs(out)
        for i in range(count):
            with open(os.path.join(out, "%06d.eml" % i), "w") as f:
                f.write(message(rcpt, i, size, "\n"))
        return
    s = smtplib.SMTP("127.0.0.1", int(port), timeout=120)
    s.ehlo("inject.test")
    for i in range(count):
        s.sendmail("bench@x.test", [rcpt], message(rcpt, i, size, "\r\n").encode())
    s.quit()


if __name__ == "__main__":
    main()
