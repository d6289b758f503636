"""Fleet validation: what only several blueprints together can get wrong."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from blueprint_cases import VALID, Workspace, at

from nodekit.blueprint import load, validate
from nodekit.blueprint.fleet import LOCAL_WAN, is_node_name
from nodekit.errors import BlueprintError


def node(
    name: str,
    *,
    net: str = "10.41",
    uplink: str | None = None,
    target: str = "local",
) -> str:
    """VALID renamed, on networks ``NET.1.0/24`` and ``NET.2.0/24``, with an uplink."""
    text = VALID.replace("test-node", name).replace("10.41.", f"{net}.")
    text = text.replace("target: local", f"target: {target}")
    if uplink is not None:
        text = text.replace("network:\n", f"network:\n  uplink: {uplink}\n", 1)
    return text


def test_a_peer_that_names_a_node_of_the_fleet_is_fine(ws: Workspace) -> None:
    ws.write("hub.yaml", node("hub-eu", net="10.50"))
    ws.write("site.yaml", node("site-a", uplink="{type: vpn, peer: hub-eu}"))
    assert ws.diagnostics("hub.yaml", "site.yaml") == []


def test_an_unknown_peer_is_an_error_at_the_peer_with_a_hint(ws: Workspace) -> None:
    ws.write("hub.yaml", node("hub-eu", net="10.50"))
    site = ws.write("site.yaml", node("site-a", uplink="{type: vpn, peer: hub-ue}"))
    text = site.read_text()
    line = at(text, "uplink:")
    column = text.splitlines()[int(line.split(":")[0]) - 1].index("hub-ue") + 1
    assert [str(d) for d in validate(["."], fleet=True).diagnostics] == [
        f"site.yaml:{line.split(':')[0]}:{column}: error: network.uplink.peer: unknown node "
        "'hub-ue' (did you mean 'hub-eu'?): a peer without a dot names a node of the fleet "
        "(the folder validated), or write its host name or address"
    ]
    # A few files by name (the sites one deploy applies) need not hold their hub.
    assert ws.diagnostics("site.yaml", "hub.yaml") == []


@pytest.mark.parametrize("peer", ["vpn.eu-west.example.internal", "192.0.2.10", "hub.local"])
def test_a_peer_with_a_dot_or_an_address_is_external(ws: Workspace, peer: str) -> None:
    ws.write("a.yaml", node("site-a", uplink=f"{{type: vpn, peer: '{peer}'}}", target="ssh"))
    ws.write("b.yaml", node("site-b", net="10.42"))
    assert ws.diagnostics("a.yaml", "b.yaml") == []


def test_a_peer_naming_a_node_whose_file_is_invalid_is_not_reported_twice(
    ws: Workspace,
) -> None:
    ws.write("hub.yaml", node("hub-eu", net="10.50").replace("vlan: 42", "vlan: 41"))
    ws.write("site.yaml", node("site-a", uplink="{type: vpn, peer: hub-eu}"))
    ws.write("other.yaml", node("site-b", net="10.42"))
    found = ws.diagnostics("hub.yaml", "site.yaml", "other.yaml")
    assert [line.split(":")[0] for line in found] == ["hub.yaml"]


def test_one_node_alone_skips_the_fleet_checks(ws: Workspace) -> None:
    ws.write("site.yaml", node("site-a", uplink="{type: vpn, peer: hub-eu}"))
    assert ws.diagnostics("site.yaml") == []


def test_a_node_cannot_be_its_own_peer_even_alone(ws: Workspace) -> None:
    ws.write("site.yaml", node("site-a", uplink="{type: vpn, peer: site-a}"))
    [found] = ws.diagnostics("site.yaml")
    assert "error: network.uplink.peer: 'site-a' is this node itself" in found


def test_nodes_with_one_peer_must_not_overlap(ws: Workspace) -> None:
    ws.write("a.yaml", node("site-a", uplink="{type: vpn, peer: vpn.example.net}", target="ssh"))
    b = ws.write(
        "b.yaml", node("site-b", uplink="{type: vpn, peer: vpn.example.net}", target="ssh")
    )
    text = b.read_text()
    assert ws.diagnostics("a.yaml", "b.yaml") == [
        f"b.yaml:{at(text, 'cidr: 10.41.1.0/24', value=True)}: error: network.zones[ot].cidr: "
        "10.41.1.0/24 overlaps zone 'ot' (10.41.1.0/24) of node 'site-a' (a.yaml), which this "
        "node meets on a WAN (both uplink to 'vpn.example.net'): choose a free network",
        f"b.yaml:{at(text, 'cidr: 10.41.2.0/24', value=True)}: error: network.zones[it].cidr: "
        "10.41.2.0/24 overlaps zone 'it' (10.41.2.0/24) of node 'site-a' (a.yaml), which this "
        "node meets on a WAN (both uplink to 'vpn.example.net'): choose a free network",
    ]


def test_a_site_must_not_overlap_its_hub(ws: Workspace) -> None:
    ws.write("a-hub.yaml", node("hub-eu", net="10.41"))
    ws.write("b-site.yaml", node("site-a", net="10.41", uplink="{type: vpn, peer: hub-eu}"))
    found = ws.diagnostics("a-hub.yaml", "b-site.yaml")
    assert len(found) == 2
    assert all(line.startswith("b-site.yaml:") for line in found)
    assert "(this node's uplink peer is 'hub-eu')" in found[0]


def test_the_hub_named_later_is_told_who_names_it(ws: Workspace) -> None:
    ws.write("a-site.yaml", node("site-a", net="10.41", uplink="{type: vpn, peer: hub-eu}"))
    ws.write("b-hub.yaml", node("hub-eu", net="10.41"))
    found = ws.diagnostics("a-site.yaml", "b-hub.yaml")
    assert all(line.startswith("b-hub.yaml:") for line in found)
    assert "('site-a' names this node as its uplink peer)" in found[0]


def test_local_nodes_with_a_wan_uplink_meet_on_the_local_wan(ws: Workspace) -> None:
    ws.write("a.yaml", node("site-a", uplink="{type: direct}"))
    ws.write("b.yaml", node("site-b", uplink="{type: vpn, peer: vpn.example.net}"))
    found = ws.diagnostics("a.yaml", "b.yaml")
    assert len(found) == 2
    assert f"(both are on the local WAN {LOCAL_WAN})" in found[0]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("{type: vpn, peer: vpn.one.example}", "{type: vpn, peer: vpn.two.example}"),  # ssh
        (None, None),  # no uplink: isolated
        ("{type: none}", "{type: none}"),
    ],
)
def test_nodes_that_never_meet_may_reuse_networks(
    ws: Workspace, first: str | None, second: str | None
) -> None:
    target = "ssh" if first and "vpn" in first else "local"
    ws.write("a.yaml", node("site-a", uplink=first, target=target))
    ws.write("b.yaml", node("site-b", uplink=second, target=target))
    assert ws.diagnostics("a.yaml", "b.yaml") == []


def test_the_duplicate_name_check_stays(ws: Workspace) -> None:
    ws.write("a.yaml", node("site-a"))
    ws.write("b.yaml", node("site-a", net="10.42"))
    [found] = ws.diagnostics("a.yaml", "b.yaml")
    assert found.endswith("metadata.name: node name 'site-a' is also used by a.yaml")


def test_local_zones_must_not_overlap_the_local_wan(ws: Workspace) -> None:
    text = node("site-a", uplink="{type: direct}").replace("10.41.1.", "100.64.0.")
    ws.write("site.yaml", text)
    assert ws.diagnostics("site.yaml") == [
        f"site.yaml:{at(text, 'cidr: 100.64.0.0/24', value=True)}: error: "
        "network.zones[ot].cidr: 100.64.0.0/24 overlaps the local WAN 100.64.0.0/24 that the "
        "uplink joins on the local target: choose another network"
    ]


def test_the_local_wan_is_free_to_use_without_an_uplink_or_on_ssh(ws: Workspace) -> None:
    ws.write("a.yaml", node("site-a").replace("10.41.1.", "100.64.0."))
    ssh = node("site-b", uplink="{type: direct}", target="ssh").replace("10.41.1.", "100.64.0.")
    ws.write("b.yaml", ssh)
    assert ws.diagnostics("a.yaml") == []
    assert ws.diagnostics("b.yaml") == []


@pytest.mark.parametrize(
    ("address", "ok"),
    [("100.64.0.2", True), ("100.64.0.127", True), ("100.64.0.128", False), ("10.0.0.1", False)],
)
def test_a_local_wan_address_lies_in_the_lower_half(ws: Workspace, address: str, ok: bool) -> None:
    ws.write("site.yaml", node("site-a", uplink=f"{{type: direct, address: {address}}}"))
    found = ws.diagnostics("site.yaml")
    if ok:
        assert found == []
    else:
        [line] = found
        assert f"network.uplink.address: {address} is not in 100.64.0.0/25" in line


def test_per_node_checks_also_guard_load(ws: Workspace, tmp_path: Path) -> None:
    ws.write("site.yaml", node("site-a", uplink="{type: direct, address: 100.64.0.200}"))
    with pytest.raises(BlueprintError, match=re.escape("is not in 100.64.0.0/25")):
        load(tmp_path / "site.yaml")


def test_two_local_nodes_never_share_a_wan_address(ws: Workspace) -> None:
    ws.write("a.yaml", node("site-a", uplink="{type: direct, address: 100.64.0.10}"))
    ws.write("b.yaml", node("site-b", net="10.42", uplink="{type: direct, address: 100.64.0.10}"))
    [found] = ws.diagnostics("a.yaml", "b.yaml")
    assert found.startswith("b.yaml:")
    assert "100.64.0.10 is also the local WAN address of node 'site-a' (a.yaml)" in found


def test_the_shipped_blueprints_pass_fleet_validation(repo_root: Path) -> None:
    from nodekit.blueprint import validate

    assert validate([repo_root / "blueprints"]).diagnostics == ()


@pytest.mark.parametrize(
    ("peer", "named"),
    [("hub-eu", True), ("hub.eu", False), ("10.0.0.1", False), ("Hub", False), ("", False)],
)
def test_what_counts_as_a_node_name(peer: str, named: bool) -> None:
    assert is_node_name(peer) is named
