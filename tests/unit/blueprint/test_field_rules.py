"""Rules on single fields and sections (names, versions, keys, time zones, CIDRs,
checks, cloud, ssh, os, disk): one broken thing, one diagnostic at the exact place.
The rules across sections (names, addresses, ports, flows) are in test_rules.py."""

from __future__ import annotations

import pytest
from blueprint_cases import VALID, Workspace, at, broken


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
