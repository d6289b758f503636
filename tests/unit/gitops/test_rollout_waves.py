"""Rollout waves and budgets, affected's key paths: the arithmetic pipelines rely on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nodekit.blueprint import Blueprint, load
from nodekit.errors import UsageError
from nodekit.gitops.affected import changed_paths
from nodekit.gitops.rollout import RolloutOptions, amount, plan_waves, rollout, select
from nodekit.run.deploy import RunResult

SITE = """\
apiVersion: nodekit/v1
kind: Node
metadata:
  name: n{i}
  labels: {labels}
site:
  region: eu-west
  timezone: UTC
  target: local
network:
  zones:
    - name: cell
      cidr: 10.60.{i}.0/24
compute:
  - name: solo
    role: edge
    zone: cell
    address: 10.60.{i}.10
"""


def _nodes(tmp_path: Path, count: int, labels: dict[int, str] | None = None) -> list[Blueprint]:
    out = []
    for i in range(1, count + 1):
        path = tmp_path / f"n{i}.yaml"
        path.write_text(SITE.format(i=i, labels=(labels or {}).get(i, "{}")))
        out.append(load(path))
    return out


def _names(waves: list[list[Blueprint]]) -> list[list[str]]:
    return [[b.name for b in w] for w in waves]


def test_amounts_are_counts_or_percentages_rounded_up() -> None:
    assert amount("25%", 10, what="--batch") == 3
    assert amount("100%", 7, what="--batch") == 7
    assert amount("0", 7, what="--max-fail") == 0
    assert amount("2", 7, what="--max-fail") == 2
    assert amount("10%", 1, what="--max-fail") == 1
    for bad in ("-1", "abc", "150%", "2.5"):
        with pytest.raises(UsageError, match="give a count"):
            amount(bad, 10, what="--batch")


def test_waves_canaries_first_then_batches_in_the_order_given(tmp_path: Path) -> None:
    nodes = _nodes(tmp_path, 9, {7: "{canary: 'true'}"})
    waves = plan_waves(nodes, RolloutOptions(canary=1, batch="25%"))
    assert _names(waves) == [
        ["n1", "n7"],  # the first node and the labelled canary
        ["n2", "n3", "n4"],  # 25% of 9, rounded up
        ["n5", "n6", "n8"],
        ["n9"],
    ]
    assert _names(plan_waves(nodes[:3], RolloutOptions(canary=0, batch="1"))) == [
        ["n1"], ["n2"], ["n3"],
    ]  # fmt: skip
    assert [b.name for b in select(nodes, ["canary=true"])] == ["n7"]
    with pytest.raises(UsageError, match="KEY=VALUE"):
        select(nodes, ["canary"])


def _fake(failing: set[str], seen: list[str]) -> Any:
    def deploy(blueprint: Blueprint, **_: Any) -> RunResult:
        seen.append(blueprint.name)
        run_dir = Path(f"/nonexistent/{blueprint.name}-run")
        result = RunResult(blueprint.name, "deploy", run_dir)
        if blueprint.name in failing:
            result.error = "verify failed"
        return result

    return deploy


def test_budget_stops_the_rollout_and_skips_the_rest(tmp_path: Path) -> None:
    nodes = _nodes(tmp_path, 6)
    seen: list[str] = []
    result = rollout(
        nodes,
        RolloutOptions(canary=1, batch="2", max_fail="1"),
        deploy_fn=_fake({"n2", "n4"}, seen),
    )
    # wave 2 (n2, n3) has one failure: within the budget; wave 3 (n4, n5) a second: stop.
    assert result.status == "stopped" and not result.ok
    assert [(n.node, n.status) for n in result.nodes] == [
        ("n1", "deployed"), ("n2", "failed"), ("n3", "deployed"),
        ("n4", "failed"), ("n5", "deployed"), ("n6", "skipped"),
    ]  # fmt: skip
    assert "n6" not in seen  # never touched
    assert result.to_dict()["waves"] == [["n1"], ["n2", "n3"], ["n4", "n5"], ["n6"]]


def test_changed_paths_name_the_keys_whose_values_changed() -> None:
    a = {"site": {"timezone": "UTC"}, "compute": [{"name": "x", "address": "1"}], "p": [1, 2]}
    b = {"site": {"timezone": "UTC"}, "compute": [{"name": "x", "address": "2"}], "p": [1, 3]}
    assert changed_paths(a, b) == ["compute[x].address", "p"]
    assert changed_paths(a, a) == []
    c = {**a, "compute": [*a["compute"], {"name": "y", "address": "3"}]}
    assert changed_paths(a, c) == ["compute[y]"]
