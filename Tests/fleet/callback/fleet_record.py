# The fleet tier's record of a playbook run (Tests/fleet/run.sh): one JSON line per task result
# per host, the hearthminds_install module's whole result, and the play recap's counts, in the
# file named by FLEET_RECORD. The console output stays the default callback's.
from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: fleet_record
type: aggregate
short_description: JSON lines of each task result and the recap, for the fleet tier's checks
description: Writes to the file named by the FLEET_RECORD environment variable.
"""

MODULE = "hearthminds_install"


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "fleet_record"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self._path = os.environ.get("FLEET_RECORD", "")
        self._task_started = {}

    def _write(self, record):
        if not self._path:
            return
        with open(self._path, "a", encoding="utf-8") as f:
            # (keys in their order: a result's steps are in the order they ran)
            f.write(json.dumps(record, default=str) + "\n")

    def _result(self, result, status):
        task = result._task
        action = task.action.split(".")[-1]
        res = result._result
        name = task.get_name()
        role = task._role.get_name() if task._role else ""
        if role and name.startswith(role + " : "):
            name = name[len(role) + 3:]
        record = {"host": result._host.get_name(), "task": name, "role": role, "action": action, "status": status,
                  "changed": bool(res.get("changed", False)), "msg": str(res.get("msg", "")),
                  "seconds": round(time.time() - self._task_started.get(task._uuid, time.time()), 3)}
        if action == MODULE and not task.no_log:
            record["result"] = {k: v for k, v in res.items() if not k.startswith("_ansible")}
        self._write(record)

    def v2_playbook_on_start(self, playbook):
        self._write({"playbook_start": time.time()})

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._task_started[task._uuid] = time.time()
        self._write({"task_start": time.time(), "task": task.get_name()})

    def v2_runner_on_ok(self, result):
        self._result(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._result(result, "failed")

    def v2_runner_on_unreachable(self, result):
        self._result(result, "unreachable")

    def v2_runner_on_skipped(self, result):
        self._result(result, "skipped")

    def v2_playbook_on_stats(self, stats):
        hosts = sorted(stats.processed.keys())
        self._write({"stats": {h: stats.summarize(h) for h in hosts}, "end": time.time()})
