"""software[].depends_on acts: packages configured in a fixed order, units ordered on
one host; a dependency the order cannot honour is refused, saying why."""

from __future__ import annotations

from pathlib import Path

import yaml
from blueprint_cases import VALID, Workspace

from nodekit.blueprint import load
from nodekit.blueprint.order_rules import PLAY_ORDER
from nodekit.render import render

REPO = Path(__file__).resolve().parents[3]


def test_the_order_is_the_site_playbook_s() -> None:
    plays = yaml.safe_load((REPO / "playbooks/site.yml").read_text())
    groups = [p["hosts"] for p in plays if str(p["hosts"]).startswith("pkg_")]
    assert [g.removeprefix("pkg_").replace("_", "-") for g in groups] == list(PLAY_ORDER)


def _software(ws: Workspace, extra: str) -> list[str]:
    assert "software:\n" in VALID
    return ws.check(VALID.replace("software:\n", "software:\n" + extra, 1))


def test_a_dependency_configured_later_is_refused(ws: Workspace) -> None:
    # (VALID: db (postgresql) depends_on broker (mosquitto): the right way round)
    mine = "    settings: {users: [edge]}\n"
    text = VALID.replace(mine, mine + "    depends_on: [db]\n").replace(
        "    depends_on: [broker]\n", ""
    )
    found = [line for line in ws.check(text) if "depends_on" in line]
    assert len(found) == 1, found
    assert "db (postgresql) is configured after mosquitto, so broker cannot wait for it" in found[0]
    assert "mosquitto, postgresql, node-exporter" in found[0]


def test_a_dependency_configured_earlier_is_accepted(ws: Workspace) -> None:
    assert "    depends_on: [broker]\n" in VALID  # db (postgresql) after broker (mosquitto)
    assert not [line for line in ws.check(VALID) if "error" in line]


def test_the_same_package_on_two_hosts_cannot_wait_for_each_other(ws: Workspace) -> None:
    two = (
        "  - {name: ex-a, package: node-exporter, host: edge-01}\n"
        "  - {name: ex-b, package: node-exporter, host: hist-01, depends_on: [ex-a]}\n"
    )
    (found,) = [line for line in _software(ws, two) if "depends_on" in line]
    assert "in the same play, on every host at once" in found


def test_on_one_host_the_unit_starts_after_its_dependency(tmp_path: Path) -> None:
    render(load(REPO / "blueprints/sites/lyon-additive-01.yaml"), tmp_path)
    hist = yaml.safe_load((tmp_path / "ansible/host_vars/hist-01.yml").read_text())
    # metrics (prometheus) depends_on exporter-hist-01, on the same host
    assert hist["nodekit_unit_order"] == [
        {"unit": "prometheus", "after": ["prometheus-node-exporter"]}
    ]
    edge = yaml.safe_load((tmp_path / "ansible/host_vars/edge-01.yml").read_text())
    assert edge["nodekit_unit_order"] == []
    tests = next((tmp_path / "tests").glob("test_*.py")).read_text()
    assert "UNIT_ORDER = [('hist-01', 'prometheus', ['prometheus-node-exporter'])]" in tests
