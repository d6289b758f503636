"""The local backend: node state in this machine's state folder (the default).

Everything stays where it always was (see :mod:`nodekit.run.state`): the
Pulumi file backend and its passphrase under ``pulumi/``, ``secrets.yml``
(0600), an ``flock`` lock, and each run's record (``record.json``) and
rendered output (``rendered.tar.gz``) in its run folder.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from nodekit.backends.base import Backend, RunRecord
from nodekit.run.lock import node_lock
from nodekit.run.pulumi_stack import passphrase_for
from nodekit.run.state import MakeSecret, NodeState, state_root


class LocalBackend(Backend):
    name = "local"
    shared = False

    @property
    def display(self) -> str:
        return f"local folder {state_root()}"

    @contextmanager
    def lock(
        self,
        node: str,
        *,
        holder: dict[str, Any],
        timeout_s: float,
        on_wait: Callable[[str], None] | None = None,
    ) -> Iterator[None]:
        state = NodeState.of(node)
        with node_lock(
            state.lock_file,
            node=node,
            command=str(holder.get("command", "nodekit")),
            timeout_s=timeout_s,
            holder=holder,
            on_wait=on_wait,
        ):
            yield

    def pull(self, state: NodeState) -> None:
        return None  # the local folder is the state

    def push(self, state: NodeState) -> None:
        return None

    def secrets_file(
        self, state: NodeState, names: tuple[str, ...], run_dir: Path, make: MakeSecret = None
    ) -> Path:
        return state.ensure_secrets(names, make)

    def secret_values(self, state: NodeState) -> list[str]:
        values = state.secret_values()
        passphrase = state.pulumi / "passphrase"
        if passphrase.exists():
            values.append(passphrase.read_text().strip())
        return values

    def pulumi_env(self, state: NodeState) -> dict[str, str]:
        backend = state.pulumi / "backend"
        backend.mkdir(parents=True, exist_ok=True)
        return {
            "PULUMI_BACKEND_URL": backend.resolve().as_uri(),
            "PULUMI_CONFIG_PASSPHRASE": passphrase_for(state.pulumi),
        }

    def clear_pulumi_locks(self, project: str, stack: str) -> int:
        cleared = 0
        for state_dir in (state_root() / "nodes").glob("*/pulumi/backend/.pulumi/locks"):
            for lock in state_dir.glob(f"*/{project}/{stack}/*.json"):
                lock.unlink(missing_ok=True)
                cleared += 1
        return cleared

    def has_stack(self, state: NodeState) -> bool:
        return (state.pulumi / "backend").exists()

    def add_run(self, state: NodeState, record: RunRecord, rendered: bytes | None) -> str:
        folder = state.root / "runs" / str(record["id"])
        folder.mkdir(parents=True, exist_ok=True)
        if rendered is not None:
            (folder / "rendered.tar.gz").write_bytes(rendered)
        (folder / "record.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        return str(record["id"])

    def runs(self, node: str, limit: int | None = None) -> list[RunRecord]:
        records = []
        for path in (NodeState.of(node).root / "runs").glob("*/record.json"):
            try:
                records.append(json.loads(path.read_text()))
            except (OSError, ValueError):
                continue  # a run folder being written, or damaged: not a record
        records.sort(key=lambda r: (str(r.get("started", "")), str(r.get("id", ""))), reverse=True)
        return records[:limit] if limit else records

    def rendering(self, node: str, run: str) -> bytes | None:
        path = NodeState.of(node).root / "runs" / run / "rendered.tar.gz"
        return path.read_bytes() if path.is_file() else None

    def forget(self, state: NodeState) -> None:
        return None  # destroy removes the local files itself
