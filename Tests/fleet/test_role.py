"""Unit tests of the Ansible role's Python parts (run by Tests/fleet/run.sh with the venv's
ansible-core): the hearthminds_install module's reading of install.sh's exit status and log,
the module run whole against a stand-in install.sh (its arguments and environment), and the
env file's quoting filter."""
import importlib.util
import json
import os
import stat
import subprocess
import sys
import tempfile
import unittest

ROLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "ansible", "roles", "hearthminds")
MODULE_PATH = os.path.join(ROLE, "library", "hearthminds_install.py")


def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


mod = load("hearthminds_install", MODULE_PATH)
env_filter = load("hearthminds_env", os.path.join(ROLE, "filter_plugins", "hearthminds_env.py"))


def rec(step, action, result=True, changed=False, detail="", dry=False):
    r = {"time": "t", "run": "r1", "step": step, "action": action, "result": result, "changed": changed,
         "ms": 1, "detail": detail}
    if dry:
        r["dry_run"] = True
    return r


class Interpret(unittest.TestCase):
    def test_converged_run_is_ok_and_unchanged(self):
        records = [rec("postgres", "cluster runs"), rec("postgres", "(step)"), rec("verify", "ok"), rec("verify", "(step)")]
        out = mod.interpret(0, records, "", "", False, "h1", ["postgres", "verify"])
        self.assertFalse(out["failed"])
        self.assertFalse(out["changed"])
        self.assertEqual(out["changes"], [])
        self.assertEqual(list(out["steps"]), ["postgres", "verify"])

    def test_a_changed_action_is_changed_naming_its_step(self):
        records = [rec("pg-hba", "pg_hba.conf is ours", changed=True), rec("pg-hba", "(step)", changed=True)]
        out = mod.interpret(0, records, "", "", False, "h1")
        self.assertTrue(out["changed"])
        self.assertEqual(out["changed_steps"], ["pg-hba"])
        self.assertEqual(out["changes"][0]["action"], "pg_hba.conf is ours")

    def test_exit_0_without_records_fails(self):
        out = mod.interpret(0, [], "", "", False, "h1")
        self.assertTrue(out["failed"])
        self.assertIn("no record", out["msg"])

    def test_exit_64_names_the_key(self):
        err = 'hm-service-user: configuration error: POSTGRES_PORT="70000": a port number (from /etc/hearthminds/hearthminds.env)\n'
        out = mod.interpret(64, [], "", err, False, "db-3")
        self.assertTrue(out["failed"])
        self.assertEqual(out["key"], "POSTGRES_PORT")
        self.assertIn("db-3", out["msg"])
        self.assertIn("POSTGRES_PORT", out["msg"])
        self.assertFalse(out["changed"])

    def test_exit_64_of_an_unknown_key(self):
        err = "hm-service-user: configuration error: POSTGRS_PORT: unknown key (from /etc/hearthminds/hearthminds.env:3)\n"
        out = mod.interpret(64, [], "", err, False, "db-3")
        self.assertEqual(out["key"], "POSTGRS_PORT")

    def test_exit_64_without_a_key(self):
        err = "hm-service-user: configuration error: /etc/hearthminds/hearthminds.env:3: expected KEY=VALUE\n"
        out = mod.interpret(64, [], "", err, False, "db-3")
        self.assertTrue(out["failed"])
        self.assertEqual(out["key"], "")
        self.assertIn("expected KEY=VALUE", out["msg"])

    def test_exit_75_is_the_lock(self):
        out = mod.interpret(75, [], "", "install.sh: another install.sh is running", False, "db-1")
        self.assertTrue(out["failed"])
        self.assertIn("another run holds the lock", out["msg"])

    def test_a_false_action_names_host_step_action_and_message(self):
        records = [rec("service-user", "ok"), rec("postgres", "port 5432 free", result=False, detail="in use by pid 7")]
        out = mod.interpret(1, records, "", "", False, "db-2")
        self.assertTrue(out["failed"])
        self.assertEqual((out["failed_step"], out["failed_action"], out["detail"]),
                         ("postgres", "port 5432 free", "in use by pid 7"))
        for part in ("db-2", "postgres", "port 5432 free", "in use by pid 7"):
            self.assertIn(part, out["msg"])

    def test_exit_1_before_any_step(self):
        out = mod.interpret(1, [], "", "install.sh: cannot install libpq5 with apt-get\n", False, "db-2")
        self.assertTrue(out["failed"])
        self.assertIn("libpq5", out["msg"])

    def test_check_mode_pending_is_changed_and_verify_findings_are_explained(self):
        records = [rec("pg-hba", "pg_hba.conf is ours", result=False, detail="would change", dry=True),
                   rec("pg-hba", "(step)", dry=True),
                   rec("verify", "no trust rule", result=False, detail="check is false", dry=True),
                   rec("verify", "(step)", result=False, dry=True)]
        out = mod.interpret(1, records, "", "", True, "db-2")
        self.assertFalse(out["failed"])
        self.assertTrue(out["changed"])
        self.assertEqual(out["changed_steps"], ["pg-hba"])
        self.assertEqual(out["findings"][0]["step"], "verify")

    def test_check_mode_cannot_check_yet_is_pending(self):
        records = [rec("databases", "roles", result=False, detail="cannot check yet: no cluster", dry=True)]
        out = mod.interpret(1, records, "", "", True, "db-2")
        self.assertFalse(out["failed"])
        self.assertEqual(out["changed_steps"], ["databases"])

    def test_check_mode_verify_false_with_nothing_pending_fails(self):
        records = [rec("pg-hba", "x", dry=True), rec("verify", "no trust rule", result=False, detail="check is false", dry=True)]
        out = mod.interpret(1, records, "", "", True, "db-2")
        self.assertTrue(out["failed"])
        self.assertIn("no step would change", out["msg"])

    def test_check_mode_a_false_check_outside_verify_fails(self):
        records = [rec("pg-hba", "x", result=False, detail="would change", dry=True),
                   rec("postgres", "address", result=False, detail="not an address of this host", dry=True)]
        out = mod.interpret(1, records, "", "", True, "db-2")
        self.assertTrue(out["failed"])
        self.assertEqual(out["failed_step"], "postgres")

    def test_check_mode_fresh_host_without_libpq5_would_change(self):
        err = "install.sh: dry run: the binaries need libpq5, which is not installed; install it first\n"
        out = mod.interpret(1, [], "", err, True, "db-2")
        self.assertFalse(out["failed"])
        self.assertTrue(out["changed"])


class ReadRun(unittest.TestCase):
    def test_reads_only_the_run_from_the_offset(self):
        with tempfile.NamedTemporaryFile("w", delete=False) as f:
            f.write(json.dumps(dict(rec("a", "old"), run="r1")) + "\n")
            offset = f.tell()
            f.write(json.dumps(dict(rec("a", "other"), run="r2")) + "\n")
            f.write("not json r1\n")
            f.write(json.dumps(dict(rec("a", "mine"), run="r1")) + "\n")
        try:
            got = mod.read_run(f.name, offset, "r1")
            self.assertEqual([r["action"] for r in got], ["mine"])
            self.assertEqual([r["action"] for r in mod.read_run(f.name, 10 ** 9, "r1")], ["old", "mine"])
            self.assertEqual(mod.read_run(f.name + ".missing", 0, "r1"), [])
        finally:
            os.unlink(f.name)


STAND_IN = r"""#!/bin/bash
# a stand-in install.sh: records its arguments and environment, logs two actions, exits $EXIT
if [ "$1" = --list ]; then printf ' 1  pg-hba         write\n 2  verify         check\n'; exit 0; fi
printf '%s\n' "$@" >"$(dirname "$0")/args"
env >"$(dirname "$0")/env"
log=$(dirname "$0")/log.jsonl
printf '{"time":"t","run":"%s","step":"pg-hba","action":"hba","result":true,"changed":true,"ms":1,"detail":""}\n' "$HEARTHMINDS_RUN_ID" >>"$log"
printf '{"time":"t","run":"%s","step":"pg-hba","action":"(step)","result":true,"changed":true,"ms":1,"detail":""}\n' "$HEARTHMINDS_RUN_ID" >>"$log"
exit 0
"""


class ModuleWhole(unittest.TestCase):
    """The module run as Ansible runs it (its arguments as JSON), against a stand-in install.sh."""

    def run_module(self, directory, args, extra_env=None):
        argsfile = os.path.join(directory, "args.json")
        with open(argsfile, "w") as f:
            json.dump({"ANSIBLE_MODULE_ARGS": args}, f)
        env = dict(os.environ, **(extra_env or {}))
        done = subprocess.run([sys.executable, MODULE_PATH, argsfile], capture_output=True, text=True, env=env,
                              check=False)
        return json.loads(done.stdout)

    def test_arguments_environment_and_result(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "install.sh")
            with open(path, "w") as f:
                f.write(STAND_IN)
            os.chmod(path, stat.S_IRWXU)
            out = self.run_module(d, {"path": d, "only": "pg-hba", "log": os.path.join(d, "log.jsonl"),
                                      "host": "db-9"},
                                  {"POSTGRES_PORT": "1", "LOGOS_PASSWORD": "sekrit", "http_proxy": "http://p:1/"})
            self.assertTrue(out["changed"], out)
            self.assertEqual(out["changed_steps"], ["pg-hba"])
            self.assertEqual(out["steps_expected"], ["pg-hba", "verify"])
            with open(os.path.join(d, "args")) as f:
                self.assertEqual(f.read().split("\n")[:2], ["--only", "pg-hba"])
            with open(os.path.join(d, "env")) as f:
                env = dict(line.split("=", 1) for line in f.read().splitlines() if "=" in line)
            # a clean environment: no configuration key, no password, the proxy and the run id kept
            self.assertNotIn("POSTGRES_PORT", env)
            self.assertNotIn("LOGOS_PASSWORD", env)
            self.assertEqual(env.get("http_proxy"), "http://p:1/")
            self.assertEqual(env.get("HEARTHMINDS_RUN_ID"), out["run_id"])

    def test_check_mode_passes_dry_run(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "install.sh")
            with open(path, "w") as f:
                f.write(STAND_IN)
            os.chmod(path, stat.S_IRWXU)
            self.run_module(d, {"path": d, "log": os.path.join(d, "log.jsonl"), "_ansible_check_mode": True})
            with open(os.path.join(d, "args")) as f:
                self.assertIn("--dry-run", f.read().split("\n"))

    def test_reset_needs_confirmation(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "install.sh")
            with open(path, "w") as f:
                f.write(STAND_IN)
            os.chmod(path, stat.S_IRWXU)
            out = self.run_module(d, {"path": d, "reset": True, "host": "db-9"})
            self.assertTrue(out["failed"])
            self.assertIn("reset refused", out["msg"])
            self.assertFalse(os.path.exists(os.path.join(d, "args")))


class EnvValues(unittest.TestCase):
    v = staticmethod(env_filter.hearthminds_env_value)

    def test_values(self):
        self.assertEqual(self.v("main", "PG_CLUSTER_NAME"), "'main'")
        self.assertEqual(self.v(5433, "POSTGRES_PORT"), "'5433'")
        self.assertEqual(self.v(True, "PGVECTOR_ENABLE_IVFFLAT"), "'true'")
        self.assertEqual(self.v(["logos", "aletheia"], "AI_NAMES"), '["logos", "aletheia"]')
        self.assertEqual(self.v([], "AI_NAMES"), "[]")
        # a single quote: double quotes, with backslash escapes
        self.assertEqual(self.v("it's #1 \\ \"x\"", "P_PASSWORD"), '"it\'s #1 \\\\ \\"x\\""')
        # ${ in single quotes is literal
        self.assertEqual(self.v("a${b}", "P_PASSWORD"), "'a${b}'")

    def test_unrepresentable_values_are_refused_without_showing_them(self):
        with self.assertRaises(Exception) as caught:
            self.v("it's ${x}", "P_PASSWORD")
        self.assertNotIn("${x}", str(caught.exception))
        with self.assertRaises(Exception):
            self.v(['a"b'], "AI_NAMES")
        with self.assertRaises(Exception):
            self.v({"a": 1}, "AI_NAMES")

    def test_keys(self):
        keys = env_filter.hearthminds_env_keys
        self.assertEqual(keys({"B": 1, "A": 2}), ["A", "B"])
        with self.assertRaises(Exception):
            keys({"LOGOS_PASSWORD": "x"})  # a password among the logged config
        with self.assertRaises(Exception):
            keys({"POSTGRES_PORT": 1}, "hearthminds_passwords", True)
        with self.assertRaises(Exception):
            keys({"bad key": 1})
        self.assertEqual(keys({"LOGOS_PASSWORD": "x"}, "hearthminds_passwords", True), ["LOGOS_PASSWORD"])


if __name__ == "__main__":
    unittest.main()
