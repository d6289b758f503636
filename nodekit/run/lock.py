"""A per-node lock: one run at a time works on a node.

An exclusive ``flock`` on the node's lock file, released by the kernel when
the holder exits (even when it is killed); the file names the holder so a
waiting run can say who it waits for.
"""

from __future__ import annotations

import fcntl
import getpass
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from nodekit.errors import LockTimeout


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return "another nodekit run"
    if not info:
        return "another nodekit run"
    return (
        f"{info.get('command', 'nodekit')} (pid {info.get('pid')}, "
        f"{info.get('user')}@{info.get('host')}, since {info.get('since')})"
    )


@contextmanager
def node_lock(path: Path, *, node: str, command: str, timeout_s: float) -> Iterator[None]:
    """Hold the node's lock for the duration of the block; wait up to timeout_s."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    start = time.monotonic()
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                waited = time.monotonic() - start
                if waited >= timeout_s:
                    raise LockTimeout(node=node, holder=_holder(path), waited_s=waited) from None
                time.sleep(min(0.5, max(0.05, timeout_s - waited)))
        info = {
            "command": command,
            "pid": os.getpid(),
            "user": getpass.getuser(),
            "host": socket.gethostname(),
            "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
