#!/usr/bin/env python3
"""Where a playbook run's time went (Tests/fleet/run.sh's figures): PROFILE.py RECORD START_EPOCH
prints ansible-playbook's start-up (process start to the playbook's start), each task's time (its
start to its last host's result) and the end (the last result to the recap)."""
import json
import sys


def main():
    path, t0 = sys.argv[1], float(sys.argv[2])
    playbook_start = end = None
    tasks = []  # [name, start, last result]
    for line in open(path, encoding="utf-8"):
        r = json.loads(line)
        if "playbook_start" in r:
            playbook_start = r["playbook_start"]
        elif "task_start" in r:
            tasks.append([r["task"], r["task_start"], r["task_start"]])
        elif "stats" in r:
            end = r.get("end")
        elif "host" in r and tasks:
            tasks[-1][2] = max(tasks[-1][2], tasks[-1][1] + r.get("seconds", 0))
    parts = []
    if playbook_start:
        parts.append(("start-up (python, ansible, inventory, vault)", playbook_start - t0))
    for name, start, last in tasks:
        parts.append((name.split(" : ", 1)[-1].replace("HearthMinds | ", ""), last - start))
    if end and tasks:
        parts.append(("recap", end - tasks[-1][2]))
    for name, seconds in parts:
        if seconds >= 0.05:
            print("%6.2fs  %s" % (seconds, name[:90]))


if __name__ == "__main__":
    main()
