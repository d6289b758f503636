"""How failures are named: by node, host and stage, or by host and check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nodekit.blueprint import load
from nodekit.errors import PulumiFailed
from nodekit.render import PROJECT_ROOT
from nodekit.render.plan import plan
from nodekit.run import deploy as runs
from nodekit.run.deploy import RunOptions
from nodekit.run.lock import node_lock
from nodekit.run.stages import fail_pulumi
from nodekit.run.state import NodeState
from nodekit.run.verify import _split

DATA = {
    "metadata": {"name": "n1"},
    "site": {"region": "eu-west", "timezone": "UTC", "target": "local"},
    "network": {"zones": [{"name": "ot", "cidr": "10.1.1.0/24"}]},
    "compute": [
        {"name": "edge-01", "role": "edge", "zone": "ot", "address": "10.1.1.10"},
        {"name": "hist-01", "role": "controller", "zone": "ot", "address": "10.1.1.11"},
        {"name": "edge-1", "role": "edge", "zone": "ot", "address": "10.1.1.12"},
        {"name": "edge-10", "role": "edge", "zone": "ot", "address": "10.1.1.13"},
    ],
}


def test_infrastructure_failure_names_the_host_of_the_failed_resource() -> None:
    detail = (
        "error: pulumi-python:dynamic/nodekit:Container n1-hist-01 creating failed: "
        "container nk-n1-hist-01: 409 Conflict"
    )
    error = fail_pulumi(plan(DATA), PulumiFailed("up failed", operation="up", detail=detail))
    assert (error.node, error.host, error.stage) == ("n1", "hist-01", "infrastructure")
    assert str(error).startswith("n1/hist-01: infrastructure failed: ")


def test_a_host_whose_name_starts_another_is_not_blamed_for_it() -> None:
    detail = "error: nodekit:Container n1-edge-10 creating failed: container nk-n1-edge-10: boom"
    error = fail_pulumi(plan(DATA), PulumiFailed("up failed", operation="up", detail=detail))
    assert error.host == "edge-10"


def test_infrastructure_failure_without_a_host_names_the_node() -> None:
    error = fail_pulumi(
        plan(DATA), PulumiFailed("up failed", operation="up", detail="error: no backend")
    )
    assert error.host is None
    assert str(error) == "n1: infrastructure failed: error: no backend"


def test_check_names_split_into_host_and_check() -> None:
    assert _split("test_service[edge-01:broker]") == ("edge-01", "service broker")
    assert _split("test_host_up[gw-01]") == ("gw-01", "host up")
    assert _split("test_flow_denied[edge-01:hist-01:22/tcp]") == (
        "edge-01",
        "flow denied hist-01 22/tcp",
    )


def test_a_locked_node_fails_the_run_cleanly_naming_the_holder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NODEKIT_STATE", str(tmp_path))
    blueprint = load(PROJECT_ROOT / "blueprints" / "sites" / "lyon-additive-01.yaml")
    state = NodeState.of("lyon-additive-01")
    with node_lock(state.lock_file, node="lyon-additive-01", command="other run", timeout_s=1):
        result = runs.deploy(blueprint, options=RunOptions(lock_timeout_s=0.2))
    assert not result.ok
    assert result.stages == []  # nothing ran
    assert "is locked by other run" in (result.error or "")
    assert result.error_type == "LockTimeout"  # the type survives, not just the text
    assert result.fix is None or "--lock-timeout" in result.fix
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary["ok"] is False and summary["error"] == result.error


def test_a_failed_twin_is_named_and_the_first_named_resource_is_blamed() -> None:
    data = {
        **DATA,
        "equipment": [
            {"name": "plc-01", "kind": "plc", "zone": "ot", "address": "10.1.1.50",
             "protocol": "modbus-tcp"},
        ],
    }  # fmt: skip
    detail = (
        "error: nodekit:Twin n1-twin-plc-01 creating failed: container nk-n1-twin-plc-01: "
        "boom (the node's other resource n1-edge-01 is fine)"
    )
    error = fail_pulumi(plan(data), PulumiFailed("up failed", operation="up", detail=detail))
    assert error.host == "twin plc-01"
