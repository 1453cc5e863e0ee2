"""One `frontline run` per SQLite database: the running process holds an
exclusive lock on a file beside the database, and a second one refuses to
start before it changes anything. (With PostgreSQL several processes share
one database; this is for SQLite only.)"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path


class AlreadyRunning(Exception):
    """Another process holds the database; the message names it."""


def lock_path(db_path: str | Path) -> Path:
    return Path(f"{db_path}.lock")


@contextlib.contextmanager
def only_instance(db_path: str | Path) -> Iterator[None]:
    """Hold the database's run lock for the duration, or raise AlreadyRunning.
    The kernel drops the lock when the process ends, however it ends."""
    path = lock_path(db_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise AlreadyRunning(
            f"another frontline run holds {db_path} (pid {holder}); stop it first"
        ) from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)
