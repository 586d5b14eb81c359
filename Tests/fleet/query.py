#!/usr/bin/env python3
"""The fleet tier's checks on one playbook run's record (Tests/fleet/callback/fleet_record.py).

    query.py RECORD EXPRESSION [HOST...]

EXPRESSION is Python, evaluated with: stats (host -> the recap's counts: ok, changed,
unreachable, failures, skipped, ...), module (host -> the hearthminds_install task's record:
status, changed, msg, result), result (host -> that task's result dict), tasks (every record),
changed_tasks(host) (names of the tasks that changed on it) and HOSTS (the hosts given). Exits 0
when it is true, else prints what it looked at and exits 1.
"""
import json
import sys


def main():
    path, expr, hosts = sys.argv[1], sys.argv[2], sys.argv[3:]
    stats, tasks, module = {}, [], {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            record = json.loads(line)
            if "stats" in record:
                stats = record["stats"]
                continue
            if "host" not in record:  # (the times of the playbook's start and each task's)
                continue
            tasks.append(record)
            if record.get("action") == "hearthminds_install":
                module[record["host"]] = record
    result = {h: r.get("result", {}) for h, r in module.items()}

    def changed_tasks(host):
        return [t["task"] for t in tasks if t["host"] == host and t.get("changed") and t["status"] == "ok"]

    scope = {"stats": stats, "module": module, "result": result, "tasks": tasks, "HOSTS": hosts,
             "changed_tasks": changed_tasks}
    try:
        value = eval(expr, dict(scope, __builtins__=__builtins__))  # the test's own expressions
    except Exception as error:  # noqa: BLE001 - shown, and the check fails
        value = False
        print("error: %r" % error)
    if value:
        return 0
    print("false: %s" % expr)
    print("recap: %s" % json.dumps(stats, sort_keys=True))
    for host in sorted(module):
        r = module[host]
        res = r.get("result", {})
        brief = {k: res.get(k) for k in ("exit_status", "changed", "changed_steps", "failed_step", "failed_action", "key",
                                         "would_change", "findings", "steps") if k in res}
        print("%s: %s %s; %s" % (host, r["status"], r.get("msg", "")[:300], json.dumps(brief, sort_keys=True)[:1500]))
    for t in tasks:
        if t["status"] in ("failed", "unreachable") and t.get("action") != "hearthminds_install":
            print("%s: task '%s' %s: %s" % (t["host"], t["task"], t["status"], t.get("msg", "")[:300]))
    return 1


if __name__ == "__main__":
    sys.exit(main())
