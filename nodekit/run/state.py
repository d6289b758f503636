"""Where a node's state lives between runs, and its secrets.

``$NODEKIT_STATE`` (default ``~/.local/state/nodekit``) holds one folder per
node::

    nodes/<node>/
      rendered/        the last render (what the tools ran)
      pulumi/          the stack's file backend and its passphrase (0600)
      bundle/          the site bundle the node's containers mount
      secrets.yml      generated secrets, 0600; never rendered, never logged
      lock             held by the run working on the node
      runs/<id>/       one folder per run: logs, events, junit, summary.json
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import yaml


def state_root() -> Path:
    base = os.environ.get("NODEKIT_STATE") or Path.home() / ".local" / "state" / "nodekit"
    return Path(base)


@dataclass(frozen=True)
class NodeState:
    """The state folder of one node."""

    node: str
    root: Path

    @classmethod
    def of(cls, node: str) -> NodeState:
        return cls(node, state_root() / "nodes" / node)

    @property
    def rendered(self) -> Path:
        return self.root / "rendered"

    @property
    def pulumi(self) -> Path:
        return self.root / "pulumi"

    @property
    def bundle(self) -> Path:
        return self.root / "bundle"

    @property
    def secrets_file(self) -> Path:
        return self.root / "secrets.yml"

    @property
    def lock_file(self) -> Path:
        return self.root / "lock"

    def new_run(self, operation: str) -> Path:
        """A fresh run folder, named by time and operation (sortable)."""
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        base = self.root / "runs" / f"{stamp}-{operation}"
        path, n = base, 1
        while path.exists():
            n += 1
            path = base.with_name(f"{base.name}-{n}")
        path.mkdir(parents=True)
        return path

    def ensure_secrets(self, names: tuple[str, ...]) -> Path:
        """Make sure every named secret has a value; new ones are generated.

        The file is created 0600 and only ever grows: values are never
        replaced, so passwords stay what the hosts were given.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        current: dict[str, str] = {}
        if self.secrets_file.exists():
            loaded = yaml.safe_load(self.secrets_file.read_text()) or {}
            current = dict(loaded.get("nodekit_secrets") or {})
        missing = [n for n in names if n not in current]
        if missing or not self.secrets_file.exists():
            for name in missing:
                current[name] = secrets.token_urlsafe(24)
            tmp = self.secrets_file.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                yaml.safe_dump({"nodekit_secrets": dict(sorted(current.items()))}, handle)
            tmp.replace(self.secrets_file)
        return self.secrets_file

    def secret_values(self) -> list[str]:
        """Every secret value (for scrubbing output); empty when none exist."""
        if not self.secrets_file.exists():
            return []
        loaded = yaml.safe_load(self.secrets_file.read_text()) or {}
        return [str(v) for v in (loaded.get("nodekit_secrets") or {}).values()]
