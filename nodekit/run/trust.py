"""`nodekit trust`: see the SSH host keys of a node's hosts, and record them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from nodekit.backends import backend_for
from nodekit.errors import UsageError
from nodekit.render.plan import plan
from nodekit.run.lock import holder_info
from nodekit.run.state import NodeState
from nodekit.targets import RunAccess, target_for
from nodekit.targets.hostkeys import fingerprint, known_keys, known_name, scan
from nodekit.targets.ssh import SshTarget

if TYPE_CHECKING:
    from nodekit.blueprint import Blueprint


@dataclass(frozen=True)
class HostKey:
    host: str
    address: str  # as known_hosts names it
    fingerprint: str
    status: str  # known | new | changed | unreachable
    key: str  # TYPE BASE64


def _target(blueprint: Blueprint, identity: Path | None) -> tuple[SshTarget, RunAccess]:
    node = plan(blueprint.data)
    target = target_for(node)
    if not isinstance(target, SshTarget):
        raise UsageError(f"{node.name} is on target {node.target}: host keys concern target ssh")
    state = NodeState.of(node.name)
    access = RunAccess(state_root=state.root, run_dir=state.root, identity=identity)
    return target, access


def scan_keys(
    blueprint: Blueprint, *, identity: Path | None = None, backend: str | None = None
) -> list[HostKey]:
    target, access = _target(blueprint, identity)
    backend_for(backend).pull(NodeState.of(target.node.name))  # the keys every runner knows
    config = target.ssh_config(access)
    known_hosts = access.state_root / "ssh" / "known_hosts"
    found = []
    for host in target.node.hosts:
        name = known_name(host)
        offered = scan(target.ssh_argv(config, host))
        known = known_keys(known_hosts, name)
        if not offered:
            found.append(HostKey(host.name, name, "-", "unreachable", ""))
        for key in offered:
            status = "known" if key in known else ("changed" if known else "new")
            found.append(HostKey(host.name, name, fingerprint(key), status, key))
    return found


def trust_keys(blueprint: Blueprint, keys: list[HostKey], *, backend: str | None = None) -> None:
    """Append the given (new) keys to the node's known_hosts, in the backend too
    (holding the node's lock, so no run's push undoes it)."""
    target, access = _target(blueprint, None)
    store = backend_for(backend)
    state = NodeState.of(target.node.name)
    known_hosts = access.state_root / "ssh" / "known_hosts"
    with store.lock(state.node, holder=holder_info("nodekit trust"), timeout_s=600):
        store.pull(state)
        known_hosts.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with known_hosts.open("a") as handle:
            for key in keys:
                handle.write(f"{key.address} {key.key}\n")
        store.push(state)
