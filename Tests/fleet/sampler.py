#!/usr/bin/env python3
"""The fleet tier's process sampler: where a password could leak into a process's arguments or
environment, on the controller or on the hosts.

    sampler.py run --root PID --out FILE --count FILE --stop FILE [--interval 0.2]
    sampler.py search --secrets FILE SAMPLES

run: every INTERVAL seconds until --stop exists, reads the argument list and the environment of
every process descended from --root (the test: Ansible, ssh, the hosts' namespaces and all that
runs in them) and keeps each distinct one in --out (0600; the test's work directory), with the
time, pid and process name; the number of samples taken in --count. Keeping them all, not only
the ones that hold a password known at the time, lets the end of the test look for the passwords
the suite generated on the hosts during the runs, which nobody knew while they ran.

search: prints "TIME PID NAME cmdline|environ" for every kept one that holds a line of --secrets
(never the content) and exits 1 if there is one, else 0.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import sys
import time


def children_map():
    kids = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name, "rb") as f:
                data = f.read()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses
        rest = data[data.rfind(b")") + 2:].split()
        if len(rest) >= 2:
            kids.setdefault(int(rest[1]), []).append(int(name))
    return kids


def descendants(root):
    kids = children_map()
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        for kid in kids.get(pid, ()):
            found.append(kid)
            todo.append(kid)
    return found


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def run(args):
    seen = set()
    count = 0
    fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    out = os.fdopen(fd, "a", encoding="ascii")
    while not os.path.exists(args.stop):
        for pid in descendants(args.root):
            comm = (read("/proc/%d/comm" % pid) or b"").decode("utf-8", "replace").strip()
            for kind in ("cmdline", "environ"):
                data = read("/proc/%d/%s" % (pid, kind))
                if not data:
                    continue
                key = hashlib.blake2b(kind.encode() + b"\0" + data, digest_size=16).digest()
                if key in seen:
                    continue
                seen.add(key)
                out.write(json.dumps({"time": time.strftime("%H:%M:%S"), "pid": pid, "comm": comm, "kind": kind,
                                      "data": base64.b64encode(data).decode()}) + "\n")
        out.flush()
        count += 1
        with open(args.count, "w") as f:
            f.write("%d\n" % count)
        time.sleep(args.interval)
    out.close()
    return 0


def search(args):
    with open(args.secrets, "rb") as f:
        secrets = [line.rstrip(b"\n") for line in f if line.strip()]
    if not secrets:
        print("no secrets to look for")
        return 2
    hits = 0
    with open(args.samples, encoding="ascii") as f:
        for line in f:
            r = json.loads(line)
            data = base64.b64decode(r["data"])
            if any(s in data for s in secrets):
                hits += 1
                print("%s %s %s %s" % (r["time"], r["pid"], r["comm"], r["kind"]))
    return 1 if hits else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run")
    r.add_argument("--root", type=int, required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--count", required=True)
    r.add_argument("--stop", required=True)
    r.add_argument("--interval", type=float, default=0.2)
    s = sub.add_parser("search")
    s.add_argument("--secrets", required=True)
    s.add_argument("samples")
    args = parser.parse_args()
    return run(args) if args.command == "run" else search(args)


if __name__ == "__main__":
    sys.exit(main())
