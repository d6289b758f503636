"""Each semantic rule: one broken thing, one diagnostic at the exact place."""

from __future__ import annotations

import pytest
from blueprint_cases import VALID, Workspace, at, broken


def test_the_valid_node_has_no_diagnostic(ws: Workspace) -> None:
    assert ws.check(VALID) == []


def test_duplicate_names_in_a_list(ws: Workspace) -> None:
    text = VALID + "  - name: broker-up\n    host: hist-01\n    port: 1883/tcp\n"
    found = ws.check(text)
    first = at(text, "broker-up")
    second = at(text, "broker-up", after="service: mosquitto")
    assert found == [
        f"node.yaml:{second}: error: checks[broker-up].name: duplicate name 'broker-up' "
        f"(first defined at node.yaml:{first})"
    ]


def test_overlapping_zone_cidrs(ws: Workspace) -> None:
    text, found = broken(ws, "10.41.2.0/24", "10.41.0.0/16")
    assert found[0] == (
        f"node.yaml:{at(text, '10.41.0.0/16')}: error: network.zones[it].cidr: "
        "10.41.0.0/16 overlaps zone 'ot' (10.41.1.0/24)"
    )


def test_address_outside_its_zone(ws: Workspace) -> None:
    text, found = broken(ws, "address: 10.41.1.10", "address: 10.41.3.10")
    assert found == [
        f"node.yaml:{at(text, '10.41.3.10')}: error: compute[edge-01].address: "
        "10.41.3.10 is outside zone 'ot' (10.41.1.0/24)"
    ]


@pytest.mark.parametrize(
    ("address", "what"), [("10.41.1.0", "network"), ("10.41.1.255", "broadcast")]
)
def test_network_and_broadcast_addresses_are_refused(
    ws: Workspace, address: str, what: str
) -> None:
    text, found = broken(ws, "address: 10.41.1.10", f"address: {address}")
    assert found == [
        f"node.yaml:{at(text, address, after='name: edge-01')}: error: compute[edge-01].address: "
        f"{address} is the {what} address of zone 'ot'"
    ]


def test_an_address_used_twice_across_compute_interfaces_and_equipment(ws: Workspace) -> None:
    text, found = broken(ws, "address: 10.41.1.101", "address: 10.41.1.1")
    where = at(text, "10.41.1.1", after="kind: printer")
    assert found == [
        f"node.yaml:{where}: error: equipment[printer-01].address: 10.41.1.1 is already "
        "used by compute[gw-01].interfaces[0].address"
    ]


def test_unknown_zone_is_named_with_a_hint(ws: Workspace) -> None:
    text, found = broken(
        ws, "zone: ot\n    address: 10.41.1.10", "zone: oot\n    address: 10.41.1.10"
    )
    assert found == [
        f"node.yaml:{at(text, 'oot')}: error: compute[edge-01].zone: unknown zone 'oot' "
        "(did you mean 'ot'?); known: it, ot"
    ]


def test_unknown_host(ws: Workspace) -> None:
    text, found = broken(ws, "host: hist-01", "host: hist-02")
    assert found == [
        f"node.yaml:{at(text, 'hist-02')}: error: software[broker].host: unknown host "
        "'hist-02' (did you mean 'hist-01'?); known: edge-01, gw-01, hist-01"
    ]


def test_unknown_software_in_depends_on(ws: Workspace) -> None:
    text, found = broken(ws, "depends_on: [broker]", "depends_on: [mqtt]")
    assert found == [
        f"node.yaml:{at(text, 'mqtt')}: error: software[db].depends_on[0]: unknown software "
        "'mqtt'; known: broker, db"
    ]


def test_two_services_on_one_host_with_the_same_port(ws: Workspace) -> None:
    text, found = broken(ws, "    depends_on: [broker]\n", "    ports: [1883/tcp]\n")
    assert found == [
        f"node.yaml:{at(text, '1883/tcp', after='name: db')}: error: software[db].ports[0]: "
        "port 1883/tcp on host 'hist-01' is already used by software[broker]"
    ]


def test_services_listen_on_single_tcp_ports(ws: Workspace) -> None:
    text, found = broken(ws, "    depends_on: [broker]\n", "    ports: [1883/udp]\n")
    assert found == [
        f"node.yaml:{at(text, '1883/udp')}: error: software[db].ports[0]: postgresql listens "
        "on single TCP ports, not '1883/udp': write e.g. 5432/tcp"
    ]


def test_a_service_without_a_port_is_refused(ws: Workspace) -> None:
    text, found = broken(ws, "    depends_on: [broker]\n", "    ports: []\n")
    assert found == [
        f"node.yaml:{at(text, 'ports: []', value=True)}: error: software[db].ports: "
        "postgresql must listen on a port: list one, or leave ports out for 5432/tcp"
    ]


def test_one_port_packages_take_one_port(ws: Workspace) -> None:
    text, found = broken(ws, "    depends_on: [broker]\n", "    ports: [5432/tcp, 5433/tcp]\n")
    assert found == [
        f"node.yaml:{at(text, 'ports: [', after='name: db', value=True)}: error: "
        "software[db].ports: postgresql listens on one port, 2 are listed: keep one "
        "(default 5432/tcp)"
    ]


def test_a_broker_may_listen_on_several_ports(ws: Workspace) -> None:
    _, found = broken(
        ws, "    package: mosquitto\n", "    package: mosquitto\n    ports: [1883/tcp, 1884/tcp]\n"
    )
    assert found == []


def test_one_service_of_each_package_per_host(ws: Workspace) -> None:
    text, found = broken(
        ws,
        "    depends_on: [broker]\n",
        "    package: mosquitto\n    ports: [1884/tcp]\n    settings: {users: [line]}\n",
    )
    text = text.replace("    package: postgresql\n", "")
    found = ws.check(text)
    assert found == [
        f"node.yaml:{at(text, 'mosquitto', after='name: db')}: error: software[db].package: "
        "host 'hist-01' already runs mosquitto as software[broker]: a host runs one service "
        "of each package (one role, one configuration)"
    ]


def test_bridging_needs_an_uplink_with_a_peer(ws: Workspace) -> None:
    text, found = broken(
        ws, "settings: {users: [edge]}", "settings: {users: [edge], bridge_topics: [a/#]}"
    )
    assert found == [
        f"node.yaml:{at(text, 'bridge_topics: [', value=True)}: error: "
        "software[broker].settings.bridge_topics: MQTT bridging goes to the uplink's peer, "
        "but network.uplink is not set: set "
        "network.uplink (type vpn or direct, with the peer: the hub's node name or address) "
        "or remove "
        "bridge_topics"
    ]


def test_a_default_port_clashes_too(ws: Workspace) -> None:
    text, found = broken(ws, "package: postgresql", "package: mosquitto")
    assert (
        f"node.yaml:{at(text, 'mosquitto', after='name: db')}: error: software[db].package: "
        "default port 1883/tcp on host 'hist-01' is already used by software[broker]"
    ) in found


def test_dependency_cycle(ws: Workspace) -> None:
    text, found = broken(
        ws, "    package: mosquitto\n", "    package: mosquitto\n    depends_on: [db]\n"
    )
    assert found == [
        f"node.yaml:{at(text, '[db]')}: error: software[broker].depends_on: "
        "dependency cycle: broker -> db -> broker"
    ]


def test_flow_naming_an_unknown_zone(ws: Workspace) -> None:
    text, found = broken(ws, "to: it", "to: dmz")
    assert found == [
        f"node.yaml:{at(text, 'dmz')}: error: network.flows[0].to: unknown zone 'dmz'; "
        "known: it, ot"
    ]


@pytest.mark.parametrize(
    ("port", "message"),
    [
        ("1883", "'1883' is not PORT/PROTO (e.g. '1883/tcp' or '8000-8010/udp')"),
        ("1883/sctp", "'1883/sctp' is not PORT/PROTO (e.g. '1883/tcp' or '8000-8010/udp')"),
        ("0/tcp", "port 0 in '0/tcp' is outside 1..65535"),
        ("2000-1000/tcp", "range '2000-1000/tcp' goes down: write LOW-HIGH"),
    ],
)
def test_flow_with_a_malformed_port(ws: Workspace, port: str, message: str) -> None:
    text, found = broken(ws, "ports: [1883/tcp]", f"ports: ['{port}']")
    assert found == [
        f"node.yaml:{at(text, repr(port))}: error: network.flows[0].ports[0]: {message}"
    ]


def test_a_port_range_is_fine_in_a_flow(ws: Workspace) -> None:
    _, found = broken(ws, "ports: [1883/tcp]", "ports: [1883/tcp, 8000-8010/udp]")
    assert found == []


def test_duplicate_vlan(ws: Workspace) -> None:
    text, found = broken(ws, "vlan: 42", "vlan: 41")
    where = at(text, "vlan: 41", after="name: it", value=True)
    assert found == [
        f"node.yaml:{where}: error: network.zones[it].vlan: vlan 41 is already used by zone 'ot'"
    ]


def test_unknown_package_lists_the_known_ones(ws: Workspace) -> None:
    text, found = broken(ws, "package: mosquitto", "package: mosquito")
    assert found == [
        f"node.yaml:{at(text, 'mosquito')}: error: software[broker].package: unknown package "
        "'mosquito' (did you mean 'mosquitto'?); known: edge-collector, mosquitto, "
        "node-exporter, postgresql, prometheus, telemetry-ingest"
    ]


def test_package_settings_are_checked_where_they_are_written(ws: Workspace) -> None:
    text, found = broken(ws, "{users: [edge]}", "{users: [edge], allow_anonymus: true}")
    assert found == [
        f"node.yaml:{at(text, 'allow_anonymus')}: error: software[broker].settings."
        "allow_anonymus: unknown key (did you mean 'allow_anonymous'?)"
    ]


def test_package_settings_naming_an_unknown_zone(ws: Workspace) -> None:
    text, found = broken(
        ws,
        "    package: postgresql\n",
        "    package: postgresql\n    settings: {allowed_zones: [it, office]}\n",
    )
    assert found == [
        f"node.yaml:{at(text, 'office')}: error: software[db].settings.allowed_zones[1]: "
        "unknown zone 'office'; known: it, ot"
    ]


def test_a_gateway_in_one_zone_only_is_a_warning(ws: Workspace) -> None:
    text, found = broken(ws, "    interfaces:\n      - zone: ot\n        address: 10.41.1.1\n", "")
    assert found == [
        f"node.yaml:{at(text, 'from: ot')}: warning: network.flows[0]: no gateway has "
        "addresses in both 'ot' and 'it' to carry this flow (the site's own firewall may)",
        f"node.yaml:{at(text, 'role: gateway', value=True)}: warning: compute[gw-01].role: "
        "a gateway routes between zones, but 'gw-01' has an address in 'it' only: add "
        "interfaces in the zones it routes",
    ]


def test_a_flow_no_gateway_carries_is_a_warning_not_an_error(ws: Workspace) -> None:
    text = VALID.replace("    role: gateway\n", "    role: controller\n")
    ws.write("node.yaml", text)
    from nodekit.blueprint import validate

    result = validate(["node.yaml"])
    assert result.ok
    assert [d.message for d in result.diagnostics] == [
        "network.flows[0]: no gateway has addresses in both 'ot' and 'it' to carry this "
        "flow (the site's own firewall may)"
    ]
    assert [str(w) for w in result.blueprints[0].warnings] == [str(d) for d in result.diagnostics]


@pytest.mark.parametrize("kind", ["printer", "cnc", "camera"])
def test_equipment_that_needs_a_host(ws: Workspace, kind: str) -> None:
    text, found = broken(ws, "kind: printer\n    host: edge-01\n", f"kind: {kind}\n")
    assert found == [
        f"node.yaml:{at(text, 'name: printer-01')}: error: equipment[printer-01].host: "
        f"required for a {kind}: the compute host that drives it"
    ]


def test_a_sensor_needs_no_host(ws: Workspace) -> None:
    assert broken(ws, "kind: printer\n    host: edge-01\n", "kind: sensor\n")[1] == []
