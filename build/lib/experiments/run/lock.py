"""One writer per directory: an OS file lock (``flock``) held for the writing process's life.

Why: two processes appending to one run dir interleave their rows and overwrite each other's
config silently. The lock is released by the kernel when its holder dies however it dies, so a
killed run never leaves a stale lock behind; the holder writes its pid into the lock file for the
messages. A process that already holds a dir's lock may take it again (nested holders share it).
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

__all__ = ["LockHeld", "acquire", "holder", "release"]


class LockHeld(Exception):
    """Another live process holds the lock; ``holder`` is its pid as it wrote it."""

    def __init__(self, holder: str) -> None:
        super().__init__(holder)
        self.holder = holder


# run dir (real path) -> fd of its lock, for the locks this process holds
_HELD: dict[str, int] = {}


def _read_holder(fd: int, tries: int = 20) -> str:
    """The pid written into a lock file (its holder writes it just after locking: retry a bit)."""
    for _ in range(tries):
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 64).decode(errors="replace").strip()
        if text:
            return text
        time.sleep(0.005)
    return "unknown"


def _key(directory: Path) -> str:
    return os.path.realpath(directory)


def acquire(directory: Path, name: str) -> bool:
    """Lock ``directory`` (through its file ``name``); ``False`` if this process holds it already.

    Raises :class:`LockHeld` if another live process does.
    """
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        return False
    key = _key(directory)
    if key in _HELD:
        return False
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / name, os.O_RDWR | os.O_CREAT, 0o644)
    for attempt in range(50):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except OSError:
            pid = _read_holder(fd, tries=1 if attempt < 49 else 20)
            if pid == "unknown" and attempt < 49:
                # no pid: a reader probing the lock (holder()) for an instant, or a holder that
                # has not written its pid yet: try again shortly
                time.sleep(0.01)
                continue
            os.close(fd)
            raise LockHeld(pid) from None
    with contextlib.suppress(OSError):  # the pid is for messages only (a full disk: no pid)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
    _HELD[key] = fd
    return True


def release(directory: Path) -> None:
    """Release the lock this process holds on ``directory`` (no-op if it holds none)."""
    fd = _HELD.pop(_key(directory), None)
    if fd is None:
        return
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
    os.close(fd)  # releases the flock


def holder(directory: Path, name: str) -> int | None:
    """The pid of the live process that holds ``directory`` (``None``: nobody; ``-1``: unknown)."""
    try:
        import fcntl
    except ImportError:
        return None
    if _key(directory) in _HELD:
        return os.getpid()
    try:
        fd = os.open(directory / name, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        pid = _read_holder(fd)
        return int(pid) if pid.isdigit() else -1
    else:
        return None  # we got it: nobody holds it (closing the fd releases it)
    finally:
        os.close(fd)
