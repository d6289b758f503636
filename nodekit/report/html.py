"""The audit report as one self-contained HTML file: inline CSS and SVG, no
script, no external URL, so it opens offline and can be archived or mailed."""

from __future__ import annotations

import datetime
import re
from html import escape
from typing import Any

from nodekit import __version__
from nodekit.report.gather import NodeReport

CSS = """
body { font-family: Helvetica, Arial, sans-serif; margin: 2rem; color: #1d2733; }
h1 { font-size: 1.6rem; } h2 { border-bottom: 2px solid #5b7db1; padding-bottom: .2rem; }
h3 { margin-top: 1.6rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; font-size: .9rem; }
th, td { border: 1px solid #c8d3e3; padding: .25rem .5rem; text-align: left; vertical-align: top; }
th { background: #eef3fb; }
.ok { color: #1d7a36; font-weight: bold; } .bad { color: #b3261e; font-weight: bold; }
.muted { color: #6b7785; } .waived { color: #8a6d00; }
.graph svg { max-width: 100%; height: auto; }
nav a { margin-right: 1rem; }
"""


def _e(value: object) -> str:
    return escape("-" if value is None or value == "" else str(value))


def _table(head: list[str], rows: list[list[str]], empty: str) -> str:
    if not rows:
        return f'<p class="muted">{_e(empty)}</p>'
    cells = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>"


def _level(value: float | None) -> str | None:
    return None if value is None else f"{value:g}"


def _svg(text: str) -> str:
    """Graphviz's SVG without its XML prolog, fit for inlining."""
    text = re.sub(r"<\?xml[^>]*\?>", "", text)
    return re.sub(r"<!DOCTYPE[^>]*>", "", text).strip()


def _design(data: dict[str, Any]) -> str:
    zones = [
        [_e(z["name"]), _e(z["cidr"]), _e(z.get("vlan")), _e(z.get("purpose")),
         _e(z.get("security_level")), _e(_level(z.get("purdue_level")))]
        for z in data["network"]["zones"]
    ]  # fmt: skip
    flows = [
        [_e(f["from"]), _e(f["to"]), _e(", ".join(f["ports"])), _e(f.get("purpose"))]
        for f in data["network"].get("flows") or []
    ]
    hosts = [
        [_e(c["name"]), _e(c["role"]), _e(c["zone"]),
         _e(", ".join([c["address"], *(i["address"] for i in c.get("interfaces") or [])]))]
        for c in data.get("compute") or []
    ]  # fmt: skip
    machines = [
        [_e(m["name"]), _e(m["kind"]), _e(m.get("model")), _e(m.get("zone")),
         _e(m.get("address")), _e(m.get("protocol")), _e(m.get("host"))]
        for m in data.get("equipment") or []
    ]  # fmt: skip
    return (
        "<h3>Zones</h3>"
        + _table(["zone", "CIDR", "VLAN", "purpose", "SL-T", "Purdue"], zones, "no zones")
        + "<h3>Conduits</h3>"
        + _table(["from", "to", "ports", "purpose"], flows, "no conduits: zones are isolated")
        + "<h3>Hosts</h3>"
        + _table(["host", "role", "zone", "addresses"], hosts, "no hosts")
        + "<h3>Equipment</h3>"
        + _table(
            ["machine", "kind", "model", "zone", "address", "protocol", "host"],
            machines,
            "no equipment",
        )
    )


def _tone(severity: str) -> str:
    return "bad" if severity == "error" else "muted"


def _policy(node: NodeReport) -> str:
    rows = []
    for f in node.findings:
        status = (
            f'<span class="waived">waived until {_e(f.waived_by.expires)}: '
            f"{_e(f.waived_by.reason)}</span>"
            if f.waived_by
            else f'<span class="{_tone(f.severity)}">{_e(f.severity)}</span>'
        )
        rows.append([status, f"<code>{_e(f.rule)}</code>", _e(f.sr),
                     f"<code>{_e(f.file)}:{f.line}</code>", _e(f.message)])  # fmt: skip
    return _table(["status", "rule", "IEC 62443-3-3", "where", "finding"], rows,
                  "no findings: the design passes every rule")  # fmt: skip


def _verify(node: NodeReport) -> str:
    if node.verify_run is None:
        return '<p class="muted">no verify has run on this machine for this node yet</p>'
    passed = sum(c.ok for c in node.checks)
    parts = [f"<p>Run <code>{_e(node.verify_run)}</code>: {passed} of {len(node.checks)} "
             "checks passed.</p>", "<h3>Live connectivity matrix</h3>"]  # fmt: skip
    rows = []
    for cell in node.matrix:
        probes = "<br>".join(
            f'<span class="{"ok" if ok else "bad"}">{_e(port)} '
            f"{'reachable' if open_ else 'blocked'}{'' if ok else ' (FAILED)'}</span>"
            for port, open_, ok in cell.probes
        )
        rows.append([_e(cell.source), _e(cell.target), _e(", ".join(cell.allowed) or "none"),
                     probes or '<span class="muted">not probed</span>'])  # fmt: skip
    parts.append(_table(["from zone", "to zone", "declared ports", "probed"], rows,
                        "a single zone: nothing to probe"))  # fmt: skip
    firewall = node.live.get("firewall") or {}
    parts.append("<h3>Firewall: live ruleset against the rendered one</h3>")
    parts.append(_table(
        ["host", "result", "differences"],
        [[_e(h), '<span class="ok">matches</span>' if not d else '<span class="bad">differs</span>',
          "<br>".join(_e(x) for x in d)] for h, d in sorted(firewall.items())],
        "not compared in this run",
    ))  # fmt: skip
    failing = [[_e(c.name), _e(c.message)] for c in node.checks if not c.ok]
    parts.append("<h3>Failed checks</h3>")
    parts.append(_table(["check", "message"], failing, "none"))
    packages = node.live.get("packages") or {}
    parts.append("<h3>Installed package versions</h3>")
    parts.append(_table(
        ["host", "package", "version"],
        [[_e(h), _e(p), _e(v)] for h, pkgs in sorted(packages.items())
         for p, v in sorted(pkgs.items())],
        "not recorded in this run",
    ))  # fmt: skip
    return "".join(parts)


def _runs(node: NodeReport) -> str:
    rows = [
        [_e(r.get("id")), _e(r.get("command")), _e(r.get("started")), _e(r.get("status")),
         _e({True: "yes", False: "NO", None: "-"}.get(r.get("verified"))),
         _e(str(r.get("commit") or "")[:12]), _e(r.get("by"))]
        for r in node.runs
    ]  # fmt: skip
    return _table(["run", "command", "started", "status", "verified", "commit", "by"], rows,
                  "no runs recorded")  # fmt: skip


def render_html(nodes: list[NodeReport], policy_file: str | None) -> str:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    nav = "".join(f'<a href="#{_e(n.name)}">{_e(n.name)}</a>' for n in nodes)
    sections = []
    for n in nodes:
        site = n.data["site"]
        sections.append(
            f'<section id="{_e(n.name)}"><h2>{_e(n.name)}</h2>'
            f"<p>{_e(n.data['metadata'].get('description'))} · region {_e(site.get('region'))}"
            f" · {_e(site.get('location'))} · target {_e(site.get('target'))}</p>"
            f'<h3>Topology</h3><div class="graph">{_svg(n.svg)}</div>'
            + _design(n.data)
            + f"<h3>Policy findings and waivers</h3>{_policy(n)}"
            + f"<h3>Last verify</h3>{_verify(n)}"
            + f"<h3>Last runs</h3>{_runs(n)}</section>"
        )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>nodekit report: {_e(', '.join(n.name for n in nodes))}</title>"
        f"<style>{CSS}</style></head><body>"
        f"<h1>OT security and operations report</h1>"
        f'<p class="muted">nodekit {_e(__version__)} · {now} · policy file '
        f"{_e(policy_file or 'none (built-in defaults)')}</p><nav>{nav}</nav>"
        + "".join(sections)
        + "</body></html>\n"
    )
