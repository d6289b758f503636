"""network.zones[].vlan on the ssh target: preflight reads each host's interfaces
(``ip -d -j addr``) and refuses an address on an 802.1Q interface of another VLAN."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from nodekit.blueprint import load
from nodekit.render.plan import NodePlan, plan
from nodekit.targets.ssh import PROBE, _vlans, probe_facts

BREMEN = Path(__file__).resolve().parents[3] / "blueprints/sites/bremen-additive-01-ssh.yaml"


def _node() -> NodePlan:
    return plan(load(BREMEN).data)  # zones ot (vlan 71) and it (vlan 72); gw-01 in both


def _link(index: int, name: str, address: str | None, **extra: Any) -> dict[str, Any]:
    """One interface as `ip -d -j addr` prints it (fields nodekit does not read left out)."""
    addresses = [{"family": "inet", "local": address, "prefixlen": 24, "scope": "global",
                  "label": name}] if address else []  # fmt: skip
    return {"ifindex": index, "ifname": name, "flags": ["BROADCAST", "MULTICAST", "UP"],
            "mtu": 1500, "link_type": "ether", **extra, "addr_info": addresses}  # fmt: skip


def _vlan(index: int, name: str, parent: str, vid: int, address: str) -> dict[str, Any]:
    info = {"info_kind": "vlan", "info_data": {"protocol": "802.1Q", "id": vid,
                                               "flags": ["REORDER_HDR"]}}  # fmt: skip
    return _link(index, name, address, link=parent, linkinfo=info)


LOOPBACK = {"ifindex": 1, "ifname": "lo", "flags": ["LOOPBACK", "UP"], "link_type": "loopback",
            "addr_info": [{"family": "inet", "local": "127.0.0.1", "prefixlen": 8}]}  # fmt: skip


def _check(host: str, links: list[dict[str, Any]]) -> list[str]:
    node = _node()
    return [str(p) for p in _vlans(node.host(host), node, json.dumps([LOOPBACK, *links]))]


def test_the_probe_reads_the_interfaces_in_detail() -> None:
    assert "ip -d -j addr show" in PROBE
    # Run here, the probe's line reads back as the JSON list `ip` printed (or empty).
    run = subprocess.run(["sh", "-c", PROBE], capture_output=True, text=True, check=False)
    links = json.loads(probe_facts(run.stdout)["links"] or "[]")
    assert isinstance(links, list) and all("ifname" in link for link in links)


def test_tagged_interfaces_of_the_zones_vlans_pass() -> None:
    links = [
        _link(2, "eth0", None),
        _vlan(3, "eth0.71", "eth0", 71, "192.168.71.1"),
        _vlan(4, "eth0.72", "eth0", 72, "192.168.72.1"),
    ]
    assert _check("gw-01", links) == []


def test_an_untagged_interface_passes_the_switch_port_carries_the_vlan() -> None:
    links = [_link(2, "eth0", "192.168.71.10")]
    assert _check("edge-01", links) == []
    bridged = [_link(2, "br0", "192.168.72.10", linkinfo={"info_kind": "bridge"})]
    assert _check("hist-01", bridged) == []


def test_a_tagged_interface_of_another_vlan_is_refused_naming_both_ids() -> None:
    links = [
        _link(2, "eth0", None),
        _vlan(3, "eth0.71", "eth0", 71, "192.168.71.1"),
        _vlan(4, "eth0.73", "eth0", 73, "192.168.72.1"),  # zone it is vlan 72
    ]
    assert _check("gw-01", links) == [
        "gw-01: vlan: 192.168.72.1 (zone it) is on eth0.73, an 802.1Q interface of VLAN 73; "
        "network.zones[it].vlan is 72 (fix: put 192.168.72.1 on an interface of VLAN 72 "
        "(e.g. eth0.72), or correct network.zones[it].vlan if the blueprint is wrong)"
    ]


def test_a_zone_without_vlan_is_not_checked() -> None:
    node = _node()
    data = load(BREMEN).data
    for zone in data["network"]["zones"]:
        zone.pop("vlan")
    bare = plan(data)
    links = json.dumps([_vlan(3, "eth0.9", "eth0", 9, "192.168.71.10")])
    assert _vlans(bare.host("edge-01"), bare, links) == []
    assert [p.check for p in _vlans(node.host("edge-01"), node, links)] == ["vlan"]


def test_no_ip_tool_or_an_address_elsewhere_is_not_checked() -> None:
    node = _node()
    assert _vlans(node.host("edge-01"), node, "") == []  # no iproute2 on the host
    assert _vlans(node.host("edge-01"), node, "not json") == []
    elsewhere = json.dumps([_vlan(3, "eth0.9", "eth0", 9, "10.0.0.5")])
    assert _vlans(node.host("edge-01"), node, elsewhere) == []
