#!/usr/bin/python3
"""syslog_sink.py - a stand-in for /dev/log: what odmrd sends to syslog, one line per message.

Why: odmrd reports some problems only through syslog (e.g. a log_file it refuses to use). A test
bind-mounts this socket over /dev/log in a private mount namespace and reads the file.

    syslog_sink.py SOCKET OUTFILE

Binds a unix datagram socket at SOCKET (mode 0666), prints "ready" once bound, then appends each
datagram received ("<PRI>timestamp odmrd[pid]: text") as one line to OUTFILE until SIGTERM.
"""

import os
import signal
import socket
import sys


def main():
    path, out = sys.argv[1], sys.argv[2]
    if os.path.exists(path):
        os.unlink(path)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    os.chmod(path, 0o666)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("ready", flush=True)
    with open(out, "ab", buffering=0) as f:
        while True:
            msg = s.recv(65536)
            f.write(msg.rstrip(b"\0\n").replace(b"\n", b" ") + b"\n")


if __name__ == "__main__":
    main()
