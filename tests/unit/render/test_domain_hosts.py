"""network.domain takes effect: each host's FQDN, every host of the node in its
/etc/hosts (role base), and verify's check of both."""

from __future__ import annotations

import copy

from nodekit.blueprint import load
from nodekit.render import PROJECT_ROOT, ansible, checks, render_files
from nodekit.render.plan import plan

LYON = PROJECT_ROOT / "blueprints/sites/lyon-additive-01.yaml"  # local target
BREMEN = PROJECT_ROOT / "blueprints/sites/bremen-additive-01-ssh.yaml"  # ssh target


def test_each_host_gets_its_fqdn_and_every_host_as_it_reaches_it() -> None:
    node = plan(load(LYON).data)  # gw-01 in it (10.41.2.1) and ot (10.41.1.1)
    edge = ansible.host_vars(node, node.host("edge-01"))  # in ot only
    assert edge["nodekit_fqdn"] == "edge-01.lyon.example.internal"
    assert edge["nodekit_hosts"] == [
        "10.41.1.1 gw-01.lyon.example.internal gw-01",  # the gateway's address in ot
        "10.41.1.10 edge-01.lyon.example.internal edge-01",
        "10.41.2.10 hist-01.lyon.example.internal hist-01",  # another zone: routed
    ]
    gateway = ansible.host_vars(node, node.host("gw-01"))
    assert gateway["nodekit_hosts"][0] == "10.41.2.1 gw-01.lyon.example.internal gw-01"
    hist = ansible.host_vars(node, node.host("hist-01"))
    assert hist["nodekit_hosts"][0] == "10.41.2.1 gw-01.lyon.example.internal gw-01"


def test_the_ssh_target_gets_the_same() -> None:
    node = plan(load(BREMEN).data)
    edge = ansible.host_vars(node, node.host("edge-01"))
    assert edge["nodekit_fqdn"] == "edge-01.bremen.example.internal"
    assert "192.168.71.1 gw-01.bremen.example.internal gw-01" in edge["nodekit_hosts"]


def test_without_a_domain_nothing_is_rendered_for_it() -> None:
    data = copy.deepcopy(load(LYON).data)
    del data["network"]["domain"]
    node = plan(data)
    for host in node.hosts:
        names = ansible.host_vars(node, host)
        assert "nodekit_fqdn" not in names and "nodekit_hosts" not in names
    assert node.fqdn("gw-01") == "gw-01"
    assert checks.fqdns(node) == []


def test_verify_checks_each_hosts_fqdn_and_the_next_hosts_address() -> None:
    node = plan(load(LYON).data)
    assert checks.fqdns(node) == [
        ("edge-01", "edge-01.lyon.example.internal", "gw-01", "gw-01.lyon.example.internal",
         "10.41.1.1"),
        ("gw-01", "gw-01.lyon.example.internal", "hist-01", "hist-01.lyon.example.internal",
         "10.41.2.10"),
        ("hist-01", "hist-01.lyon.example.internal", "edge-01", "edge-01.lyon.example.internal",
         "10.41.1.10"),
    ]  # fmt: skip
    module = render_files(load(LYON))["tests/test_lyon_additive_01.py"].decode()
    assert "def test_fqdn(" in module and 'check_output("hostname -f")' in module
    assert "getent ahosts" in module


def test_the_zones_vlans_are_in_the_plan() -> None:
    node = plan(load(BREMEN).data)
    assert [(z.name, z.vlan) for z in node.zones] == [("ot", 71), ("it", 72)]
