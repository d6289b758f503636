"""Rules of the uplink: what a hub's broker and a site's bridge need of the network is
an error naming the flow (or gateway) to add, never added silently."""

from __future__ import annotations

from blueprint_cases import VALID, Workspace, at

BROKER_SETTINGS = "    settings: {users: [edge]}\n"
ACCEPT = "      accept_bridges: true"
BRIDGE = "      bridge_topics: [nodekit/#]"


def _broker(extra: str, text: str = VALID) -> str:
    """``text`` whose broker (on hist-01, zone it) has one more setting."""
    assert BROKER_SETTINGS in text
    return text.replace(BROKER_SETTINGS, f"    settings:\n      users: [edge]\n{extra}\n")


def _uplink(text: str, body: str) -> str:
    return text.replace("  flows:\n", f"  uplink:\n{body}  flows:\n", 1)


def _flow(text: str, source: str, target: str, ports: str = "[8883/tcp]") -> str:
    return text.replace(
        "  flows:\n",
        f"  flows:\n    - from: {source}\n      to: {target}\n      ports: {ports}\n",
        1,
    )


DIRECT = "    type: direct\n"
VPN = "    type: vpn\n    peer: eu-west-hub\n"

HUB = _uplink(_broker(ACCEPT), DIRECT)
SITE = _uplink(_broker(BRIDGE), VPN)


def _errors(found: list[str], key: str) -> list[str]:
    return [line for line in found if ": error: " in line and f" {key}: " in line]


# --- accept_bridges ------------------------------------------------------------------


def test_accept_bridges_without_uplink_is_an_error_at_the_setting(ws: Workspace) -> None:
    text = _broker(ACCEPT)
    assert ws.check(text) == [
        f"node.yaml:{at(text, ACCEPT.strip(), value=True)}: error: "
        "software[broker].settings.accept_bridges: sites bridge to this broker through the "
        "uplink, but the network has none: set network.uplink (type direct) so its gateway "
        "meets theirs"
    ]


def test_accept_bridges_with_uplink_of_type_none_is_the_same_error(ws: Workspace) -> None:
    text = _uplink(_broker(ACCEPT), "    type: none\n")
    found = _errors(ws.check(text), "software[broker].settings.accept_bridges")
    assert len(found) == 1
    assert "but the network has none: set network.uplink (type direct)" in found[0]


def test_accept_bridges_without_a_flow_from_the_uplink_names_the_flow(ws: Workspace) -> None:
    assert ws.check(HUB) == [
        f"node.yaml:{at(HUB, ACCEPT.strip(), value=True)}: error: "
        "software[broker].settings.accept_bridges: sites reach this broker on 8883/tcp "
        "through the uplink, but no flow lets them: add to network.flows {from: uplink, "
        "to: it, ports: [8883/tcp], purpose: site bridges}"
    ]


def test_accept_bridges_with_the_flow_from_the_uplink_is_valid(ws: Workspace) -> None:
    assert ws.check(_flow(HUB, "uplink", "it")) == []


def test_a_port_range_covering_8883_is_enough(ws: Workspace) -> None:
    assert ws.check(_flow(HUB, "uplink", "it", "[8000-9000/tcp]")) == []


def test_a_flow_that_does_not_carry_the_bridges_does_not_count(ws: Workspace) -> None:
    for text in (
        _flow(HUB, "uplink", "ot"),  # another zone than the broker's
        _flow(HUB, "uplink", "it", "[8883/udp]"),  # udp
        _flow(HUB, "uplink", "it", "[1883/tcp]"),  # another port
        _flow(HUB, "it", "uplink"),  # the wrong way
    ):
        found = _errors(ws.check(text), "software[broker].settings.accept_bridges")
        assert len(found) == 1, text
        assert "add to network.flows {from: uplink, to: it, ports: [8883/tcp]" in found[0]


# --- bridge_topics -------------------------------------------------------------------


def test_bridge_without_a_flow_to_the_uplink_names_the_flow(ws: Workspace) -> None:
    assert ws.check(SITE) == [
        f"node.yaml:{at(SITE, BRIDGE.strip(), value=True)}: error: "
        "software[broker].settings.bridge_topics: the bridge leaves through the uplink on "
        "8883/tcp (TLS), but no flow lets it out: add to network.flows {from: it, "
        "to: uplink, ports: [8883/tcp], purpose: MQTT bridge to the hub}"
    ]


def test_bridge_with_the_flow_to_the_uplink_is_valid(ws: Workspace) -> None:
    assert ws.check(_flow(SITE, "it", "uplink")) == []


def test_bridge_with_a_flow_that_does_not_carry_it_is_still_an_error(ws: Workspace) -> None:
    for text in (
        _flow(SITE, "ot", "uplink"),  # not the broker's zone
        _flow(SITE, "it", "uplink", "[1883/tcp]"),
        _flow(SITE, "uplink", "it"),  # the wrong way
    ):
        found = _errors(ws.check(text), "software[broker].settings.bridge_topics")
        assert len(found) == 1, text
        assert "add to network.flows {from: it, to: uplink, ports: [8883/tcp]" in found[0]


def test_bridge_from_a_broker_on_the_gateway_needs_no_flow(ws: Workspace) -> None:
    text = SITE.replace(
        "  - name: broker\n    package: mosquitto\n    host: hist-01\n",
        "  - name: broker\n    package: mosquitto\n    host: gw-01\n",
    )
    assert "    host: gw-01\n    settings:\n      users: [edge]\n" in text
    found = ws.check(text)
    assert not _errors(found, "software[broker].settings.bridge_topics"), found


def test_bridge_to_a_peer_inside_the_node_needs_no_flow(ws: Workspace) -> None:
    # A relay on site, in the broker's own zone: reached without crossing the gateway.
    text = _uplink(_broker(BRIDGE), "    type: vpn\n    peer: 10.41.2.50\n")
    assert ws.check(text) == []


def test_bridge_to_a_peer_outside_the_node_needs_the_flow(ws: Workspace) -> None:
    text = _uplink(_broker(BRIDGE), "    type: vpn\n    peer: 10.99.0.50\n")
    assert len(_errors(ws.check(text), "software[broker].settings.bridge_topics")) == 1


def test_bridge_through_the_site_firewall_without_gateways_needs_no_flow(ws: Workspace) -> None:
    # No gateway (ssh target: the site's own firewall routes): nodekit has nothing to open.
    text = SITE.replace("  target: local\n", "  target: ssh\n").replace(
        "    role: gateway\n", "    role: controller\n"
    )
    found = ws.check(text)
    assert not _errors(found, "software[broker].settings.bridge_topics"), found


# --- the local target's way out ------------------------------------------------------


def _no_gateway(text: str) -> str:
    assert "    role: gateway\n" in text
    return text.replace("    role: gateway\n", "    role: controller\n")


def test_local_target_with_an_uplink_needs_a_gateway(ws: Workspace) -> None:
    text = _no_gateway(_uplink(VALID, DIRECT))
    found = _errors(ws.check(text), "network.uplink")
    assert found == [
        f"node.yaml:{at(text, 'type: direct')}: error: network.uplink: on the local target a "
        "node meets the WAN through its gateway, and this node has none: add a compute host "
        "with role gateway, or remove the uplink"
    ]


def test_local_target_with_a_gateway_and_an_uplink_is_valid(ws: Workspace) -> None:
    assert ws.check(_uplink(VALID, DIRECT)) == []


def test_local_target_without_gateway_is_fine_with_no_active_uplink(ws: Workspace) -> None:
    for body in ("    type: none\n", ""):
        text = _no_gateway(_uplink(VALID, body) if body else VALID)
        assert not _errors(ws.check(text), "network.uplink"), body


def test_local_target_without_gateway_is_fine_with_a_peer_inside_its_zones(
    ws: Workspace,
) -> None:
    text = _no_gateway(_uplink(VALID, "    type: vpn\n    peer: 10.41.1.200\n"))
    assert not _errors(ws.check(text), "network.uplink")


def test_ssh_target_without_gateway_needs_none(ws: Workspace) -> None:
    text = _no_gateway(_uplink(VALID, DIRECT)).replace("  target: local\n", "  target: ssh\n")
    assert not _errors(ws.check(text), "network.uplink")


# --- flows through the uplink --------------------------------------------------------


def test_flows_from_and_to_the_uplink_are_accepted(ws: Workspace) -> None:
    text = _flow(_flow(_uplink(VALID, DIRECT), "uplink", "it"), "it", "uplink")
    assert ws.check(text) == []


def test_a_flow_from_the_uplink_to_the_uplink_is_an_error(ws: Workspace) -> None:
    text = _flow(_uplink(VALID, DIRECT), "uplink", "uplink")
    assert ws.check(text) == [
        f"node.yaml:{at(text, 'from: uplink')}: error: network.flows[0]: a flow goes from a "
        "zone to the uplink or back, not both"
    ]


def test_a_hub_broker_on_the_gateway_is_refused(ws: Workspace) -> None:
    # The gateway passes the bridge port on to a host of the zone; on the gateway
    # itself nothing would take it (found by review: it used to validate).
    text = _flow(HUB, "uplink", "it").replace(
        "  - name: broker\n    package: mosquitto\n    host: hist-01\n",
        "  - name: broker\n    package: mosquitto\n    host: gw-01\n",
    )
    assert "    host: gw-01\n    settings:\n      users: [edge]\n" in text
    (error,) = _errors(ws.check(text), "software[broker].settings.accept_bridges")
    assert "place this broker on a host that is not the gateway" in error
