"""The public API: load, load_all, validate, Blueprint and the node helpers."""

from __future__ import annotations

import json

import pytest
from blueprint_cases import VALID, Workspace, at

from nodekit.blueprint import Blueprint, Origin, load, load_all, validate
from nodekit.errors import BlueprintError


def test_load_returns_the_merged_data_with_defaults_applied(ws: Workspace) -> None:
    ws.write("node.yaml", VALID)
    blueprint = load("node.yaml")
    assert isinstance(blueprint, Blueprint)
    broker, db = blueprint.data["software"]
    assert broker["ports"] == ["1883/tcp"]  # the package's default ports
    assert broker["settings"] == {
        "allow_anonymous": False,
        "users": ["edge"],
        "bridge_topics": [],
        "bridge_queue": 10000,
        "accept_bridges": False,
    }
    assert db["settings"] == {"databases": [], "users": [], "allowed_zones": []}
    assert blueprint.data["compute"][0]["os"] == "debian-12"
    assert blueprint.data["network"]["flows"][0] == {
        "from": "ot",
        "to": "it",
        "ports": ["1883/tcp"],
        "purpose": None,
    }
    assert json.loads(json.dumps(blueprint.data)) == blueprint.data
    assert blueprint.node.software[0].ports == ["1883/tcp"]
    assert blueprint.warnings == ()


def test_origin_of_key_paths(ws: Workspace) -> None:
    ws.write("node.yaml", VALID)
    blueprint = load("node.yaml")
    line, column = at(VALID, "10.41.1.10").split(":")
    assert blueprint.origin("compute[edge-01].address") == Origin(
        "node.yaml", int(line), int(column)
    )
    assert blueprint.origin("compute[1].address") == blueprint.origin("compute[edge-01].address")
    assert blueprint.origin("software[broker].ports") is None  # a default: no file set it
    assert blueprint.origin("compute[nope].address") is None
    assert blueprint.value("site.timezone") == "Europe/Paris"
    with pytest.raises(KeyError):
        blueprint.value("site.nope")


def test_digest_is_stable_and_follows_the_data(ws: Workspace) -> None:
    ws.write("a.yaml", VALID)
    ws.write(
        "b.yaml",
        "# same node, other layout\n"
        + VALID.replace("ports: [1883/tcp]", "ports:\n        - 1883/tcp"),
    )
    ws.write("c.yaml", VALID.replace("vlan: 41", "vlan: 40"))
    a, b, c = (load(name).digest for name in ("a.yaml", "b.yaml", "c.yaml"))
    assert a == b != c
    assert len(a) == 64


def test_node_helpers(ws: Workspace) -> None:
    ws.write("node.yaml", VALID)
    node = load("node.yaml").node
    assert node.host("edge-01").zone == "ot"
    assert node.zone("it").cidr == "10.41.2.0/24"
    assert [h.name for h in node.gateways()] == ["gw-01"]
    assert node.addresses_of("gw-01") == {"it": "10.41.2.1", "ot": "10.41.1.1"}
    assert [s.name for s in node.software_on("hist-01")] == ["broker", "db"]
    with pytest.raises(KeyError):
        node.host("nope")


def test_load_raises_with_every_error(ws: Workspace) -> None:
    ws.write("node.yaml", VALID.replace("vlan: 42", "vlan: 41").replace("role: edge", "role: x"))
    with pytest.raises(BlueprintError) as raised:
        load("node.yaml")
    assert len(raised.value.diagnostics) == 2
    assert str(raised.value).endswith("(and 1 more)")


def test_load_of_a_missing_file(ws: Workspace) -> None:
    with pytest.raises(BlueprintError) as raised:
        load("nope.yaml")
    assert [str(d) for d in raised.value.diagnostics] == [
        "nope.yaml:1:1: error: no such file or folder"
    ]


def test_load_all_takes_folders_and_skips_bases(ws: Workspace) -> None:
    ws.write("sites/a.yaml", VALID.replace("test-node", "node-a"))
    ws.write("sites/b.yml", VALID.replace("test-node", "node-b"))
    ws.write("bases/base.yaml", "apiVersion: nodekit/v1\nkind: NodeBase\n")
    ws.write(".hidden/c.yaml", "garbage: [")
    assert [b.name for b in load_all(["."])] == ["node-a", "node-b"]


def test_two_nodes_with_one_name_are_an_error_naming_both_files(ws: Workspace) -> None:
    ws.write("sites/a.yaml", VALID)
    ws.write("sites/b.yaml", VALID)
    assert ws.diagnostics("sites") == [
        f"sites/b.yaml:{at(VALID, 'test-node')}: error: metadata.name: node name 'test-node' "
        "is also used by sites/a.yaml"
    ]


def test_load_all_collects_the_errors_of_all_files(ws: Workspace) -> None:
    ws.write("a.yaml", VALID.replace("vlan: 42", "vlan: 41"))
    ws.write("b.yaml", VALID.replace("test-node", "other").replace("role: edge", "role: x"))
    ws.write("c.yaml", VALID.replace("test-node", "third"))
    with pytest.raises(BlueprintError) as raised:
        load_all(["a.yaml", "b.yaml", "c.yaml"])
    assert sorted({d.file for d in raised.value.diagnostics}) == ["a.yaml", "b.yaml"]
    result = validate(["a.yaml", "b.yaml", "c.yaml"])
    assert [b.name for b in result.blueprints] == ["third"]
    assert not result.ok


def test_a_folder_without_nodes_is_an_error(ws: Workspace) -> None:
    (ws.root / "empty").mkdir()
    assert ws.diagnostics("empty") == ["empty:1:1: error: no Node blueprint in this folder"]
