"""Files that hold secrets, written 0600 from the start into a directory only their owner controls.

``recstore config fetch`` writes the configuration (passwords, keys) and the dev stack writes its
state file (every stand-in password). Writing with the default umask and narrowing afterwards
leaves a moment in which the file is readable by others, and a directory in a shared place
(``/tmp/recstore-config``) may have been made, or swapped, by another user beforehand. So:

* a directory is made 0700; one that exists must be a real directory (not a symbolic link)
  owned by this user, and loses any group or other write permission (nobody else may add,
  replace or remove its files);
* a file is created 0600 under a temporary name (``O_EXCL | O_NOFOLLOW``: never through a link
  someone put there) and renamed over the target, so a reader never sees half of it and an
  older file's wider mode is not kept.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


class UnsafeDirectory(ValueError):
    """A directory for secrets that another user owns or that is no plain directory."""


def private_directory(path: Path) -> Path:
    """``path`` as a directory only this user controls; made 0700 (with its parents) if new."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        pass
    else:
        return path
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise UnsafeDirectory(f"{path} is not a directory (a link or a file): not writing secrets")
    if info.st_uid != os.geteuid():
        raise UnsafeDirectory(
            f"{path} belongs to uid {info.st_uid}, not to this user (uid {os.geteuid()}): "
            "another user could read or replace the files written there; remove it or choose "
            "another directory"
        )
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        path.chmod(stat.S_IMODE(info.st_mode) & ~(stat.S_IWGRP | stat.S_IWOTH))
    return path


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` as a 0600 file, atomically, in a private directory."""
    private_directory(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)  # left by a crashed run; nobody else can write here
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    descriptor = os.open(tmp, flags, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
