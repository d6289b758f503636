"""``nodekit backend migrate``: a laptop's local state into a shared backend.

Per node: the Pulumi stack (exported from the local file backend, imported
into the shared one under the shared passphrase), the secrets (the shared
backend keeps a value it already has: first writer wins, as for runners),
the shared files and every run record with its rendering.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import yaml
from pulumi import automation as auto

from nodekit.backends.base import Backend, shared_paths
from nodekit.backends.local import LocalBackend
from nodekit.errors import BackendError, PulumiFailed
from nodekit.run.lock import holder_info
from nodekit.run.pulumi_stack import PulumiStack
from nodekit.run.state import NodeState, state_root

SECRET_SIG = "4dabf18193072939515e22adb298388d"  # Pulumi's marker of a secret value


@dataclass(frozen=True)
class Migrated:
    node: str
    stack: bool
    secrets: int
    files: int
    runs: int
    skipped: str | None = None  # why nothing of the node was copied

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def migrate_all(
    target: Backend, on_line: Callable[[str], None], *, lock_timeout_s: float = 600
) -> list[Migrated]:
    local = LocalBackend()
    done = []
    for folder in sorted((state_root() / "nodes").glob("*/")):
        state = NodeState.of(folder.name)
        holder = holder_info("nodekit backend migrate")
        with target.lock(state.node, holder=holder, timeout_s=lock_timeout_s):
            if target.knows(state.node):  # never overwrite what runners share
                on_line(f"{state.node}: already in {target.display}: skipped")
                done.append(Migrated(state.node, False, 0, 0, 0, "already in the backend"))
                continue
            on_line(f"{state.node}: copying into {target.display}")
            done.append(_migrate(state, local, target))
    return done


def _migrate(state: NodeState, local: LocalBackend, target: Backend) -> Migrated:
    stack = _copy_stack(state, local, target)
    names = tuple(sorted(_local_secrets(state)))
    if names:
        # Local values first: the shared backend generates none of these.
        target.import_secrets(state, _local_secrets(state))
    target.push(state)
    runs = local.runs(state.node)
    for record in reversed(runs):
        kept = {r["id"] for r in target.runs(state.node)}
        if record["id"] not in kept:
            target.add_run(state, record, local.rendering(state.node, str(record["id"])))
    files = len(list(shared_paths(state)))
    return Migrated(state.node, stack, len(names), files, len(runs))


def _local_secrets(state: NodeState) -> dict[str, str]:
    if not state.secrets_file.exists():
        return {}
    loaded = yaml.safe_load(state.secrets_file.read_text()) or {}
    return {str(k): str(v) for k, v in (loaded.get("nodekit_secrets") or {}).items()}


def _copy_stack(state: NodeState, local: LocalBackend, target: Backend) -> bool:
    program = state.root / "program" / "pulumi"
    if not local.has_stack(state) or not program.is_dir():
        return False
    settings = next(program.glob("Pulumi.*.yaml"), None)
    if settings is None:
        return False
    name = settings.name.removeprefix("Pulumi.").removesuffix(".yaml")
    try:
        source = PulumiStack(program, name, state_dir=state.pulumi, env=local.pulumi_env(state))
        exported = source.export()
    except PulumiFailed as error:
        raise BackendError(f"{state.node}: cannot export the local stack: {error.detail}") from None
    deployment: dict[str, Any] = dict(exported.deployment or {})
    if SECRET_SIG in json.dumps(deployment):
        raise BackendError(
            f"{state.node}: the local stack holds Pulumi secrets, which cannot be re-keyed here",
            fix="run `pulumi stack change-secrets-provider` on it first, or destroy and redeploy",
        )
    deployment.pop("secrets_providers", None)  # the shared stack's own provider takes over
    # A new salt for the shared passphrase: drop the local one from the stack settings.
    kept = [
        line for line in settings.read_text().splitlines(keepends=True)
        if not line.startswith("encryptionsalt:")
    ]  # fmt: skip
    original = settings.read_text()
    settings.write_text("".join(kept))
    try:
        shared = PulumiStack(program, name, state_dir=state.pulumi, env=target.pulumi_env(state))
        shared.import_(auto.Deployment(version=exported.version, deployment=deployment))
    except PulumiFailed as error:
        settings.write_text(original)  # the local stack stays usable as it was
        raise BackendError(f"{state.node}: cannot import the stack: {error.detail}") from None
    return True
