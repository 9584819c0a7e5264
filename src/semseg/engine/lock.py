"""One writer per run folder: a lock file holding the writer's pid, host and start time.

A second ``semseg train`` (or ``--resume``) on a folder in use is refused with one line naming
the holder. A lock left by a process that no longer runs on this host (killed, machine crash) is
stale and taken over. Locks held on another host are never broken: that host may be alive.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from semseg.errors import ConfigError

LOCK_NAME = ".lock"


class RunLockedError(ConfigError):
    """The run folder is being written by another live process."""


class RunLock:
    """``with RunLock(run_dir): ...`` holds ``run_dir/.lock`` for the block.

    Creating the file with ``O_EXCL`` makes taking the lock atomic: of two processes starting
    at once, exactly one creates it.
    """

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / LOCK_NAME
        self.held = False

    def acquire(self) -> None:
        """Take the lock, taking over a stale one; raise :class:`RunLockedError` if it is held."""
        me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        for _ in range(2):  # a second try after removing a stale lock
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = read_lock(self.path)
                if holder is None and _age(self.path) < 5.0:
                    # Just created by another process that has not written its pid yet.
                    raise RunLockedError(f"{self.path.parent} is being locked by another process; try again") from None
                if holder is not None and not is_stale(holder):
                    raise RunLockedError(
                        f"{self.path.parent} is in use by pid {holder.get('pid')} on {holder.get('host')} "
                        f"since {holder.get('started')}; wait for it to finish or stop it"
                    ) from None
                self.path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as f:
                json.dump(me, f)
            self.held = True
            return
        raise RunLockedError(f"{self.path.parent} is being locked by another process; try again")

    def release(self) -> None:
        """Remove the lock if this object holds it."""
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def read_lock(path: Path) -> dict[str, Any] | None:
    """The holder recorded in a lock file; ``None`` for an unreadable (half-written) one."""
    try:
        holder = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


def is_stale(holder: dict[str, Any]) -> bool:
    """Whether the holder is a process of this host that no longer runs."""
    if holder.get("host") != socket.gethostname():
        return False
    pid = holder.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, owned by another user
        return False
    return False


def _age(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return float("inf")
