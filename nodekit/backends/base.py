"""Where nodekit keeps what every runner of a node must agree on.

A backend holds, per node: the Pulumi stack (through Pulumi's own backend
URL), the node lock, the generated secrets, the node's shared files (the
deployed record, known host keys, the stack settings) and the run records
with the rendered output of each run. Two backends, chosen by
``NODEKIT_BACKEND`` / ``--backend``: the local state folder (default) and
PostgreSQL (``postgres://...``), shared by many runners.

Run folders (logs, events, JUnit XML) always stay on the runner that made them.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from nodekit.errors import UsageError
from nodekit.run.state import MakeSecret, NodeState

# Files of a node's state folder that are node state (shared through the
# backend), relative to the node's folder; the rest is this runner's cache.
SHARED_FILES = ("deployed.json", "ssh/known_hosts", "program/pulumi/Pulumi.*.yaml")

RunRecord = dict[str, Any]  # one run, as DECISIONS.md spells it (id, command, started, ...)


def shared_paths(state: NodeState) -> Iterator[Path]:
    """The shared files that exist in the node's local folder."""
    for pattern in SHARED_FILES:
        yield from sorted(p for p in state.root.glob(pattern) if p.is_file())


def masked(url: str) -> str:
    """A backend URL fit to print: its password replaced by ****."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1****@", url)


class Backend(ABC):
    """What a runner needs of the place where node state lives."""

    name: str
    shared: bool  # many runners can use it at once

    @property
    @abstractmethod
    def display(self) -> str:
        """Where the state lives, fit to print (no password)."""

    @abstractmethod
    def lock(
        self,
        node: str,
        *,
        holder: dict[str, Any],
        timeout_s: float,
        on_wait: Callable[[str], None] | None = None,
    ) -> AbstractContextManager[None]:
        """Hold the node's lock; wait up to timeout_s (LockTimeout names the holder).
        ``on_wait`` hears once who holds it, when the run has to wait."""

    @abstractmethod
    def pull(self, state: NodeState) -> None:
        """Bring the node's shared files into its local folder (the backend is the truth)."""

    @abstractmethod
    def push(self, state: NodeState) -> None:
        """Store the node's shared files from its local folder."""

    @abstractmethod
    def secrets_file(
        self, state: NodeState, names: tuple[str, ...], run_dir: Path, make: MakeSecret = None
    ) -> Path:
        """A 0600 YAML file ``nodekit_secrets: {name: value}`` for Ansible, every named
        secret present (missing ones generated once, for every runner: by ``make(name)``
        when it returns a value, else a random password)."""

    def check(self) -> None:
        """Refuse early what would fail every step (a shared backend: a wrong key)."""
        return

    def knows(self, node: str) -> bool:
        """Whether the backend already holds state or history of the node."""
        return False

    def import_secrets(self, state: NodeState, values: dict[str, str]) -> None:
        """Store given secret values (``backend migrate``); existing values are kept."""
        raise UsageError(f"the {self.name} backend does not import secrets")

    @abstractmethod
    def secret_values(self, state: NodeState) -> list[str]:
        """Every secret value of the node (to scrub output); [] when there are none."""

    @abstractmethod
    def pulumi_env(self, state: NodeState) -> dict[str, str]:
        """PULUMI_BACKEND_URL and PULUMI_CONFIG_PASSPHRASE for the node's stack."""

    @abstractmethod
    def clear_pulumi_locks(self, project: str, stack: str) -> int:
        """Remove the stack's Pulumi locks (called holding nodekit's lock, so any
        is stale: left by a runner that was stopped); how many there were."""

    @abstractmethod
    def has_stack(self, state: NodeState) -> bool:
        """Whether the node may have a Pulumi stack here."""

    @abstractmethod
    def add_run(self, state: NodeState, record: RunRecord, rendered: bytes | None) -> str:
        """Keep a run's record and its rendered output (a tar.gz); the run id kept."""

    @abstractmethod
    def runs(self, node: str, limit: int | None = None) -> list[RunRecord]:
        """The node's run records, newest first."""

    @abstractmethod
    def rendering(self, node: str, run: str) -> bytes | None:
        """The rendered output (tar.gz) kept with a run, if any."""

    @abstractmethod
    def forget(self, state: NodeState) -> None:
        """Remove the node's secrets and shared files (destroy); its history stays."""
