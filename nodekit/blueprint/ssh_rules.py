"""Rules of the SSH settings (`site.ssh`, `compute[].ssh`): never lock anyone out."""

from __future__ import annotations

import ipaddress
from typing import Any

from nodekit.blueprint.model import Node, Ssh
from nodekit.blueprint.report import Loc, Report
from nodekit.blueprint.source import did_you_mean

DEFAULT_USER = "nodekit"


def check_ssh(node: Node, report: Report) -> None:
    target = node.site.target
    zones = sorted(zone.name for zone in node.network.zones)
    places: list[tuple[Loc, Ssh]] = []
    if node.site.ssh is not None:
        places.append((("site", "ssh"), node.site.ssh))
    places += [(("compute", i, "ssh"), h.ssh) for i, h in enumerate(node.compute) if h.ssh]
    for loc, ssh in places:
        if target != "ssh":
            report.warning(loc, f"only used with site.target ssh (target is {target})")
            continue
        if ssh.user == "root":
            report.error(
                (*loc, "user"),
                "nodekit hardens sshd with PermitRootLogin no, so root could not log in "
                f"after the first deploy: log in as a user with passwordless sudo "
                f"(default {DEFAULT_USER})",
            )
        for j, source in enumerate(ssh.allow_from or []):
            if source in zones:
                continue
            try:
                ipaddress.IPv4Network(source, strict=True)
            except ValueError:
                report.error(
                    (*loc, "allow_from", j),
                    f"'{source}' is neither a zone{did_you_mean(source, zones)} nor an IPv4 "
                    f"network (e.g. 10.0.0.0/24); zones: {', '.join(zones)}",
                )


def effective_ssh(site: dict[str, Any] | None, host: dict[str, Any] | None) -> dict[str, Any]:
    """A host's SSH settings: the site's defaults, then the host's own, key by key."""
    merged = {k: v for k, v in (site or {}).items() if v is not None}
    merged.update({k: v for k, v in (host or {}).items() if v is not None})
    return merged
