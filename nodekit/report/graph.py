"""A node's topology as Graphviz DOT or Mermaid text: zones as clusters (with
their security and Purdue levels), hosts and machines with their addresses,
conduits as edges labelled with their ports, and the uplink (with its peer:
the hub) when the node has one. SVG and PNG come from Graphviz's `dot`."""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Any

from nodekit.errors import OperationError, ToolchainError

UPLINK = "uplink"


def _q(text: str) -> str:
    """A DOT double-quoted string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _levels(zone: dict[str, Any]) -> str:
    parts = []
    if zone.get("security_level") is not None:
        parts.append(f"SL-T {zone['security_level']}")
    if zone.get("purdue_level") is not None:
        parts.append(f"Purdue {zone['purdue_level']:g}")
    if zone.get("purpose"):
        parts.append(str(zone["purpose"]).upper())
    return " · ".join(parts)


def _members(data: dict[str, Any], zone: str) -> list[tuple[str, str, str]]:
    """(id, label, kind) of the hosts whose primary zone this is, and its machines."""
    result = []
    for host in data.get("compute") or []:
        if host["zone"] != zone:
            continue
        extra = [f"{i['zone']}: {i['address']}" for i in host.get("interfaces") or []]
        label = "\n".join([host["name"], f"{host['role']} · {host['address']}", *extra])
        result.append((f"host:{host['name']}", label, "host"))
    for item in data.get("equipment") or []:
        if item.get("zone") == zone or (not item.get("zone") and _host_zone(data, item) == zone):
            where = item.get("address") or f"via {item.get('host')}"
            protocol = f" · {item['protocol']}" if item.get("protocol") else ""
            label = f"{item['name']}\n{item['kind']}{protocol}\n{where}"
            result.append((f"eq:{item['name']}", label, "equipment"))
    return result


def _host_zone(data: dict[str, Any], item: dict[str, Any]) -> str | None:
    host = next((c for c in data.get("compute") or [] if c["name"] == item.get("host")), None)
    return host["zone"] if host else None


def _flows(data: dict[str, Any]) -> list[dict[str, Any]]:
    return list(data["network"].get("flows") or [])


def _uplink(data: dict[str, Any]) -> dict[str, Any] | None:
    uplink = data["network"].get("uplink") or {}
    return uplink if uplink.get("type") not in (None, "none") else None


def _bridges(data: dict[str, Any]) -> list[dict[str, Any]]:
    software = data.get("software") or []
    return [s for s in software if (s.get("settings") or {}).get("bridge_topics")]


def to_dot(data: dict[str, Any]) -> str:
    """The topology of a merged blueprint's data as a DOT digraph."""
    name = data["metadata"]["name"]
    site = data["site"]
    title = f"{name} · {site.get('region')} · target {site.get('target')}"
    lines = [
        f"digraph {_q(name)} {{",
        "  graph [rankdir=LR, compound=true, fontname=Helvetica, labelloc=t, fontsize=16, "
        f"label={_q(title)}];",
        '  node [shape=box, style="rounded,filled", fillcolor=white, fontname=Helvetica, '
        "fontsize=11];",
        "  edge [fontname=Helvetica, fontsize=10];",
    ]
    for zone in data["network"]["zones"]:
        title = f"zone {zone['name']} · {zone['cidr']}"
        if zone.get("vlan"):
            title += f" · VLAN {zone['vlan']}"
        levels = _levels(zone)
        lines += [
            f"  subgraph {_q('cluster_' + zone['name'])} {{",
            f"    label={_q(title + (chr(10) + levels if levels else ''))};",
            '    style="rounded,filled"; fillcolor="#eef3fb"; color="#5b7db1";',
            f"    {_q('zone:' + zone['name'])} [shape=point, style=invis, width=0];",
        ]
        for node_id, label, kind in _members(data, zone["name"]):
            shape = ', shape=component, fillcolor="#fff6e5"' if kind == "equipment" else ""
            lines.append(f"    {_q(node_id)} [label={_q(label)}{shape}];")
        lines.append("  }")
    uplink = _uplink(data)
    if uplink:
        label = f"uplink ({uplink['type']})" + (f"\n{uplink['peer']}" if uplink.get("peer") else "")
        lines.append(f'  {_q("zone:" + UPLINK)} [label={_q(label)}, shape=ellipse, '
                     'fillcolor="#f3f3f3"];')  # fmt: skip
    for item in _bridges(data) if uplink else []:
        topics = ", ".join(item["settings"]["bridge_topics"])
        lines.append(f"  {_q('host:' + item['host'])} -> {_q('zone:' + UPLINK)} "
                     f"[label={_q('MQTT bridge: ' + topics)}, style=dashed];")  # fmt: skip
    for flow in _flows(data):
        src, dst = flow["from"], flow["to"]
        label = ", ".join(flow["ports"]) + (f"\n{flow['purpose']}" if flow.get("purpose") else "")
        attrs = [f"label={_q(label)}"]
        if src != UPLINK:
            attrs.append(f"ltail={_q('cluster_' + src)}")
        if dst != UPLINK:
            attrs.append(f"lhead={_q('cluster_' + dst)}")
        lines.append(f"  {_q('zone:' + src)} -> {_q('zone:' + dst)} [{', '.join(attrs)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _mid(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", text)


def _mlabel(text: str) -> str:
    return '"' + text.replace('"', "#quot;").replace("\n", "<br/>") + '"'


def to_mermaid(data: dict[str, Any]) -> str:
    """The topology as a Mermaid flowchart (renders in GitHub and GitLab Markdown)."""
    lines = ["flowchart LR"]
    for zone in data["network"]["zones"]:
        title = f"zone {zone['name']} · {zone['cidr']}"
        levels = _levels(zone)
        title += f"\n{levels}" if levels else ""
        lines.append(f"  subgraph z_{_mid(zone['name'])}[{_mlabel(title)}]")
        for node_id, label, kind in _members(data, zone["name"]):
            shape = ("[[", "]]") if kind == "equipment" else ("[", "]")
            lines.append(f"    {_mid(node_id)}{shape[0]}{_mlabel(label)}{shape[1]}")
        lines.append("  end")
    uplink = _uplink(data)
    if uplink:
        label = f"uplink ({uplink['type']})" + (f"\n{uplink['peer']}" if uplink.get("peer") else "")
        lines.append(f"  z_{UPLINK}(({_mlabel(label)}))")
    for item in _bridges(data) if uplink else []:
        topics = ", ".join(item["settings"]["bridge_topics"])
        lines.append(
            f"  host_{_mid(item['host'])} -.->|{_mlabel('MQTT bridge: ' + topics)}| z_{UPLINK}"
        )
    for flow in _flows(data):
        label = ", ".join(flow["ports"]) + (f"\n{flow['purpose']}" if flow.get("purpose") else "")
        lines.append(f"  z_{_mid(flow['from'])} -->|{_mlabel(label)}| z_{_mid(flow['to'])}")
    return "\n".join(lines) + "\n"


def render_dot(dot: str, fmt: str) -> bytes:
    """DOT text drawn by Graphviz as ``svg`` or ``png``."""
    exe = shutil.which("dot")
    if exe is None:
        raise ToolchainError(
            "Graphviz's dot is missing",
            part="graphviz",
            fix="apt-get install graphviz (make setup)",
        )
    proc = subprocess.run([exe, f"-T{fmt}"], input=dot.encode(), capture_output=True, check=False)
    if proc.returncode != 0:
        reason = proc.stderr.decode(errors="replace").strip().splitlines()
        raise OperationError(f"Graphviz failed: {reason[-1] if reason else 'no output'}")
    return proc.stdout
