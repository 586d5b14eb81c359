"""Unit tests of the Ansible role's Python parts (run by Tests/fleet/run.sh with the venv's
ansible-core): the hearthminds_install module's reading of install.sh's exit status and log,
the module run whole against a stand-in install.sh (its arguments and environment), and the
env file's quoting filter."""
import hashlib
import importlib.util
import json
import os
import shutil
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
# the role's module_utils, as Ansible makes it importable for the role's modules
safe = load("ansible.module_utils.hearthminds_safe", os.path.join(ROLE, "module_utils", "hearthminds_safe.py"))
sys.modules["ansible.module_utils.hearthminds_safe"] = safe
release = load("hearthminds_release", os.path.join(ROLE, "library", "hearthminds_release.py"))


def rec(step, action, result=True, changed=False, detail="", dry=False, status=None, failure="", key=""):
    """A log record as the suite writes it (JSONLog): its status from result, changed and detail
    unless given; failure and key only when an error was thrown."""
    r = {"time": "t", "run": "r1", "step": step, "action": action, "result": result, "changed": changed,
         "ms": 1, "detail": detail}
    if dry:
        r["dry_run"] = True
    if status is None:
        status = ("changed" if changed else "ok") if result else (
            "would_change" if detail == "would change" else "unknown" if detail.startswith("cannot check yet:")
            else "failed")
    r["status"] = status
    if failure:
        r["failure"] = failure
    if key:
        r["key"] = key
    return r


def refused(key, detail):
    """The record a step leaves when its configuration is refused (StartupFailureLog)."""
    return rec("service-user", "(configuration)", result=False, detail=detail, status="failed",
               failure="configuration", key=key)


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
        records = [refused("POSTGRES_PORT", 'POSTGRES_PORT="70000": a port number (from /etc/hearthminds/hearthminds.env)')]
        out = mod.interpret(64, records, "", err, False, "db-3")
        self.assertTrue(out["failed"])
        self.assertEqual(out["key"], "POSTGRES_PORT")
        self.assertIn("db-3", out["msg"])
        self.assertIn("POSTGRES_PORT", out["msg"])
        self.assertFalse(out["changed"])

    def test_exit_64_of_an_unknown_key(self):
        records = [refused("POSTGRS_PORT", "POSTGRS_PORT: unknown key (from /etc/hearthminds/hearthminds.env:3)")]
        out = mod.interpret(64, records, "", "", False, "db-3")
        self.assertEqual(out["key"], "POSTGRS_PORT")
        self.assertEqual(out["failed_step"], "service-user")

    def test_exit_64_without_a_key(self):
        records = [refused("", "/etc/hearthminds/hearthminds.env:3: expected KEY=VALUE")]
        out = mod.interpret(64, records, "", "", False, "db-3")
        self.assertTrue(out["failed"])
        self.assertEqual(out["key"], "")
        self.assertIn("expected KEY=VALUE", out["msg"])

    def test_exit_64_key_is_read_from_the_log_never_from_the_console(self):
        # The console's wording names a key the log does not: the module takes the log's field.
        err = "hm-service-user: configuration error: POSTGRES_PORT: a port number\n"
        out = mod.interpret(64, [refused("PG_VERSION", "PG_VERSION: 14 is not supported")], "", err, False, "db-3")
        self.assertEqual(out["key"], "PG_VERSION")
        # No record (install.sh refused its own arguments): no key is guessed from the wording.
        out = mod.interpret(64, [], "", err, False, "db-3")
        self.assertTrue(out["failed"])
        self.assertEqual(out["key"], "")
        self.assertIn("refused its arguments or configuration", out["msg"])

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

    def test_check_mode_pending_is_read_from_the_status_never_the_detail(self):
        # A detail that reads like a pending one, with a failed status, is no pending change.
        records = [rec("pg-hba", "x", result=False, detail="would change", dry=True, status="failed",
                       failure="host_wrong")]
        out = mod.interpret(1, records, "", "", True, "db-2")
        self.assertTrue(out["failed"])
        self.assertEqual(out["failed_step"], "pg-hba")

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


def root_dir():
    """A directory whose every component is root's and writable by root only (not under /tmp,
    which others may write): under /run."""
    if os.geteuid() != 0:
        raise RuntimeError("these tests run as root (they chown and check owners)")
    return tempfile.mkdtemp(prefix="hearthminds-fleet-unit.", dir="/run")


class SafeFiles(unittest.TestCase):
    def setUp(self):
        self.dir = root_dir()
        self.addCleanup(shutil.rmtree, self.dir, True)

    def test_a_file_is_0600_from_its_creation_whatever_the_umask(self):
        seen = []
        rename = os.rename

        def watching_rename(src, dst, **kw):
            seen.append(stat.S_IMODE(os.stat(src, dir_fd=kw.get("src_dir_fd")).st_mode))
            return rename(src, dst, **kw)

        old = os.umask(0)
        safe.os.rename = watching_rename
        try:
            fd = safe.open_root_dir(self.dir)
            try:
                safe.write_file(fd, "hearthminds.env", b"X_PASSWORD='s'\n")
                self.assertTrue(safe.same_file(fd, "hearthminds.env", b"X_PASSWORD='s'\n", 0o600))
            finally:
                os.close(fd)
        finally:
            safe.os.rename = rename
            os.umask(old)
        self.assertEqual(seen, [0o600])  # the new file, before it took the name
        st = os.stat(os.path.join(self.dir, "hearthminds.env"))
        self.assertEqual((stat.S_IMODE(st.st_mode), st.st_uid), (0o600, 0))
        self.assertEqual(os.listdir(self.dir), ["hearthminds.env"])  # no temporary file left

    def test_a_link_at_the_name_is_replaced_not_followed(self):
        target = os.path.join(self.dir, "target")
        with open(target, "w") as f:
            f.write("untouched")
        os.symlink(target, os.path.join(self.dir, "hearthminds.env"))
        fd = safe.open_root_dir(self.dir)
        try:
            self.assertFalse(safe.same_file(fd, "hearthminds.env", b"untouched", 0o644))
            safe.write_file(fd, "hearthminds.env", b"new\n")
        finally:
            os.close(fd)
        with open(target) as f:
            self.assertEqual(f.read(), "untouched")
        self.assertFalse(os.path.islink(os.path.join(self.dir, "hearthminds.env")))

    def test_same_file_wants_the_mode_the_owner_and_one_link(self):
        path = os.path.join(self.dir, "f")
        with open(path, "wb") as f:
            f.write(b"x")
        os.chmod(path, 0o644)
        fd = safe.open_root_dir(self.dir)
        try:
            self.assertFalse(safe.same_file(fd, "f", b"x", 0o600))
            os.chmod(path, 0o600)
            self.assertTrue(safe.same_file(fd, "f", b"x", 0o600))
            os.link(path, os.path.join(self.dir, "g"))
            self.assertFalse(safe.same_file(fd, "f", b"x", 0o600))
        finally:
            os.close(fd)

    def test_directories_another_account_could_write_are_refused(self):
        other = os.path.join(self.dir, "other")
        os.mkdir(other, 0o755)
        os.chown(other, 65534, 65534)
        with self.assertRaisesRegex(safe.UnsafePath, "owned by uid 65534"):
            safe.open_root_dir(os.path.join(other))
        wide = os.path.join(self.dir, "wide")
        os.mkdir(wide)
        os.chmod(wide, 0o777)
        with self.assertRaisesRegex(safe.UnsafePath, "writable by its group or others"):
            safe.open_root_dir(os.path.join(wide, "below"), create_mode=0o755)
        self.assertFalse(os.path.exists(os.path.join(wide, "below")))
        os.symlink(self.dir, os.path.join(self.dir, "link"))
        with self.assertRaisesRegex(safe.UnsafePath, "symbolic link"):
            safe.open_root_dir(os.path.join(self.dir, "link", "x"), create_mode=0o755)
        with self.assertRaisesRegex(safe.UnsafePath, "writable by its group or others"):
            safe.open_root_dir("/tmp")

    def test_missing_directories_are_made_roots_with_the_mode(self):
        created = []
        fd = safe.open_root_dir(os.path.join(self.dir, "a", "b"), create_mode=0o755, created=created)
        os.close(fd)
        self.assertEqual(created, [os.path.join(self.dir, "a"), os.path.join(self.dir, "a", "b")])
        st = os.stat(os.path.join(self.dir, "a", "b"))
        self.assertEqual((stat.S_IMODE(st.st_mode), st.st_uid), (0o755, 0))


class Releases(unittest.TestCase):
    """hearthminds_release run whole by ansible-core (ansible -m, connection local, as root)."""

    def setUp(self):
        self.base = os.path.join(root_dir(), "opt")
        self.addCleanup(shutil.rmtree, os.path.dirname(self.base), True)
        self.work = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.work, True)

    def tarball(self, name, text):
        tree = os.path.join(self.work, name, "hearthminds-bootstrap")
        os.makedirs(tree)
        with open(os.path.join(tree, "install.sh"), "w") as f:
            f.write("#!/bin/sh\necho %s\n" % text)
        os.chmod(os.path.join(tree, "install.sh"), 0o755)
        path = os.path.join(self.work, name + ".tar.gz")
        subprocess.run(["tar", "-C", os.path.join(self.work, name), "-czf", path, "hearthminds-bootstrap"], check=True)
        with open(path, "rb") as f:
            return path, hashlib.sha256(f.read()).hexdigest()

    def module(self, check=False, **args):
        env = dict(os.environ, ANSIBLE_LIBRARY=os.path.join(ROLE, "library"),
                   ANSIBLE_MODULE_UTILS=os.path.join(ROLE, "module_utils"), ANSIBLE_LOCALHOST_WARNING="False",
                   ANSIBLE_INVENTORY_UNPARSED_WARNING="False", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.minimal",
                   ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_PYTHON_INTERPRETER=sys.executable, ANSIBLE_NOCOLOR="1")
        done = subprocess.run(["ansible", "localhost", "-c", "local", "-m", "hearthminds_release", "-a",
                               json.dumps(dict(base_dir=self.base, **args))] + (["--check"] if check else []),
                              capture_output=True, text=True, env=env, check=False)
        try:
            # minimal: "localhost | SUCCESS => {...}" (or CHANGED, FAILED!: the result then lacks the key)
            head, body = done.stdout.split(" => ", 1)
            out = json.loads(body)
            out["failed"] = head.strip().endswith("FAILED!")
            return out
        except (ValueError, KeyError, IndexError):
            self.fail("ansible -m hearthminds_release: exit %d\n%s\n%s" % (done.returncode, done.stdout, done.stderr))

    def put(self, path):
        shutil.copyfile(path, os.path.join(self.base, "hearthminds-bootstrap.tar.gz"))
        os.chmod(os.path.join(self.base, "hearthminds-bootstrap.tar.gz"), 0o600)

    def current(self):
        return os.readlink(os.path.join(self.base, "current"))

    def test_unpacked_after_its_checksum_made_current_and_pruned(self):
        one, sha1 = self.tarball("one", "1")
        two, sha2 = self.tarball("two", "2")
        three, sha3 = self.tarball("three", "3")
        # check mode on a fresh host: what would change, nothing made
        for state in ("prepared", "current"):
            out = self.module(check=True, sha256=sha1, state=state)
            self.assertEqual((out["current_sha256"], out["unpacked"], out["changed"], out["failed"]),
                             ("", False, True, False), out)
            self.assertFalse(os.path.exists(self.base))
        out = self.module(sha256=sha1, state="prepared")
        self.assertEqual((out["current_sha256"], out["unpacked"], out["changed"]), ("", False, True))
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(self.base, "releases")).st_mode), 0o755)
        lock = os.stat(os.path.join(self.base, ".release.lock"))
        self.assertEqual((stat.S_IMODE(lock.st_mode), lock.st_uid), (0o600, 0))  # no other account opens it
        self.put(one)
        out = self.module(sha256=sha1, state="current")
        self.assertTrue(out["changed"] and out.get("unpacked_now"), out)
        self.assertEqual(self.current(), os.path.join(self.base, "releases", sha1, "hearthminds-bootstrap"))
        self.assertFalse(os.path.exists(os.path.join(self.base, "hearthminds-bootstrap.tar.gz")))
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(self.base, "releases", sha1)).st_mode), 0o755)
        out = self.module(sha256=sha1, state="prepared")
        self.assertEqual((out["current_sha256"], out["unpacked"], out["changed"]), (sha1, True, False))
        self.assertFalse(self.module(sha256=sha1, state="current")["changed"])
        out = self.module(check=True, sha256=sha1, state="current")
        self.assertEqual((out["changed"], out["failed"]), (False, False), out)
        # a tarball that is not the one of the checksum: removed, nothing unpacked, current kept
        self.put(two)
        out = self.module(sha256=sha3, state="current")
        self.assertTrue(out.get("failed"), out)
        self.assertIn("not the controller's", out["msg"])
        self.assertEqual(sorted(os.listdir(os.path.join(self.base, "releases"))), [sha1])
        self.assertFalse(os.path.exists(os.path.join(self.base, "hearthminds-bootstrap.tar.gz")))
        self.assertEqual(self.current(), os.path.join(self.base, "releases", sha1, "hearthminds-bootstrap"))
        # two more releases with keep 1: the oldest removed; back to one that is still unpacked
        for path, sha in ((two, sha2), (three, sha3)):
            self.put(path)
            self.assertTrue(self.module(sha256=sha, state="current", keep=1)["changed"])
        self.assertEqual(sorted(os.listdir(os.path.join(self.base, "releases"))), sorted([sha2, sha3]))
        out = self.module(sha256=sha2, state="current", keep=1)
        self.assertTrue(out["changed"] and not out.get("unpacked_now"), out)
        self.assertEqual(self.current(), os.path.join(self.base, "releases", sha2, "hearthminds-bootstrap"))

    def test_a_releases_directory_of_another_account_is_refused(self):
        one, sha1 = self.tarball("one", "1")
        self.module(sha256=sha1, state="prepared")
        os.chown(os.path.join(self.base, "releases"), 65534, 65534)
        self.put(one)
        out = self.module(sha256=sha1, state="current")
        self.assertTrue(out.get("failed"), out)
        self.assertIn("releases is owned by uid 65534", out["msg"])
        self.assertEqual(os.listdir(os.path.join(self.base, "releases")), [])


if __name__ == "__main__":
    unittest.main()
