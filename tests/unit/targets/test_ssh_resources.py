"""compute[].resources act on the ssh target: preflight checks the host has them."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from nodekit.blueprint import load
from nodekit.render.plan import HostPlan, plan
from nodekit.targets.ssh import PROBE, _resources

BREMEN = Path(__file__).resolve().parents[3] / "blueprints/sites/bremen-additive-01-ssh.yaml"
GIB = 1024 * 1024  # in kB


def _hist(**resources: int) -> HostPlan:
    node = plan(load(BREMEN).data)
    host = node.host("hist-01")  # the base asks for 2 cpus and 1024 MB
    return replace(host, **resources)


def test_the_probe_reports_cpus_memory_and_disk_size() -> None:
    assert "cpus=$(nproc)" in PROBE and "MemTotal" in PROBE and "disk_total_kb" in PROBE


def test_a_host_with_what_the_blueprint_asks_passes() -> None:
    facts = {"cpus": "2", "mem_kb": str(1000 * 1024), "disk_total_kb": str(40 * GIB)}
    assert _resources(_hist(disk_gb=40), facts) == []  # 1000 of 1024 MB: the kernel's share


def test_a_smaller_host_is_named_with_what_is_short() -> None:
    facts = {"cpus": "1", "mem_kb": str(512 * 1024), "disk_total_kb": str(8 * GIB)}
    problems = _resources(_hist(disk_gb=20), facts)
    assert [p.check for p in problems] == ["resources"] * 3
    text = " | ".join(f"{p.problem} ({p.fix})" for p in problems)
    assert "has 1 cpus, compute[hist-01].resources.cpus asks for 2" in text
    assert "has 512 memory mb, compute[hist-01].resources.memory_mb asks for 1024" in text
    assert "has 8 disk gb, compute[hist-01].resources.disk_gb asks for 20" in text
    assert "lower resources.disk_gb to what it has" in text


def test_nothing_asked_nothing_checked() -> None:
    assert _resources(_hist(cpus=0, memory_mb=0, disk_gb=0), {}) == []
