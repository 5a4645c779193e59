#!/usr/bin/python3
"""Stand-in for odmrd's MTA side, used only to validate tests/lib/postfix.sh.

Listens on one unix socket per domain, RUNDIR/DOMAIN (where the private
Postfix instance's odmrl transport connects), speaks LMTP server (LHLO, MAIL,
RCPT, DATA with one reply per accepted recipient, RSET, NOOP, QUIT) and stores
each message in OUTDIR exactly like smtpsink.py (same file format, same
--tempfail-rcpt/--reject-rcpt/--drop-in-data/--log options).

Socket permissions: Postfix's lmtp client runs as user postfix, so each socket
is made group postfix, mode 0660 (binding under umask 022 would give 0755 and
the client would get EACCES); RUNDIR itself must be searchable by postfix.

Writes "ready" to stdout once every socket is listening; exits 0 on SIGTERM
or SIGINT, removing its sockets.
"""

import argparse
import grp
import os
import socketserver
import sys

from smtpsink import Handler, add_sink_options, serve, sink_from_args


class UnixServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True


def main():
    p = argparse.ArgumentParser(description="fake LMTP server on RUNDIR/DOMAIN sockets")
    p.add_argument("--rundir", required=True, help="directory of the per-domain sockets")
    p.add_argument("--group", default="postfix", help="group owning the sockets")
    p.add_argument("domains", nargs="+", metavar="DOMAIN")
    add_sink_options(p)
    args = p.parse_args()

    sink = sink_from_args(args, lmtp=True)
    gid = grp.getgrnam(args.group).gr_gid
    paths = [os.path.join(args.rundir, d) for d in args.domains]
    servers = []
    for path in paths:
        if os.path.exists(path):  # stale socket of an earlier run
            os.unlink(path)
        srv = UnixServer(path, Handler)
        os.chown(path, -1, gid)
        os.chmod(path, 0o660)
        srv.sink = sink
        servers.append(srv)
    print("ready", flush=True)

    def remove_sockets():
        for path in paths:
            os.unlink(path)

    serve(servers, cleanup=remove_sockets)


if __name__ == "__main__":
    sys.exit(main())
