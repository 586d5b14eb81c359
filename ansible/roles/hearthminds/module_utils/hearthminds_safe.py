# HearthMinds bootstrap: the role's file handling on a host, safe against the host's other accounts
# (shared by the hearthminds_release and hearthminds_env_file modules).
#
# A directory the role writes into is reached from / one component at a time, without following a
# link, and each component must be root's and writable by nobody else: then no other account can
# plant a link in it, swap a file or read a file before its mode is set. A file is written under a
# name of its own with mode 0600 from its creation (O_EXCL, O_NOFOLLOW), synced, then renamed over
# the old one: a reader sees the old file or the new one, never a part, and never with a wider mode.
from __future__ import annotations

import errno
import os
import secrets
import stat

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafePath(Exception):
    """A path the role refuses to write through (the message names it and why)."""


def _check_dir(fd, path):
    st = os.fstat(fd)
    if st.st_uid != 0:
        raise UnsafePath("%s is owned by uid %d, not root: another account could plant links or files in it; "
                         "refusing to write through it (check its contents, then chown it to root or remove it)"
                         % (path, st.st_uid))
    if st.st_mode & 0o022:
        raise UnsafePath("%s is writable by its group or others (mode %04o): another account could plant links "
                         "or files in it; refusing to write through it (chmod go-w it after checking its contents)"
                         % (path, stat.S_IMODE(st.st_mode)))


def open_root_dir(path, create_mode=None, created=None):
    """A file descriptor of the directory PATH (absolute), each component checked (see above).
    Missing components are made (root's, CREATE_MODE) when CREATE_MODE is given; their paths are
    appended to CREATED. Raises UnsafePath."""
    if not os.path.isabs(path):
        raise UnsafePath("%s is not an absolute path" % path)
    parts = [p for p in path.split("/") if p and p != "."]
    if ".." in parts:
        raise UnsafePath("%s has a '..' component" % path)
    fd = os.open("/", DIR_FLAGS)
    here = "/"
    try:
        _check_dir(fd, here)
        for part in parts:
            here = os.path.join(here, part)
            try:
                nfd = os.open(part, DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if create_mode is None:
                    raise
                os.mkdir(part, 0o700, dir_fd=fd)
                nfd = os.open(part, DIR_FLAGS, dir_fd=fd)
                os.fchown(nfd, 0, 0)
                os.fchmod(nfd, create_mode)
                if created is not None:
                    created.append(here)
            except OSError as error:
                if error.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise UnsafePath("%s is a symbolic link or not a directory: refusing to follow it" % here)
                raise
            os.close(fd)
            fd = nfd
            _check_dir(fd, here)
        return fd
    except BaseException:
        os.close(fd)
        raise


def read_file(dir_fd, name, limit=1 << 20):
    """(stat, bytes) of the regular file NAME in DIR_FD, not following a link; None when it is not
    there, is a link or is not a regular file."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError as error:
        if error.errno in (errno.ENOENT, errno.ELOOP, errno.ENXIO):
            return None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return st, b"".join(chunks)
    finally:
        os.close(fd)


def same_file(dir_fd, name, content, mode):
    """The file NAME in DIR_FD is root's, a regular file of MODE with exactly CONTENT."""
    got = read_file(dir_fd, name, limit=len(content) + 1)
    if got is None:
        return False
    st, data = got
    return st.st_uid == 0 and st.st_gid == 0 and stat.S_IMODE(st.st_mode) == mode and st.st_nlink == 1 \
        and data == content


def write_file(dir_fd, name, content, mode=0o600):
    """NAME in DIR_FD replaced whole by CONTENT (bytes): root's, MODE from its creation on."""
    tmp = ".%s.%s.tmp" % (name, secrets.token_hex(6))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode & 0o600,
                 dir_fd=dir_fd)
    try:
        try:
            os.fchown(fd, 0, 0)
            os.fchmod(fd, mode)
            view = memoryview(content)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        try:
            os.unlink(tmp, dir_fd=dir_fd)
        except OSError:
            pass
        raise
    os.fsync(dir_fd)
