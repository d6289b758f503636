"""The local target's WAN (see :mod:`nodekit.pulumi.wan`): bring it up, and
find where a peer node's gateway sits on it."""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Any

from nodekit.blueprint.fleet import LOCAL_WAN
from nodekit.render.uplink import WAN_NETWORK
from nodekit.run.fleet_tls import FLEET, fleet_state
from nodekit.run.lock import holder_info
from nodekit.run.pulumi_stack import OutputFn, PulumiResult, PulumiStack

_PROGRAM = '''"""The local WAN of nodekit's fleet on this machine (written by nodekit)."""

from nodekit.pulumi.wan import program

program()
'''


def wan_stack_name() -> str:
    """One WAN per machine, even when runners share a backend."""
    return "wan-" + re.sub(r"[^a-z0-9-]", "-", socket.gethostname().lower())[:40]


def wan_present() -> bool:
    """Whether the WAN network stands, as nodekit makes it (subnet and host rule)."""
    import docker

    from nodekit.pulumi.docker_parts import _bridged, bridge_name

    client = docker.from_env(timeout=60)
    for net in client.networks.list(names=[WAN_NETWORK]):
        pools = (net.attrs.get("IPAM") or {}).get("Config") or [{}]
        if net.name != WAN_NETWORK:
            continue  # (the filter matches parts of names too)
        if pools[0].get("Subnet") == LOCAL_WAN and _bridged(bridge_name(WAN_NETWORK)):
            return True
    return False


def ensure_wan(backend: Any, on_output: OutputFn | None = None) -> PulumiResult | None:
    """Bring the WAN network up (idempotent; repaired when removed by hand); None
    when it already stands (the common case: no stack run on every deploy)."""
    if wan_present():
        return None
    state = fleet_state()
    program = state.root / "wan"
    program.mkdir(parents=True, exist_ok=True)
    stack = wan_stack_name()
    _write(program / "Pulumi.yaml", "name: nodekit-wan\nruntime: python\n")
    _write(program / "__main__.py", _PROGRAM)
    _write(
        program / f"Pulumi.{stack}.yaml",
        f"config:\n  nodekit:network: {WAN_NETWORK}\n  nodekit:cidr: {LOCAL_WAN}\n",
    )
    with backend.lock(FLEET, holder=holder_info("nodekit wan"), timeout_s=300):
        pulumi = PulumiStack(program, stack, state_dir=state.pulumi, env=backend.pulumi_env(state))
        return pulumi.up(on_output, refresh=True)


def _write(path: Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def peer_addresses(peer: str) -> dict[str, str]:
    """``{peer: address}`` of a peer node's gateway on the WAN, when it is deployed
    on this machine; ``{}`` otherwise (a name the site's DNS must resolve)."""
    import docker

    from nodekit.pulumi.docker_provider import NODE_LABEL

    client = docker.from_env(timeout=60)
    for container in client.containers.list(
        filters={"label": f"{NODE_LABEL}={peer}"}, ignore_removed=True
    ):
        networks = container.attrs.get("NetworkSettings", {}).get("Networks") or {}
        address = (networks.get(WAN_NETWORK) or {}).get("IPAddress")
        if address:
            return {peer: str(address)}
    return {}
