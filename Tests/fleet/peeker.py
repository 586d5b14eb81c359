#!/usr/bin/env python3
"""The fleet tier's hostile local user: an account of the host watching, with inotify, the
directories the role writes secrets into, and trying to open every file that appears or changes
there the moment it does (a file that is readable by others for a moment, before its mode is set,
is read then). Run as the unprivileged account, inside the host:

    peeker.py --report FILE --ready FILE --stop FILE DIR...

A directory not there yet is watched for from its parent (the first run creates /etc/hearthminds).
For every file it manages to open and read it writes a line "PATH BYTES" to --report: never the
content. It stops when --stop exists. Only Python's standard library (the host has python3).
"""
from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import errno
import os
import select
import struct
import sys

IN_MODIFY = 0x002
IN_ATTRIB = 0x004
IN_CLOSE_WRITE = 0x008
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_ISDIR = 0x40000000
IN_NONBLOCK = 0o4000
MASK = IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE
EVENT = struct.Struct("iIII")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--report", required=True)
    parser.add_argument("--ready", required=True)
    parser.add_argument("--stop", required=True)
    parser.add_argument("dirs", nargs="+")
    args = parser.parse_args()
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    fd = libc.inotify_init1(IN_NONBLOCK)
    if fd < 0:
        sys.exit("inotify_init1: %s" % os.strerror(ctypes.get_errno()))
    wanted = {os.path.abspath(d) for d in args.dirs}
    watches = {}  # watch descriptor -> directory

    def watch(path):
        if path in watches.values():
            return True
        wd = libc.inotify_add_watch(fd, os.fsencode(path), MASK)
        if wd >= 0:
            watches[wd] = path
        return wd >= 0

    for d in sorted(wanted):
        if not watch(d):
            watch(os.path.dirname(d))  # it appears later
    report = open(args.report, "a", buffering=1)
    seen = set()

    def peek(path):
        try:
            f = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            return
        try:
            data = os.read(f, 1 << 20)
        except OSError:
            data = None
        finally:
            os.close(f)
        if data is not None and (path, len(data)) not in seen:
            seen.add((path, len(data)))
            report.write("%s %d\n" % (path, len(data)))

    with open(args.ready, "w") as f:
        f.write("%d\n" % os.getpid())
    while not os.path.exists(args.stop):
        ready, _, _ = select.select([fd], [], [], 0.2)
        if not ready:
            continue
        try:
            buf = os.read(fd, 65536)
        except OSError as error:
            if error.errno == errno.EAGAIN:
                continue
            raise
        offset = 0
        while offset < len(buf):
            wd, mask, _cookie, length = EVENT.unpack_from(buf, offset)
            name = buf[offset + EVENT.size: offset + EVENT.size + length].rstrip(b"\0")
            offset += EVENT.size + length
            directory = watches.get(wd)
            if directory is None or not name:
                continue
            path = os.path.join(directory, os.fsdecode(name))
            if mask & IN_ISDIR:
                # (made, or its mode changed: a directory made 0700 and then opened up is watched then)
                if path in wanted and path not in watches.values() and watch(path):
                    # what was written in it before the watch began
                    try:
                        for entry in os.listdir(path):
                            sub = os.path.join(path, entry)
                            if sub in wanted:
                                watch(sub)
                            else:
                                peek(sub)
                    except OSError:
                        pass
                continue
            if directory in wanted:
                peek(path)
    report.close()


if __name__ == "__main__":
    main()
