#!/usr/bin/python3
# HearthMinds bootstrap: the Ansible module that runs the suite's install.sh on a host and reports
# the suite's own results (read from its JSON-lines log) as Ansible's changed/ok/failed.
from __future__ import annotations

DOCUMENTATION = r"""
---
module: hearthminds_install
short_description: Run the HearthMinds bootstrap suite (install.sh) and report its own results
description:
  - Runs C(install.sh) of an unpacked HearthMinds bootstrap release as root, with a run id of its
    own, then reads that run's records from the suite's JSON-lines log.
  - C(changed) is true only when an action of the suite changed something; in check mode the
    suite runs with C(--dry-run) and C(changed) means an action would change.
  - No password is ever passed: the suite reads them from C(/etc/hearthminds/hearthminds.env)
    (mode 0600) or generates and keeps them in C(/etc/hearthminds/pgpass/). install.sh runs with a
    clean environment (PATH, locale, HOME, the run id and the proxy variables only), so the
    configuration is the host's env file and nothing else.
  - Exit codes of the suite - 0 every step true; 1 a false result (the step, action and message
    are named); 64 bad configuration, nothing changed (the key is named); 75 another run holds
    the lock.
options:
  path:
    description: The unpacked release directory, the one holding C(install.sh).
    type: path
    required: true
  only:
    description: Run this one step (C(install.sh --only STEP)).
    type: str
  from:
    description: Run from this step to the end (C(install.sh --from STEP)).
    type: str
  config:
    description: Host configuration file instead of C(/etc/hearthminds/hearthminds.env).
    type: path
  log:
    description: The suite's log (its C(HEARTHMINDS_LOG) key).
    type: path
    default: /var/log/hearthminds/bootstrap.jsonl
  reset:
    description:
      - Rebuild the host (C(install.sh --reset --yes)): our databases, roles and client files are
        destroyed, then every step runs. Data is lost. Refused unless I(confirm_reset) is true.
    type: bool
    default: false
  confirm_reset:
    description: Must be true for I(reset) to act.
    type: bool
    default: false
  reset_cluster:
    description: With I(reset), drop the whole cluster (C(--reset-cluster)).
    type: bool
    default: false
  reset_service_user:
    description: With I(reset), remove the service account and its home too (C(--reset-service-user)).
    type: bool
    default: false
  host:
    description: The name the messages give this host (the role passes C(inventory_hostname)).
    type: str
"""

RETURN = r"""
run_id: {description: The suite's run id of this run (the log's C(run) field), type: str, returned: always}
exit_status: {description: "install.sh's exit status (not rc: Ansible takes a non-zero rc for a failure, and a dry run that finds changes exits 1)", type: int, returned: when it ran}
steps: {description: "Each step that ran: its result, whether it changed something, its time (ms)", type: dict, returned: when it ran}
steps_expected: {description: The steps install.sh lists, in order, type: list, returned: when it ran}
changes: {description: "The actions that changed something: step, action, detail", type: list, returned: when it ran}
would_change: {description: "Check mode: the actions that would change", type: list, returned: check mode}
changed_steps: {description: The steps with an action that changed (check mode - would change), type: list, returned: when it ran}
findings: {description: "Check mode: verify's false checks, which the pending changes may explain", type: list, returned: check mode}
failed_step: {description: The step that failed, type: str, returned: on failure}
failed_action: {description: The action that failed, type: str, returned: on failure}
detail: {description: The failed action's message, type: str, returned: on failure}
key: {description: The configuration key the suite named (exit 64), type: str, returned: on exit 64}
"""

import json
import os
import re
import secrets
import socket
import subprocess
import time

from ansible.module_utils.basic import AnsibleModule

EXIT_OK, EXIT_FALSE, EXIT_USAGE, EXIT_BUSY = 0, 1, 64, 75
DEFAULT_LOG = "/var/log/hearthminds/bootstrap.jsonl"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PROXY_VARIABLES = ("http_proxy", "https_proxy", "ftp_proxy", "no_proxy", "all_proxy",
                   "HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY", "ALL_PROXY")


def is_pending(record):
    """A dry run's 'would change': the check was false, or could not look yet (the log's status)."""
    return (record.get("dry_run") is True and not record.get("result")
            and record.get("status") in ("would_change", "unknown"))


def brief(record):
    return {"step": record.get("step"), "action": record.get("action"), "detail": record.get("detail") or ""}


def first_line(text, marker):
    for line in (text or "").splitlines():
        if marker in line:
            return line.strip()
    return ""


def last_lines(text, count=3):
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return " / ".join(lines[-count:])


def interpret(rc, records, stdout, stderr, check_mode, host, steps_expected=None):
    """The Ansible result of one install.sh run: its exit status and the run's log records."""
    actions = [r for r in records if r.get("action") != "(step)"]
    steps = {}
    for r in records:
        if r.get("action") == "(step)":
            steps[r.get("step")] = {"result": bool(r.get("result")), "changed": bool(r.get("changed")),
                                    "ms": r.get("ms")}
    out = {"exit_status": rc, "steps": steps, "steps_expected": steps_expected or [], "dry_run": check_mode,
           "changed": False, "failed": False}
    pending = [r for r in actions if is_pending(r)]
    changes = [r for r in actions if r.get("changed")]
    falses = [r for r in actions if not r.get("result") and not is_pending(r)]
    touched = changes if not check_mode else pending
    changed_steps = []
    for r in touched:
        if r.get("step") not in changed_steps:
            changed_steps.append(r.get("step"))
    out["changed_steps"] = changed_steps
    out["changes"] = [brief(r) for r in changes]
    if check_mode:
        out["would_change"] = [brief(r) for r in pending]
    out["changed"] = bool(touched)

    def fail(msg, **extra):
        out.update(extra)
        out["failed"] = True
        out["msg"] = msg
        return out

    if rc == EXIT_USAGE:
        # The step's record of its refused configuration: its failure kind and key are fields
        # of the log, never read from the console's wording.
        refused = [r for r in records if r.get("failure") == "configuration"]
        if refused:
            r = refused[0]
            key = r.get("key") or ""
            what = r.get("detail") or ""
            return fail("%s: bad configuration (exit 64; nothing changed)%s: %s" % (
                host, " in %s" % key if key else "", what), key=key, detail=what,
                failed_step=r.get("step"))
        what = last_lines(stderr) or last_lines(stdout)
        return fail("%s: install.sh refused its arguments or configuration (exit 64; nothing changed): %s"
                    % (host, what), key="", detail=what)
    if rc == EXIT_BUSY:
        return fail("%s: another run holds the lock (/run/hearthminds/bootstrap.lock): install.sh did nothing"
                    % host)
    if check_mode:
        out["findings"] = [brief(r) for r in falses if r.get("step") == "verify"]
        blocking = [r for r in falses if r.get("step") != "verify" or not pending]
        if blocking:
            r = blocking[0]
            return fail("%s: check mode: step %s: '%s' is false: %s%s" % (
                host, r.get("step"), r.get("action"), r.get("detail") or "",
                "" if pending else " (and no step would change anything)"),
                failed_step=r.get("step"), failed_action=r.get("action"), detail=r.get("detail") or "")
        if rc != EXIT_OK and not records:
            need = first_line(stderr, "dry run: the binaries need")
            if need:
                out["changed"] = True
                out["changed_steps"] = ["install.sh"]
                out["would_change"] = [{"step": "install.sh", "action": "runtime packages installed",
                                        "detail": need}]
                out["msg"] = "%s: would install the suite's runtime package, then set the host up" % host
                return out
            return fail("%s: install.sh --dry-run failed (exit %d) before any step: %s"
                        % (host, rc, last_lines(stderr) or last_lines(stdout)))
        out["msg"] = ("%s: would change %d action(s) in %s" % (host, len(pending), ", ".join(changed_steps))
                      if pending else "%s: nothing would change" % host)
        return out
    if rc != EXIT_OK:
        if falses:
            r = falses[0]
            return fail("%s: step %s failed at action '%s': %s" % (
                host, r.get("step"), r.get("action"), r.get("detail") or "(no detail)"),
                failed_step=r.get("step"), failed_action=r.get("action"), detail=r.get("detail") or "")
        what = last_lines(stderr) or last_lines(stdout)
        step = ""
        match = re.search(r"step '([^']+)'", stderr or "")
        if match:
            step = match.group(1)
        return fail("%s: install.sh failed (exit %d)%s: %s" % (
            host, rc, " in step %s" % step if step else " before any step", what),
            failed_step=step, failed_action="", detail=what)
    if not records:
        return fail("%s: install.sh exited 0 but its run left no record in the log (is HEARTHMINDS_LOG "
                    "the module's log option?)" % host)
    if falses:
        r = falses[0]
        return fail("%s: install.sh exited 0 but step %s logged '%s' false: %s" % (
            host, r.get("step"), r.get("action"), r.get("detail") or ""),
            failed_step=r.get("step"), failed_action=r.get("action"), detail=r.get("detail") or "")
    out["msg"] = ("%s: every step true; %d action(s) changed in %s" % (host, len(changes), ", ".join(changed_steps))
                  if changes else "%s: every step true; nothing changed" % host)
    return out


def read_run(log, offset, run_id):
    """The records of one run, from the log's byte OFFSET on (from the start when it shrank)."""
    records = []
    try:
        with open(log, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            f.seek(offset if offset <= size else 0)
            for raw in f:
                if run_id.encode() not in raw:
                    continue
                try:
                    record = json.loads(raw.decode("utf-8", "replace"))
                except ValueError:
                    continue
                if isinstance(record, dict) and record.get("run") == run_id:
                    records.append(record)
    except FileNotFoundError:
        pass
    return records


def listed_steps(install_sh, env):
    try:
        done = subprocess.run([install_sh, "--list"], env=env, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=60, check=False)
    except (OSError, subprocess.SubprocessError):
        return []
    steps = []
    for line in done.stdout.splitlines():
        match = re.match(r"^\s*\d+\s+(\S+)", line)
        if match:
            steps.append(match.group(1))
    return steps


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            only=dict(type="str"),
            config=dict(type="path"),
            log=dict(type="path", default=DEFAULT_LOG),
            reset=dict(type="bool", default=False),
            confirm_reset=dict(type="bool", default=False),
            reset_cluster=dict(type="bool", default=False),
            reset_service_user=dict(type="bool", default=False),
            host=dict(type="str"),
            **{"from": dict(type="str")}
        ),
        mutually_exclusive=[("only", "from")],
        supports_check_mode=True,
    )
    p = module.params
    host = p["host"] or socket.gethostname()
    install_sh = os.path.join(p["path"], "install.sh")
    if not os.path.isfile(install_sh):
        if module.check_mode:
            module.exit_json(changed=True, changed_steps=["release"], msg="%s: the release is not unpacked at %s "
                             "yet: everything would be set up" % (host, p["path"]))
        module.fail_json(msg="%s: no install.sh in %s (is the release unpacked?)" % (host, p["path"]))
    if p["reset"] and (p["only"] or p["from"]):
        module.fail_json(msg="%s: reset rebuilds the whole host: it runs every step, so it excludes only and from"
                         % host)
    if p["reset"] and not p["confirm_reset"]:
        module.fail_json(msg="%s: reset refused: it destroys the databases; set confirm_reset (the role: "
                         "hearthminds_confirm_reset=true) to confirm" % host)

    run_id = "ansible-%s-%s" % (time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()), secrets.token_hex(4))
    env = {"PATH": PATH, "LC_ALL": "C.UTF-8", "HOME": "/root", "TERM": "dumb", "HEARTHMINDS_RUN_ID": run_id}
    for name in PROXY_VARIABLES:
        if os.environ.get(name):
            env[name] = os.environ[name]

    args = [install_sh]
    if p["only"]:
        args += ["--only", p["only"]]
    if p["from"]:
        args += ["--from", p["from"]]
    if p["config"]:
        args += ["--config", p["config"]]
    if p["reset"]:
        args += ["--reset", "--yes"]
        if p["reset_cluster"]:
            args.append("--reset-cluster")
        if p["reset_service_user"]:
            args.append("--reset-service-user")
    if module.check_mode:
        args.append("--dry-run")

    # A refused configuration is recorded in the default log unless the environment names one
    # (the suite never writes where a refused file says): read there too when the log differs.
    logs = [p["log"]] + ([DEFAULT_LOG] if os.path.abspath(p["log"]) != DEFAULT_LOG else [])
    offsets = {}
    for log in logs:
        try:
            offsets[log] = os.stat(log).st_size
        except FileNotFoundError:
            offsets[log] = 0
    started = time.monotonic()
    try:
        done = subprocess.run(args, cwd=p["path"], env=env, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, errors="replace", check=False)
    except OSError as error:
        module.fail_json(msg="%s: cannot run %s: %s" % (host, install_sh, error), run_id=run_id)
    elapsed = round(time.monotonic() - started, 2)
    records = read_run(p["log"], offsets[p["log"]], run_id)
    if done.returncode == EXIT_USAGE and not any(r.get("failure") == "configuration" for r in records):
        for log in logs[1:]:
            records += [r for r in read_run(log, offsets[log], run_id) if r.get("failure") == "configuration"]
    result = interpret(done.returncode, records, done.stdout, done.stderr, module.check_mode, host,
                       listed_steps(install_sh, env))
    result.update(run_id=run_id, cmd=args, stdout=done.stdout, stderr=done.stderr, seconds=elapsed)
    touched = result.get("would_change") if module.check_mode else result.get("changes")
    if module._diff and touched:
        verb = "would change" if module.check_mode else "changed"
        result["diff"] = {"prepared": "".join("%s: %s: %s\n" % (r["step"], verb, r["action"]) for r in touched)}
    if result.pop("failed"):
        msg = result.pop("msg")
        module.fail_json(msg=msg, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
