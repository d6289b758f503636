"""What the audit report shows of each node, gathered as plain data: the design
(zones, conduits, hosts, machines), the policy findings, the node's last runs
from the backend, and its last verify (checks, live connectivity matrix and
firewall comparison, package versions) from the run folder that kept it."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nodekit.backends import backend_for
from nodekit.blueprint import Blueprint
from nodekit.policy.check import Finding, PolicyResult
from nodekit.render.plan import plan
from nodekit.run.state import NodeState


@dataclass(frozen=True)
class Check:
    name: str  # e.g. ``test_flow_denied[edge-01:hist-01:22/tcp]``
    ok: bool
    message: str = ""


@dataclass(frozen=True)
class Cell:
    """One ordered pair of zones in the live connectivity matrix."""

    source: str
    target: str
    allowed: tuple[str, ...]  # declared ports
    probes: tuple[tuple[str, bool, bool], ...]  # (port, expected open, check passed)


@dataclass(frozen=True)
class NodeReport:
    name: str
    data: dict[str, Any]
    svg: str
    findings: tuple[Finding, ...]
    runs: list[dict[str, Any]]
    verify_run: str | None  # the run whose checks are shown
    checks: tuple[Check, ...] = ()
    matrix: tuple[Cell, ...] = ()
    live: dict[str, Any] = field(default_factory=dict)  # firewall, packages (live.json)


def _checks(junit: Path) -> tuple[Check, ...]:
    try:
        root = ET.parse(junit).getroot()
    except (OSError, ET.ParseError):
        return ()
    result = []
    for case in root.iter("testcase"):
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        if case.find("skipped") is not None:
            continue
        text = "" if problem is None else (problem.get("message") or "").splitlines()[0][:300]
        result.append(Check(case.get("name") or "?", problem is None, text))
    return tuple(result)


_FLOW = re.compile(r"^test_flow_(allowed|denied)\[([^:\]]+):([^:\]]+):([^\]]+)\]$")


def _matrix(data: dict[str, Any], checks: tuple[Check, ...]) -> tuple[Cell, ...]:
    node = plan(data)
    zone_of = {h.name: h.zone for h in node.hosts}
    probes: dict[tuple[str, str], list[tuple[str, bool, bool]]] = {}
    for check in checks:
        found = _FLOW.match(check.name)
        if found and found[2] in zone_of and found[3] in zone_of:
            pair = (zone_of[found[2]], zone_of[found[3]])
            probes.setdefault(pair, []).append((found[4], found[1] == "allowed", check.ok))
    cells = []
    for a in node.zones:
        for b in node.zones:
            if a.name == b.name:
                continue
            allowed = tuple(
                p
                for f in node.flows
                if (f["from"], f["to"]) == (a.name, b.name)
                for p in f["ports"]
            )
            cells.append(
                Cell(a.name, b.name, allowed, tuple(sorted(probes.get((a.name, b.name), []))))
            )
    return tuple(cells)


def _last_verify(name: str, runs: list[dict[str, Any]]) -> tuple[str | None, Path | None]:
    """The newest run whose verify ran and whose folder is on this machine."""
    folder = NodeState.of(name).root / "runs"
    for run in runs:
        if run.get("verified") is not None and (folder / str(run["id"]) / "verify.xml").is_file():
            return str(run["id"]), folder / str(run["id"])
    newest = sorted(folder.glob("*/verify.xml"), reverse=True) if folder.is_dir() else []
    return (newest[0].parent.name, newest[0].parent) if newest else (None, None)


def gather(
    blueprints: list[Blueprint], policy: PolicyResult, svgs: dict[str, str], backend: str | None
) -> list[NodeReport]:
    store = backend_for(backend)
    reports = []
    for blueprint in blueprints:
        runs = store.runs(blueprint.name, limit=10)
        run_id, folder = _last_verify(blueprint.name, runs)
        checks = _checks(folder / "verify.xml") if folder else ()
        live_file = folder / "live.json" if folder else None
        live = json.loads(live_file.read_text()) if live_file and live_file.is_file() else {}
        reports.append(NodeReport(
            blueprint.name, blueprint.data, svgs[blueprint.name],
            tuple(f for f in policy.findings if f.node in (blueprint.name, None)),
            runs, run_id, checks, _matrix(blueprint.data, checks), live,
        ))  # fmt: skip
    return reports
