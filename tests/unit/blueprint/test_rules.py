"""Each semantic rule: one broken thing, one diagnostic at the exact place."""

from __future__ import annotations

import pytest
from blueprint_cases import VALID, Workspace, at


def broken(ws: Workspace, old: str, new: str, *, after: str = "") -> tuple[str, list[str]]:
    """VALID with ``old`` (first occurrence at or after the line ``after``) replaced."""
    start = VALID.index(after) if after else 0
    assert old in VALID[start:], old
    text = VALID[:start] + VALID[start:].replace(old, new, 1)
    return text, ws.check(text)


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


def test_ssh_section_outside_target_ssh_is_a_warning(ws: Workspace) -> None:
    text, found = broken(
        ws, "    address: 10.41.1.10\n", "    address: 10.41.1.10\n    ssh: {user: ops}\n"
    )
    assert found == [
        f"node.yaml:{at(text, '{user')}: warning: compute[edge-01].ssh: only used with "
        "site.target ssh (target is local)"
    ]
    assert broken(ws, "target: local", "target: ssh", after="site:")[1] == []


@pytest.mark.parametrize("name", ["Test", "1node", "node-", "a" * 64, "my_node"])
def test_node_name_must_be_a_dns_label(ws: Workspace, name: str) -> None:
    text, found = broken(ws, "name: test-node", f"name: {name}")
    assert found == [
        f"node.yaml:{at(text, name, after='metadata:')}: error: metadata.name: {name!r} is "
        "not a valid name: lowercase letters, digits and '-', starting with a letter, ending "
        "with a letter or digit, at most 63 characters"
    ]


def test_api_version_is_exact(ws: Workspace) -> None:
    text, found = broken(ws, "apiVersion: nodekit/v1", "apiVersion: nodekit/v2")
    assert found == [
        f"node.yaml:{at(text, 'nodekit/v2')}: error: apiVersion: must be nodekit/v1, "
        "got 'nodekit/v2'"
    ]


def test_unknown_key_with_a_hint(ws: Workspace) -> None:
    text, found = broken(ws, "address: 10.41.2.10", "adress: 10.41.2.10")
    assert found == [
        f"node.yaml:{at(text, 'name: hist-01')}: error: compute[hist-01].address: required "
        "key is missing",
        f"node.yaml:{at(text, 'adress')}: error: compute[hist-01].adress: unknown key "
        "(did you mean 'address'?)",
    ]


def test_timezone_is_checked_against_the_iana_database(ws: Workspace) -> None:
    text, found = broken(ws, "Europe/Paris", "Europe/Pariss")
    assert found == [
        f"node.yaml:{at(text, 'Europe/Pariss')}: error: site.timezone: 'Europe/Pariss' is not "
        "an IANA time zone (did you mean 'Europe/Paris'?)"
    ]


def test_cidr_with_host_bits_suggests_the_network(ws: Workspace) -> None:
    text, found = broken(ws, "10.41.1.0/24", "10.41.1.7/24")
    assert f"node.yaml:{at(text, '10.41.1.7/24')}: error: network.zones[ot].cidr: " in found[0]
    assert found[0].endswith("'10.41.1.7/24' has host bits set (did you mean '10.41.1.0/24'?)")


def test_a_check_needs_exactly_one_kind(ws: Workspace) -> None:
    text, found = broken(
        ws, "    service: mosquitto\n", "    service: mosquitto\n    port: 1883/tcp\n"
    )
    assert found == [
        f"node.yaml:{at(text, 'name: broker-up')}: error: checks[broker-up]: a check needs "
        "exactly one of service, port, package, file, command (got: service, port)"
    ]


def test_cloud_needs_a_dns_zone_or_a_domain_and_a_vpc(ws: Workspace) -> None:
    text = VALID + "cloud:\n  provider: aws\n  region: us-east-1\n"
    found = ws.check(text)
    assert found == [
        f"node.yaml:{at(text, 'provider: aws')}: error: cloud.dns.vpc_id: required: the "
        "hosts' records go into a private hosted zone attached to this VPC, so site "
        "addresses are never published",
        f"node.yaml:{at(text, 'provider: aws')}: error: cloud.dns.zone: required when "
        "network.domain is not set (the zone of the hosts' DNS records)",
    ]
    dns = "  dns: {zone: site.example.internal, vpc_id: vpc-0123456789abcdef0}\n"
    assert ws.check(text + dns) == []


def test_a_value_of_the_wrong_type_says_what_was_expected(ws: Workspace) -> None:
    text, found = broken(ws, "vlan: 41", "vlan: forty-one")
    assert found == [
        f"node.yaml:{at(text, 'forty-one')}: error: network.zones[ot].vlan: expected an "
        "integer, got 'forty-one'"
    ]


def test_every_problem_of_a_file_in_one_run(ws: Workspace) -> None:
    text = (
        VALID.replace("Europe/Paris", "Mars/Olympus")
        .replace("role: edge", "role: edje")
        .replace("host: hist-01", "host: nowhere", 1)
        .replace("vlan: 42", "vlan: 41")
        .replace("address: 10.41.1.101", "address: 10.99.1.101")
    )
    found = ws.check(text)
    paths = [line.split(": ")[2] for line in found]
    assert paths == [
        "site.timezone",
        "network.zones[it].vlan",
        "compute[edge-01].role",
        "equipment[printer-01].address",
        "software[broker].host",
    ]


def test_root_login_is_refused_with_the_reason(ws: Workspace) -> None:
    text = VALID.replace("target: local", "target: ssh").replace(
        "    address: 10.41.1.10\n", "    address: 10.41.1.10\n    ssh: {user: root}\n"
    )
    found = ws.check(text)
    assert found == [
        f"node.yaml:{at(text, 'root', after='name: edge-01')}: error: compute[edge-01].ssh.user: "
        "nodekit hardens sshd with PermitRootLogin no, so root could not log in after the "
        "first deploy: log in as a user with passwordless sudo (default nodekit)"
    ]


def test_management_sources_are_zones_or_networks(ws: Workspace) -> None:
    text = VALID.replace("target: local", "target: ssh").replace(
        "  target: ssh\n", "  target: ssh\n  ssh: {allow_from: [it, 192.168.9.0/24, oot]}\n"
    )
    found = ws.check(text)
    assert found == [
        f"node.yaml:{at(text, 'oot]')}: error: site.ssh.allow_from[2]: 'oot' is neither a zone "
        "(did you mean 'ot'?) nor an IPv4 network (e.g. 10.0.0.0/24); zones: it, ot"
    ]


def test_site_ssh_defaults_merge_with_the_hosts_own(ws: Workspace) -> None:
    from nodekit.blueprint import load
    from nodekit.render.plan import plan

    text = (
        VALID.replace("target: local", "target: ssh")
        .replace(
            "  target: ssh\n", "  target: ssh\n  ssh: {user: ops, port: 2222, allow_from: [it]}\n"
        )
        .replace("    address: 10.41.1.10\n", "    address: 10.41.1.10\n    ssh: {port: 22}\n")
    )
    node = plan(load(ws.write("node.yaml", text)).data)
    edge, hist = node.host("edge-01"), node.host("hist-01")
    assert (edge.login_user, edge.ssh_port, hist.ssh_port) == ("ops", 22, 2222)
    assert hist.ssh_allow_from == ("10.41.2.0/24",)  # the zone, as its network


def test_an_os_nodekit_cannot_honour_is_refused(ws: Workspace) -> None:
    text = VALID.replace("  - name: edge-01\n", "  - name: edge-01\n    os: ubuntu-24.04\n", 1)
    assert "    os: ubuntu-24.04\n" in text
    (error,) = [line for line in ws.check(text) if " compute[edge-01].os: " in line]
    assert "the local target makes debian-12 containers only: set os: debian-12" in error
    ssh = text.replace("  target: local\n", "  target: ssh\n")
    found = ws.check(ssh)
    assert any("built for debian-12 only" in line for line in found), found


def test_disk_gb_is_refused_on_the_local_target(ws: Workspace) -> None:
    text = VALID.replace(
        "  - name: edge-01\n", "  - name: edge-01\n    resources: {disk_gb: 20}\n", 1
    )
    found = [line for line in ws.check(text) if "resources.disk_gb" in line]
    assert len(found) == 1 and "the local target cannot size a container's disk" in found[0]
    assert not [x for x in ws.check(text.replace("target: local", "target: ssh")) if "disk_gb" in x]
