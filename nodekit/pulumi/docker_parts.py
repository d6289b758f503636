"""The plain helpers behind nodekit's Docker dynamic provider
(:mod:`nodekit.pulumi.docker_provider`).

Networks: the fixed Linux bridge name of a node network, the host's iptables
rule that lets frames stay on one zone's bridge, a network's state as the
engine reports it, and its VLAN label. Containers: a container's state as the
engine reports it (running, networks and addresses, limits), the values the
provider compares, and booting a systemd container.

Nothing here holds a Docker client: the provider passes in what it got.
"""

from __future__ import annotations

import hashlib
import subprocess
import time
from typing import Any

MANAGED_LABEL = "io.nodekit.managed"
NODE_LABEL = "io.nodekit.node"
VLAN_LABEL = "io.nodekit.vlan"  # a zone network's network.zones[].vlan, or "none"


# --------------------------------------------------------------------------- networks


def bridge_name(network: str) -> str:
    """The Linux bridge of a node network: fixed, so its host rule can be found."""
    return "nkbr-" + hashlib.sha1(network.encode()).hexdigest()[:10]


def _bridge_rule(bridge: str) -> list[str]:
    # Frames that stay on one zone's bridge (host to host, host to its gateway)
    # are accepted before Docker's isolation of internal networks drops those
    # addressed beyond the subnet. Nothing is routed by this machine: frames
    # entering one bridge and leaving another still meet Docker's drop.
    return [
        "DOCKER-USER",
        "-i",
        bridge,
        "-o",
        bridge,
        "-j",
        "ACCEPT",
        "-m",
        "comment",
        "--comment",
        f"nodekit zone bridge {bridge}",
    ]


def _iptables(action: str, rule: list[str]) -> bool:
    run = subprocess.run(["iptables", "-w", "5", action, *rule], capture_output=True, check=False)
    return run.returncode == 0


def _bridged(bridge: str) -> bool:
    return _iptables("-C", _bridge_rule(bridge))


def _ensure_bridged(bridge: str) -> None:
    if not _bridged(bridge) and not _iptables("-I", _bridge_rule(bridge)):
        raise RuntimeError(f"cannot add the host rule for bridge {bridge} (iptables, as root)")


def _unbridge(bridge: str) -> None:
    while _iptables("-D", _bridge_rule(bridge)):
        pass


def _network_state(net: Any) -> dict[str, Any]:
    attrs = net.attrs
    pools = (attrs.get("IPAM") or {}).get("Config") or [{}]
    return {
        "name": attrs["Name"],
        "subnet": pools[0].get("Subnet", ""),
        "gateway": pools[0].get("Gateway", ""),
        "ip_range": pools[0].get("IPRange", ""),
        "internal": bool(attrs.get("Internal")),
        "labels": dict(attrs.get("Labels") or {}),
        "vlan": (attrs.get("Labels") or {}).get(VLAN_LABEL, ""),
        "network_id": attrs["Id"],
        "bridged": _bridged(bridge_name(attrs["Name"])),
    }


def _vlan_label(props: dict[str, Any]) -> dict[str, str]:
    return {VLAN_LABEL: props["vlan"]} if props.get("vlan") else {}


def _relabel(olds: dict[str, Any], news: dict[str, Any]) -> str | None:
    """Why a network made for another VLAN cannot stay (Docker never relabels a
    network); None when it can. A network made before the label existed has none."""
    made, wanted = str(olds.get("vlan") or ""), str(news.get("vlan") or "")
    if not made or made == wanted:
        return None
    return (
        f"network {news['name']} was made for VLAN {made}, its zone's vlan is now {wanted}; "
        "Docker cannot relabel a network: nodekit destroy the node, then deploy it again"
    )


# --------------------------------------------------------------------------- containers


def _container_state(container: Any) -> dict[str, Any]:
    attrs = container.attrs
    host = attrs.get("HostConfig") or {}
    networks = (attrs.get("NetworkSettings") or {}).get("Networks") or {}
    return {
        "running": bool((attrs.get("State") or {}).get("Running")),
        "networks": sorted(
            (
                {"network": name, "address": (net.get("IPAMConfig") or {}).get("IPv4Address", "")}
                for name, net in networks.items()
            ),
            key=lambda n: n["network"],
        ),
        "memory_mb": int(host.get("Memory") or 0) // (1024 * 1024),
        "cpus": _cpus(host),
        "container_id": container.id,
    }


CPU_PERIOD = 100_000  # µs; a limit of N cpus is a quota of N periods


def _cpus(host: dict[str, Any]) -> float:
    """The container's CPU limit in cpus, whichever way it was set (0: none)."""
    if host.get("NanoCpus"):
        return float(host["NanoCpus"]) / 1e9
    quota, period = int(host.get("CpuQuota") or 0), int(host.get("CpuPeriod") or 0)
    return quota / period if quota > 0 and period > 0 else 0.0


def _sorted_networks(networks: list[dict[str, str]]) -> list[dict[str, str]]:
    return sorted(
        ({"network": n["network"], "address": n["address"]} for n in networks),
        key=lambda n: n["network"],
    )


def _norm(key: str, value: Any) -> Any:
    if key == "networks":
        return _sorted_networks(value or [])
    if key == "running":
        return True if value is None else bool(value)
    if key in ("memory_mb", "cpus"):
        return float(value or 0)
    return value


def _boot(container: Any) -> None:
    """Start a container, wait for systemd, and drop the default route Docker
    gives it: a node reaches other zones through its gateway, never off this
    machine."""
    container.start()
    _wait_for_systemd(container)
    container.exec_run(["ip", "route", "del", "default"])


def _wait_for_systemd(container: Any, timeout_s: float = 90) -> None:
    """Block until systemd finished booting (running or degraded)."""
    deadline = time.monotonic() + timeout_s
    state = ""
    while time.monotonic() < deadline:
        result = container.exec_run(["systemctl", "is-system-running", "--wait"])
        state = result.output.decode(errors="replace").strip()
        if state in ("running", "degraded"):
            return
        time.sleep(0.2)  # the bus is not up yet: PID 1 is still starting
    raise RuntimeError(f"container {container.name}: systemd did not boot ({state})")
