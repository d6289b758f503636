"""Composition: extends order, merge by key and by name, remove, cycles, provenance."""

from __future__ import annotations

import pytest
from blueprint_cases import VALID, Workspace, at

from nodekit.blueprint import load
from nodekit.errors import BlueprintError

BASE = """\
apiVersion: nodekit/v1
kind: NodeBase
metadata:
  labels: {line: additive}
site:
  region: eu-west
  timezone: Europe/Paris
  target: local
network:
  zones:
    - {name: ot, cidr: 10.41.1.0/24, purpose: ot}
    - {name: it, cidr: 10.41.2.0/24}
  flows:
    - {from: ot, to: it, ports: [1883/tcp]}
compute:
  - {name: gw-01, role: gateway, zone: it, address: 10.41.2.1}
  - {name: edge-01, role: edge, zone: ot, address: 10.41.1.10}
software:
  - {name: broker, package: mosquitto, host: gw-01, settings: {users: [edge]}}
  - {name: exporter, package: node-exporter, host: edge-01}
"""
OVERLAY = """\
apiVersion: nodekit/v1
kind: NodeBase
metadata:
  labels: {region: eu-west}
site:
  timezone: Europe/Lisbon
software:
  - name: broker
    settings: {bridge_topics: [telemetry/#]}
"""
NODE = """\
apiVersion: nodekit/v1
kind: Node
metadata: {name: site-01}
extends: [base.yaml, overlay.yaml]
site:
  timezone: Europe/Madrid
network:
  uplink: {type: vpn, peer: hub.example.internal}
  flows:
    - {from: it, to: ot, ports: [9100/tcp]}
compute:
  - name: gw-01
    interfaces: [{zone: ot, address: 10.41.1.1}]
  - {name: hist-01, role: controller, zone: it, address: 10.41.2.10}
"""


@pytest.fixture
def site(ws: Workspace) -> Workspace:
    ws.write("base.yaml", BASE)
    ws.write("overlay.yaml", OVERLAY)
    ws.write("node.yaml", NODE)
    return ws


def test_bases_apply_in_order_and_the_node_file_last(site: Workspace) -> None:
    blueprint = load("node.yaml")
    assert [p.name for p in blueprint.sources] == ["base.yaml", "overlay.yaml", "node.yaml"]
    assert blueprint.data["site"]["timezone"] == "Europe/Madrid"
    assert blueprint.origin("site.timezone") == _origin("node.yaml", NODE, "Europe/Madrid")
    assert blueprint.data["site"]["region"] == "eu-west"
    assert blueprint.origin("site.region") == _origin("base.yaml", BASE, "eu-west")


def test_mappings_merge_key_by_key(site: Workspace) -> None:
    labels = load("node.yaml").data["metadata"]["labels"]
    assert labels == {"line": "additive", "region": "eu-west"}


def test_named_items_merge_by_name_and_new_names_are_appended(site: Workspace) -> None:
    blueprint = load("node.yaml")
    hosts = {h["name"]: h for h in blueprint.data["compute"]}
    assert list(hosts) == ["gw-01", "edge-01", "hist-01"]
    assert hosts["gw-01"]["role"] == "gateway"  # inherited
    assert hosts["gw-01"]["interfaces"] == [{"zone": "ot", "address": "10.41.1.1"}]
    broker = blueprint.data["software"][0]
    assert broker["settings"]["users"] == ["edge"]
    assert broker["settings"]["bridge_topics"] == ["telemetry/#"]
    assert blueprint.origin("software[broker].settings.users") == _origin(
        "base.yaml", BASE, "[edge]"
    )
    assert blueprint.origin("software[broker].settings.bridge_topics") == _origin(
        "overlay.yaml", OVERLAY, "[telemetry/#]"
    )


def test_other_lists_are_replaced(site: Workspace) -> None:
    flows = load("node.yaml").data["network"]["flows"]
    assert flows == [{"from": "it", "to": "ot", "ports": ["9100/tcp"], "purpose": None}]


def test_remove_deletes_the_inherited_item(site: Workspace) -> None:
    site.write("node.yaml", NODE + "software:\n  - {name: exporter, remove: true}\n")
    names = [s["name"] for s in load("node.yaml").data["software"]]
    assert names == ["broker"]


def test_remove_in_an_overlay_applies_to_the_base_before_it(site: Workspace) -> None:
    site.write("overlay.yaml", OVERLAY + "  - name: exporter\n    remove: true\n")
    names = [s["name"] for s in load("node.yaml").data["software"]]
    assert names == ["broker"]


def test_remove_with_nothing_to_remove_is_a_warning(site: Workspace) -> None:
    text = NODE + "equipment:\n  - {name: ghost, remove: true}\n"
    site.write("node.yaml", text)
    blueprint = load("node.yaml")
    assert [str(w) for w in blueprint.warnings] == [
        f"node.yaml:{at(text, 'true', after='ghost')}: warning: equipment[ghost]: nothing to "
        "remove: no inherited equipment named 'ghost'"
    ]


def test_an_item_re_added_after_removal_starts_afresh(site: Workspace) -> None:
    site.write("overlay.yaml", OVERLAY + "  - {name: exporter, remove: true}\n")
    site.write(
        "node.yaml",
        NODE + "software:\n  - {name: exporter, package: node-exporter, host: hist-01}\n",
    )
    exporter = load("node.yaml").data["software"][1]
    assert (exporter["name"], exporter["host"]) == ("exporter", "hist-01")


def test_extends_cycle_names_the_chain(ws: Workspace) -> None:
    ws.write("a.yaml", "apiVersion: nodekit/v1\nkind: NodeBase\nextends: [b.yaml]\n")
    ws.write("b.yaml", "apiVersion: nodekit/v1\nkind: NodeBase\nextends: [a.yaml]\n")
    ws.write("node.yaml", VALID.replace("kind: Node\n", "kind: Node\nextends: [a.yaml]\n"))
    assert ws.diagnostics("node.yaml") == [
        "b.yaml:3:11: error: extends: extends cycle: node.yaml -> a.yaml -> b.yaml -> a.yaml"
    ]


def test_a_file_extending_itself(ws: Workspace) -> None:
    ws.write("node.yaml", VALID.replace("kind: Node\n", "kind: Node\nextends: [node.yaml]\n"))
    assert ws.diagnostics("node.yaml") == [
        "node.yaml:3:11: error: extends: extends cycle: node.yaml -> node.yaml"
    ]


def test_missing_base_names_the_chain(ws: Workspace) -> None:
    ws.write("bases/a.yaml", "apiVersion: nodekit/v1\nkind: NodeBase\nextends: [../gone.yaml]\n")
    ws.write("node.yaml", VALID.replace("kind: Node\n", "kind: Node\nextends: [bases/a.yaml]\n"))
    assert ws.diagnostics("node.yaml") == [
        "bases/a.yaml:3:11: error: extends: base file ../gone.yaml not found "
        "(node.yaml -> bases/a.yaml -> gone.yaml)"
    ]


def test_an_error_in_an_inherited_value_points_into_the_base(site: Workspace) -> None:
    site.write("base.yaml", BASE.replace("address: 10.41.1.10", "address: 10.41.9.10"))
    with pytest.raises(BlueprintError) as raised:
        load("node.yaml")
    assert [str(d) for d in raised.value.diagnostics] == [
        f"base.yaml:{at(BASE, '10.41.1.10')}: error: compute[edge-01].address: 10.41.9.10 "
        "is outside zone 'ot' (10.41.1.0/24)"
    ]


def test_a_file_reached_twice_is_applied_once(ws: Workspace) -> None:
    common = "apiVersion: nodekit/v1\nkind: NodeBase\nsite: {location: common}\n"
    ws.write("common.yaml", common)
    ws.write(
        "a.yaml",
        "apiVersion: nodekit/v1\nkind: NodeBase\nextends: [common.yaml]\n"
        "site: {location: from-a}\n",
    )
    ws.write("b.yaml", "apiVersion: nodekit/v1\nkind: NodeBase\nextends: [common.yaml]\n")
    ws.write("node.yaml", VALID.replace("kind: Node\n", "kind: Node\nextends: [a.yaml, b.yaml]\n"))
    blueprint = load("node.yaml")
    assert blueprint.data["site"]["location"] == "from-a"
    assert [p.name for p in blueprint.sources] == ["common.yaml", "a.yaml", "b.yaml", "node.yaml"]


def test_a_node_base_is_not_loaded_on_its_own(site: Workspace) -> None:
    assert site.diagnostics("base.yaml") == [
        "base.yaml:2:7: error: kind: a NodeBase is only used through extends: validate a "
        "Node file that extends it"
    ]


def test_extends_must_list_paths(ws: Workspace) -> None:
    text = VALID.replace("kind: Node\n", "kind: Node\nextends: {a: b}\n")
    assert ws.check(text) == [
        "node.yaml:3:10: error: extends: expected a list of paths to base files"
    ]


def test_remove_must_be_a_boolean(site: Workspace) -> None:
    text = NODE + "software:\n  - {name: exporter, remove: maybe}\n"
    site.write("node.yaml", text)
    assert site.diagnostics("node.yaml") == [
        f"node.yaml:{at(text, 'maybe')}: error: software[exporter].remove: expected true or "
        "false, got 'maybe'"
    ]


def _origin(file: str, text: str, needle: str) -> object:
    from nodekit.blueprint import Origin

    line, column = at(text, needle).split(":")
    return Origin(file, int(line), int(column))
