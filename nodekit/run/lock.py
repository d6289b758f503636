"""A per-node lock on this machine: one run at a time works on a node.

An exclusive ``flock`` on the node's lock file, released by the kernel when
the holder exits (even when it is killed); the file names the holder so a
waiting run can say who it waits for. (The PostgreSQL backend holds its
locks in the database instead: :mod:`nodekit.backends.postgres`.)
"""

from __future__ import annotations

import fcntl
import getpass
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from nodekit.errors import LockTimeout

# A holder writes its name just after it takes a lock; a waiter that finds no
# name yet waits this long for one before it says "another nodekit run".
NAME_GRACE_S = 3.0


def holder_info(command: str, commit: str | None = None) -> dict[str, Any]:
    """Who takes a lock: command, runner host, pid, user, start time, git commit."""
    return {
        "command": command,
        "pid": os.getpid(),
        "user": getpass.getuser(),
        "host": socket.gethostname(),
        "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": commit,
    }


def describe_holder(info: dict[str, Any] | None) -> str:
    if not info:
        return "another nodekit run"
    commit = f", commit {str(info['commit'])[:12]}" if info.get("commit") else ""
    return (
        f"{info.get('command', 'nodekit')} (pid {info.get('pid')}, "
        f"{info.get('user')}@{info.get('host')}, since {info.get('since')}{commit})"
    )


def _holder_info(path: Path) -> dict[str, Any] | None:
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) and info else None


@contextmanager
def node_lock(
    path: Path,
    *,
    node: str,
    command: str,
    timeout_s: float,
    holder: dict[str, Any] | None = None,
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """Hold the node's lock for the duration of the block; wait up to timeout_s.

    ``holder`` (default: :func:`holder_info` of ``command``) is written into the
    lock file for whoever waits."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    start = time.monotonic()
    told = False
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                waited = time.monotonic() - start
                info = _holder_info(path)
                if waited >= timeout_s:
                    who = describe_holder(info)
                    raise LockTimeout(node=node, holder=who, waited_s=waited) from None
                if on_wait and not told and (info or waited >= NAME_GRACE_S):
                    on_wait(describe_holder(info))
                    told = True
                time.sleep(min(0.5, max(0.05, timeout_s - waited)))
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder or holder_info(command)).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
