"""Removal is part of convergence: what a node no longer has is taken away.

Each deploy records, per host, what nodekit installed (``deployed.json``,
shared through the backend). The next deploy or rollback compares that
record with the plan: a software entry that is gone is stopped, disabled,
purged and its files deleted (the ``removal`` role; the firewall, rendered
from the plan, closes its ports); a host that is gone is destroyed with the
stack (local) or reported (ssh). Nothing nodekit did not install is touched.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from nodekit.blueprint.packages import PACKAGES
from nodekit.render.plan import HostPlan, NodePlan
from nodekit.run.state import NodeState

Installed = dict[str, list[dict[str, Any]]]  # host -> what nodekit installed there


def installed(node: NodePlan) -> Installed:
    """What a deploy of the plan installs on each host."""
    result: Installed = {}
    for host in node.hosts:
        entries = []
        for service in host.services:
            spec = PACKAGES[service.package]
            entries.append({
                "software": service.name,
                "package": service.package,
                "service": spec.service,
                "apt": list(spec.purge or spec.apt_packages),
                "paths": list(spec.owned_paths),
            })  # fmt: skip
        result[host.name] = entries
    return result


def reach(node: NodePlan) -> dict[str, dict[str, Any]]:
    """How each host was reached (kept so a host dropped later can still be cleaned)."""
    return {h.name: {"address": h.address, "zone": h.zone, "ssh": h.ssh} for h in node.hosts}


def former_hosts(
    record: dict[str, Any], node: NodePlan, names: list[str] | None = None
) -> tuple[HostPlan, ...]:
    """The hosts the record has and the plan dropped (or the named ones), as plans
    to reach them by."""
    gone = removals(record, node)[1] if names is None else names
    known = record.get("reach") or {}
    if not node.hosts:
        return ()
    template = node.hosts[0]
    return tuple(
        replace(
            template,
            name=name,
            address=known[name]["address"],
            ssh=known[name]["ssh"],
            addresses={known[name]["zone"]: known[name]["address"]},
            services=(),
            routes=(),
        )
        for name in gone
        if name in known
    )


def previous(state: NodeState) -> dict[str, Any]:
    """The node's deployed record ({} before its first deploy)."""
    try:
        return dict(json.loads((state.root / "deployed.json").read_text()))
    except (OSError, ValueError):
        return {}


def removals(record: dict[str, Any], node: NodePlan) -> tuple[Installed, list[str]]:
    """(per kept host: the software entries to remove; the hosts that are gone)."""
    before: Installed = record.get("installed") or {}
    now = installed(node)
    remove: Installed = {}
    for host, entries in sorted(before.items()):
        if host not in now:
            continue
        kept = {e["package"] for e in now[host]}
        gone = [e for e in entries if e["package"] not in kept]
        if gone:
            remove[host] = gone
    gone_hosts = sorted(set(record.get("hosts") or before) - set(now))
    return remove, gone_hosts


def describe(
    remove: Installed, gone_hosts: list[str], *, destroyed: bool, record: dict[str, Any]
) -> list[str]:
    """One line per removal, as plan and deploy report them."""
    lines = [
        f"{host}: software {e['software']} ({e['package']}): service {e['service']} stopped "
        f"and disabled, packages {', '.join(e['apt'])} purged, its firewall openings closed"
        for host, entries in remove.items()
        for e in entries
    ]
    for host in gone_hosts:
        if destroyed:
            lines.append(f"{host}: host removed from the blueprint: its container is destroyed")
            continue
        had = (record.get("installed") or {}).get(host) or []
        what = (
            "nodekit's software purged from it: "
            + ", ".join(f"{e['software']} ({', '.join(e['apt'])})" for e in had)
            if had
            else "no software of nodekit's was on it"
        )
        lines.append(
            f"{host}: host removed from the blueprint: {what}; the machine, its admin user, "
            "SSH and firewall settings stay (nodekit no longer manages it)"
        )
    return lines
