#!/usr/bin/python3
# HearthMinds bootstrap: the Ansible module that keeps the host's releases of the suite -
# BASE/releases/<sha256>/hearthminds-bootstrap/ and the link BASE/current - checking the copied
# tarball's SHA-256 before unpacking it, in directories no other account can write.
from __future__ import annotations

DOCUMENTATION = r"""
---
module: hearthminds_release
short_description: The HearthMinds release on a host, unpacked only after its SHA-256 is checked
description:
  - I(state=prepared) - reports the release in use (C(current_sha256)) and whether the wanted
    one is unpacked already (C(unpacked)); makes I(base_dir) and I(base_dir)/releases (root's,
    0755) when missing. Where the role copies the tarball to is C(tarball).
  - I(state=current) - the wanted release unpacked (when it is not yet) and made current. The
    tarball at C(tarball) is opened without following a link, must be root's, and its SHA-256 is
    computed from that open file and compared with I(sha256) before anything is unpacked; a
    mismatch removes it and fails. It is unpacked by GNU tar, fed from the same open file, into a
    new directory of mode 0700 (no other account can enter it while tar writes), marked, then
    renamed into place and opened up (0755). C(current) is replaced by a new link renamed over it.
    Older releases beyond I(keep) are removed, and the copied tarball.
  - I(base_dir) and every directory above it are reached without following a link and must be
    root's and not writable by group or others, else the module fails naming the directory:
    another account could plant a link in it for root to write through.
  - One run at a time per host (a lock on I(base_dir)/.release.lock, a file only root can open).
options:
  base_dir:
    description: Where releases live.
    type: path
    default: /opt/hearthminds
  sha256:
    description: The wanted release's tarball SHA-256 (hex), as the controller computed it.
    type: str
    required: true
  state:
    description: prepared or current (see above).
    type: str
    choices: [prepared, current]
    default: prepared
  keep:
    description: Older releases kept besides the current one (I(state=current)).
    type: int
    default: 1
"""

import fcntl
import hashlib
import os
import re
import secrets
import shutil
import stat
import subprocess
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.hearthminds_safe import UnsafePath, open_root_dir, read_file, write_file

TARBALL = "hearthminds-bootstrap.tar.gz"
TREE = "hearthminds-bootstrap"
MARKER = ".unpacked"
SHA = re.compile(r"^[0-9a-f]{64}$")
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def marker_of(releases_fd, name):
    """The SHA-256 a release directory's marker holds ('' when none: not unpacked whole)."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=releases_fd)
    except OSError:
        return ""
    try:
        got = read_file(fd, MARKER, limit=200)
    finally:
        os.close(fd)
    return got[1].decode("ascii", "replace").strip() if got else ""


def current_sha(base_fd, base):
    """The SHA-256 of the release BASE/current points at ('' when none or not one of ours)."""
    try:
        target = os.readlink("current", dir_fd=base_fd)
    except OSError:
        return ""
    want = os.path.join(base, "releases")
    parent, tree = os.path.split(target.rstrip("/"))
    releases, sha = os.path.split(parent)
    if tree != TREE or releases != want or not SHA.match(sha):
        return ""
    return sha


def sha256_of(fd):
    digest = hashlib.sha256()
    os.lseek(fd, 0, os.SEEK_SET)
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            break
        digest.update(chunk)
    return digest.hexdigest()


def unpack(module, base, base_fd, releases_fd, sha):
    """The tarball checked and unpacked into releases/SHA (see the description)."""
    tarball = os.path.join(base, TARBALL)
    try:
        fd = os.open(TARBALL, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=base_fd)
    except OSError as error:
        module.fail_json(msg="%s: cannot open the copied release tarball (not following a link): %s"
                         % (tarball, error.strerror))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != 0 or st.st_mode & 0o022:
            module.fail_json(msg="%s: not a regular file of root's that only root can write: refusing to unpack it"
                             % tarball)
        got = sha256_of(fd)
        if got != sha:
            os.unlink(TARBALL, dir_fd=base_fd)
            module.fail_json(msg="%s: its SHA-256 is %s, not the controller's %s (the tarball changed on the "
                             "controller during the run, or the copy is not it): removed, nothing unpacked"
                             % (tarball, got, sha), sha256=got)
        tmp = ".unpacking-%s-%s" % (sha[:12], secrets.token_hex(4))
        os.mkdir(tmp, 0o700, dir_fd=releases_fd)
        tmp_path = os.path.join(base, "releases", tmp)
        try:
            tmp_fd = os.open(tmp, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=releases_fd)
            try:
                os.fchown(tmp_fd, 0, 0)
                os.fchmod(tmp_fd, 0o700)
                os.lseek(fd, 0, os.SEEK_SET)
                # fed from the file whose SHA-256 was just checked; the owner root, the modes the tarball's
                done = subprocess.run(["tar", "--extract", "--gzip", "--file=-", "--directory", tmp_path,
                                       "--no-same-owner", "--no-overwrite-dir"],
                                      stdin=fd, capture_output=True, text=True, errors="replace",
                                      env={"PATH": PATH, "LC_ALL": "C"}, check=False)
                if done.returncode != 0:
                    module.fail_json(msg="%s: tar could not unpack it (exit %d): %s"
                                     % (tarball, done.returncode, done.stderr.strip()[-500:]))
                if not os.path.isfile(os.path.join(tmp_path, TREE, "install.sh")):
                    module.fail_json(msg="%s: no %s/install.sh in it: not a HearthMinds release" % (tarball, TREE))
                write_file(tmp_fd, MARKER, (sha + "\n").encode(), 0o644)
                os.fchmod(tmp_fd, 0o755)
            finally:
                os.close(tmp_fd)
            if os.path.lexists(os.path.join(base, "releases", sha)):
                shutil.rmtree(os.path.join(base, "releases", sha))  # a partly unpacked one: no marker
            os.rename(tmp, sha, src_dir_fd=releases_fd, dst_dir_fd=releases_fd)
            os.fsync(releases_fd)
        except BaseException:
            shutil.rmtree(tmp_path, ignore_errors=True)
            raise
        os.unlink(TARBALL, dir_fd=base_fd)
    finally:
        os.close(fd)


def make_current(base, base_fd, sha):
    target = os.path.join(base, "releases", sha, TREE)
    try:
        if os.readlink("current", dir_fd=base_fd) == target:
            return False
    except OSError:
        pass
    tmp = ".current-%s" % secrets.token_hex(4)
    os.symlink(target, tmp, dir_fd=base_fd)
    try:
        os.rename(tmp, "current", src_dir_fd=base_fd, dst_dir_fd=base_fd)
    except BaseException:
        os.unlink(tmp, dir_fd=base_fd)
        raise
    os.fsync(base_fd)
    return True


def prune(base, releases_fd, sha, keep):
    """Older releases beyond KEEP (the newest kept) and leftovers of an interrupted unpack removed."""
    removed, older = [], []
    for name in os.listdir(releases_fd):
        path = os.path.join(base, "releases", name)
        st = os.stat(name, dir_fd=releases_fd, follow_symlinks=False)
        if name.startswith(".unpacking-"):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(name)
        elif SHA.match(name) and name != sha and stat.S_ISDIR(st.st_mode):
            older.append((st.st_mtime, name))
    for _mtime, name in sorted(older, reverse=True)[max(keep, 0):]:
        shutil.rmtree(os.path.join(base, "releases", name))
        removed.append(name)
    return removed


LOCK = ".release.lock"
LOCK_WAIT = 600


def take_lock(module, base, base_fd):
    """One run at a time: a lock on BASE/.release.lock, a file of root's that only root can open
    (a lock on the directory itself, which any account may open, would let one hold every run)."""
    flags = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        # (check mode makes nothing: no lock file yet, no lock)
        fd = os.open(LOCK, flags if module.check_mode else flags | os.O_CREAT, 0o600, dir_fd=base_fd)
    except FileNotFoundError:
        return None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_uid != 0 or st.st_mode & 0o077:
        os.close(fd)
        module.fail_json(msg="%s/%s: not a file of root's that only root can open: refusing it" % (base, LOCK))
    deadline = time.monotonic() + LOCK_WAIT
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                module.fail_json(msg="%s/%s: another run has held it for %d s" % (base, LOCK, LOCK_WAIT))
            time.sleep(0.5)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            base_dir=dict(type="path", default="/opt/hearthminds"),
            sha256=dict(type="str", required=True),
            state=dict(type="str", choices=["prepared", "current"], default="prepared"),
            keep=dict(type="int", default=1),
        ),
        supports_check_mode=True,
    )
    p = module.params
    base = os.path.normpath(p["base_dir"])
    sha = p["sha256"].strip().lower()
    if not SHA.match(sha):
        module.fail_json(msg="sha256: not a SHA-256 in hex: %r" % p["sha256"])
    result = dict(changed=False, base_dir=base, sha256=sha, tarball=os.path.join(base, TARBALL),
                  release=os.path.join(base, "releases", sha, TREE))
    created = []
    base_fd = releases_fd = lock_fd = None
    try:
        try:
            base_fd = open_root_dir(base)
            releases_fd = open_root_dir(os.path.join(base, "releases"))
        except FileNotFoundError:
            if module.check_mode:
                result.update(current_sha256="", unpacked=False, changed=True,
                              msg="%s would be made, the release unpacked there" % base)
                module.exit_json(**result)
            base_fd = open_root_dir(base, create_mode=0o755, created=created)
            releases_fd = open_root_dir(os.path.join(base, "releases"), create_mode=0o755, created=created)
        lock_fd = take_lock(module, base, base_fd)
        result.update(current_sha256=current_sha(base_fd, base), unpacked=marker_of(releases_fd, sha) == sha,
                      created=created, changed=bool(created))
        if p["state"] == "prepared":
            module.exit_json(**result)
        if module.check_mode:
            result["changed"] = result["current_sha256"] != sha
            module.exit_json(**result)
        if not result["unpacked"]:
            unpack(module, base, base_fd, releases_fd, sha)
            result["changed"] = True
            result["unpacked_now"] = True
        if make_current(base, base_fd, sha):
            result["changed"] = True
        result["removed"] = prune(base, releases_fd, sha, p["keep"])
        result["changed"] = result["changed"] or bool(result["removed"])
        try:
            os.unlink(TARBALL, dir_fd=base_fd)  # (a copy left when the release was unpacked already)
        except FileNotFoundError:
            pass
    except UnsafePath as error:
        module.fail_json(msg=str(error), **result)
    except OSError as error:
        module.fail_json(msg="%s: %s%s" % (base, error.strerror, " (%s)" % error.filename if error.filename else ""),
                         **result)
    finally:
        for fd in (lock_fd, releases_fd, base_fd):
            if fd is not None:
                os.close(fd)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
