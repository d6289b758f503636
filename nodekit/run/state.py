"""Where a node's state lives between runs, and its secrets.

``$NODEKIT_STATE`` (default ``~/.local/state/nodekit``) holds one folder per
node::

    nodes/<node>/
      rendered/        the last render (what the tools ran)
      program/         the Pulumi program run from it, with the stack settings
      pulumi/          the stack's file backend and its passphrase (0600)
      secrets.yml      generated secrets, 0600; never rendered, never logged
      deployed.json    the last deploy: hosts, and what nodekit installed on each
      ssh/known_hosts  host keys (ssh target)
      lock             held by the run working on the node
      runs/<id>/       one folder per run: logs, events, junit, summary.json,
                       record.json and rendered.tar.gz (the run's record)

With the PostgreSQL backend (:mod:`nodekit.backends`) the secrets, the lock,
Pulumi's state and the run records live there, and ``deployed.json``,
``ssh/known_hosts`` and the stack settings are copied in at the start of each
run and back at its end. The site bundle lives in the cache
(``~/.cache/nodekit/node-bundles/<node>``), the same for every runner.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from nodekit.errors import InputError

MakeSecret = Callable[[str], str | None] | None
"""Makes the value of a new secret by name (None: a random password)."""


def state_root() -> Path:
    base = os.environ.get("NODEKIT_STATE") or Path.home() / ".local" / "state" / "nodekit"
    return Path(base)


#: In a run folder without summary: the run was stopped, and a later run cleared up.
STOPPED = "stopped"


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
    def secrets_file(self) -> Path:
        return self.root / "secrets.yml"

    @property
    def lock_file(self) -> Path:
        return self.root / "lock"

    def new_run(self, operation: str) -> Path:
        """A fresh run folder, named by time and operation (sortable)."""
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        base = self.root / "runs" / f"{stamp}-{operation}"
        base.parent.mkdir(parents=True, exist_ok=True)
        for n in range(1, 1000):
            path = base if n == 1 else base.with_name(f"{base.name}-{n}")
            try:
                path.mkdir()  # atomic: two runs started in the same second differ
            except FileExistsError:
                continue
            return path
        raise OSError(f"cannot create a run folder under {base.parent}")

    def stopped_runs(self, current: Path) -> list[Path]:
        """Run folders of runs that never finished (killed mid-run: no summary) and
        that no later run has looked after yet (see :meth:`looked_after`)."""
        runs = self.root / "runs"
        if not runs.is_dir():
            return []
        return [
            path
            for path in sorted(runs.iterdir())
            if path.is_dir() and path != current
            and not (path / "summary.json").exists() and not (path / STOPPED).exists()
        ]  # fmt: skip

    @staticmethod
    def looked_after(stopped: list[Path], by: Path) -> None:
        """Mark stopped runs as handled by the run ``by`` (what they left is cleared)."""
        for path in stopped:
            (path / STOPPED).write_text(f"stopped before it finished; looked after by {by.name}\n")

    def ensure_secrets(self, names: tuple[str, ...], make: MakeSecret = None) -> Path:
        """Make sure every named secret has a value; new ones are generated.

        The file is created 0600 and only ever grows: values are never
        replaced, so passwords stay what the hosts were given.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        current = self._read_secrets()
        missing = [n for n in names if n not in current]
        if missing or not self.secrets_file.exists():
            for name in missing:
                current[name] = (make(name) if make else None) or secrets.token_urlsafe(24)
            tmp = self.secrets_file.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                yaml.safe_dump({"nodekit_secrets": dict(sorted(current.items()))}, handle)
            tmp.replace(self.secrets_file)
        return self.secrets_file

    def secret_values(self) -> list[str]:
        """Every secret value (for scrubbing output); empty when none exist."""
        try:
            return list(self._read_secrets().values())
        except InputError:
            return []

    def _read_secrets(self) -> dict[str, str]:
        """The secrets file's values; a malformed file is an error that never
        quotes the file (YAML's own messages would show a secret)."""
        if not self.secrets_file.exists():
            return {}
        where = f"{self.secrets_file}"
        try:
            loaded = yaml.safe_load(self.secrets_file.read_text())
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            line = f" line {mark.line + 1}" if mark is not None else ""
            raise InputError(f"{where}:{line} not valid YAML (contents not shown)") from None
        values = loaded.get("nodekit_secrets") if isinstance(loaded, dict) else None
        if not isinstance(values, dict) or not all(
            isinstance(k, str) and isinstance(v, str | int) for k, v in values.items()
        ):
            raise InputError(
                f"{where}: expected a mapping 'nodekit_secrets' of secret names to values"
            )
        return {k: str(v) for k, v in values.items()}
