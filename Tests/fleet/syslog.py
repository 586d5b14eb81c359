#!/usr/bin/env python3
"""The fleet tier's syslog on the hosts: a datagram socket at each host's /dev/log (bound from the
controller through /proc/PID/root), so that what the hosts send to syslog - Ansible's modules log
each invocation there ("Invoked with ..."), with the options not marked no_log - is kept for the
test to look for passwords in.

    syslog.py --listen HOST=PATH [--listen ...] --out FILE --ready FILE --stop FILE

One line per message in --out (0600): "HOST<TAB>message", line breaks in a message made spaces.
"""
from __future__ import annotations

import argparse
import os
import selectors
import socket
import sys


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", action="append", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--ready", required=True)
    parser.add_argument("--stop", required=True)
    args = parser.parse_args()
    sel = selectors.DefaultSelector()
    for item in args.listen:
        host, path = item.split("=", 1)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        os.chmod(path, 0o666)  # (as a syslog daemon's: every account of the host may log)
        sel.register(sock, selectors.EVENT_READ, host)
    out = os.fdopen(os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab", buffering=0)
    with open(args.ready, "w") as f:
        f.write("%d\n" % os.getpid())
    while not os.path.exists(args.stop):
        for key, _ in sel.select(timeout=0.5):
            data = key.fileobj.recv(65536)
            out.write(key.data.encode() + b"\t" + data.replace(b"\n", b" ").replace(b"\0", b" ") + b"\n")
    out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
