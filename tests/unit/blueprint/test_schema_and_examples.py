"""The committed JSON Schema, the packages registry and the example blueprints."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from nodekit.blueprint import PACKAGES, load, load_all, schema
from nodekit.blueprint.loader import POLICY_FILE

SCHEMA_FILE = "blueprints/nodekit-blueprint-v1.schema.json"


def _examples(repo_root: Path) -> list[Path]:
    found = sorted((repo_root / "blueprints").rglob("*.yaml"))
    return [p for p in found if p.name != POLICY_FILE]  # the policy file is no blueprint


def test_committed_schema_is_the_model_schema(repo_root: Path) -> None:
    # Regenerate with: .venv/bin/nodekit schema > blueprints/nodekit-blueprint-v1.schema.json
    assert json.loads((repo_root / SCHEMA_FILE).read_text()) == schema()


def test_schema_is_deterministic_and_valid_json_schema() -> None:
    assert json.dumps(schema(), sort_keys=True) == json.dumps(schema(), sort_keys=True)
    jsonschema.Draft202012Validator.check_schema(schema())


def test_every_example_matches_the_schema_and_names_it(repo_root: Path) -> None:
    validator = jsonschema.Draft202012Validator(schema())
    examples = _examples(repo_root)
    assert len(examples) >= 6
    for path in examples:
        first = path.read_text().splitlines()[0]
        assert first.startswith("# yaml-language-server: $schema="), path
        target = path.parent / first.split("$schema=", 1)[1]
        assert target.resolve() == (repo_root / SCHEMA_FILE).resolve(), path
        assert list(validator.iter_errors(yaml.safe_load(path.read_text()))) == [], path


def test_the_schema_refuses_what_the_model_refuses() -> None:
    validator = jsonschema.Draft202012Validator(schema())
    node = {
        "apiVersion": "nodekit/v1",
        "kind": "Node",
        "metadata": {"name": "x"},
        "site": {"region": "eu-west", "timezone": "UTC", "target": "local"},
        "network": {"zones": [{"name": "z", "cidr": "10.0.0.0/24"}]},
        "compute": [{"name": "h", "role": "edge", "zone": "z", "address": "10.0.0.5"}],
        "software": [{"name": "s", "package": "mosquitto", "host": "h", "settings": {}}],
    }
    assert list(validator.iter_errors(node)) == []
    node["software"][0]["settings"] = {"allow_anonymus": True}  # type: ignore[index]
    assert list(validator.iter_errors(node))
    base = {"apiVersion": "nodekit/v1", "kind": "NodeBase", "compute": [{"role": "edge"}]}
    assert list(validator.iter_errors(base))  # named items keep their name, even in bases


def test_examples_are_small_distinct_local_sites(repo_root: Path) -> None:
    every = load_all([repo_root / "blueprints"])
    assert {b.node.site.region for b in every} == {"eu-west", "us-east"}
    # One example is a real site (target ssh, private site networks); the rest
    # deploy on this machine side by side.
    assert [b.name for b in every if b.node.site.target == "ssh"] == ["bremen-additive-01"]
    blueprints = [b for b in every if b.node.site.target == "local"]
    networks: list[ipaddress.IPv4Network] = []
    for blueprint in blueprints:
        assert len(blueprint.node.compute) <= 3
        assert blueprint.warnings == ()
        for zone in blueprint.node.network.zones:
            network = ipaddress.IPv4Network(zone.cidr)
            assert network.subnet_of(ipaddress.IPv4Network("10.0.0.0/8"))
            assert not any(network.overlaps(other) for other in networks)
            networks.append(network)
    austin = next(b for b in blueprints if b.name == "austin-additive-01")
    assert austin.node.cloud is not None
    assert austin.node.cloud.provider == "aws"


def test_the_demo_node_inherits_from_base_and_overlay(repo_root: Path) -> None:
    demo = load(repo_root / "blueprints/sites/lyon-additive-01.yaml")
    assert [p.name for p in demo.sources] == [
        "additive-cell.yaml",
        "eu-west.yaml",
        "lyon-additive-01.yaml",
    ]
    origin = demo.origin("site.timezone")
    assert origin is not None
    assert origin.file.endswith("overlays/eu-west.yaml")


@pytest.mark.parametrize("name", sorted(PACKAGES))
def test_each_package_is_complete(name: str) -> None:
    spec = PACKAGES[name]
    assert spec.name == name
    assert spec.role and spec.service and spec.apt_packages and spec.description
    assert all("/" in port for port in spec.default_ports)
    spec.settings.model_validate({})  # every setting has a default
    with pytest.raises(ValueError, match="extra"):
        spec.settings.model_validate({"no_such_setting": 1})
