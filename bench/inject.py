#!/usr/bin/python3
"""inject.py PORT COUNT SIZE RCPT - queue COUNT messages of about SIZE bytes to RCPT through one
SMTP connection to 127.0.0.1:PORT (the benchmark Postfix's smtpd). Each message is distinct
(Subject and first body line carry its number); the body is 76-character lines of text."""
import smtplib
import sys


def main():
    port, count, size, rcpt = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    line = ("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-.,:;!?()[]=+" * 2)[:76]
    body_lines = max(1, (size - 200) // 78)
    body = "\r\n".join([line] * body_lines)
    s = smtplib.SMTP("127.0.0.1", port, timeout=120)
    s.ehlo("inject.test")
    for i in range(count):
        msg = ("From: bench@x.test\r\nTo: %s\r\nSubject: bench %06d\r\n\r\nmessage %06d\r\n%s\r\n"
               % (rcpt, i, i, body))
        s.sendmail("bench@x.test", [rcpt], msg.encode())
    s.quit()


if __name__ == "__main__":
    main()
