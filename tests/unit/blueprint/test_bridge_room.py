"""The local target needs one free address per zone for this machine's bridge."""

from __future__ import annotations

from pathlib import Path

import pytest

from nodekit.blueprint.rules import highest_free_address
from nodekit.cli.main import main

TINY = """\
apiVersion: nodekit/v1
kind: Node
metadata: {{name: tiny}}
site: {{region: eu-west, timezone: Europe/Paris, target: {target}}}
network:
  zones:
    - {{name: ot, cidr: 10.9.9.0/30}}
compute:
  - {{name: a, role: edge, zone: ot, address: 10.9.9.1}}
  - {{name: b, role: edge, zone: ot, address: 10.9.9.2}}
"""


def test_full_zone_is_an_error_on_the_local_target(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY.format(target="local"))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:7:" in err
    assert "network.zones[ot].cidr" in err and "no free address" in err


def test_full_zone_is_fine_on_the_ssh_target(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY.format(target="ssh"))
    assert main(["validate", str(path)]) == 0
    assert main(["render", str(path), "-o", str(tmp_path / "out")]) == 0


def test_highest_free_address_skips_used_and_broadcast() -> None:
    assert highest_free_address("10.0.0.0/24", set()) == "10.0.0.254"
    assert highest_free_address("10.0.0.0/24", {"10.0.0.254", "10.0.0.253"}) == "10.0.0.252"
    assert highest_free_address("10.0.0.0/30", {"10.0.0.1", "10.0.0.2"}) is None
    assert highest_free_address("10.0.0.0/31", set()) is None
    assert highest_free_address("10.0.0.0/8", set()) == "10.255.255.254"
