"""`software[].depends_on` acts: configuration order and systemd start order.

nodekit configures the packages in a fixed order (the plays of
playbooks/site.yml, :data:`PLAY_ORDER`): a dependency is honoured when its
package is configured earlier (so it is installed and started first, on any
host), and on one host its service also starts first at boot (a systemd
drop-in orders the units). A dependency the order cannot honour is refused,
saying why.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nodekit.blueprint.model import Node, Software
from nodekit.blueprint.report import Report

if TYPE_CHECKING:
    from nodekit.blueprint.rules import Skipped

# The package plays of playbooks/site.yml, in order (a test keeps the two the same).
PLAY_ORDER = (
    "mosquitto",
    "postgresql",
    "node-exporter",
    "prometheus",
    "edge-collector",
    "telemetry-ingest",
)


def _reaches(named: dict[str, Software], start: str, goal: str) -> bool:
    """Whether ``goal`` is ``start`` or one of its dependencies, however deep (a cycle)."""
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name == goal:
            return True
        if name not in seen and name in named:
            seen.add(name)
            todo.extend(named[name].depends_on)
    return False


def check_order(node: Node, report: Report, skipped: Skipped) -> None:
    if skipped.software:
        return
    named = {item.name: item for item in node.software}
    for i, item in enumerate(node.software):
        for j, name in enumerate(item.depends_on):
            dependency = named.get(name)
            if dependency is None or _reaches(named, name, item.name):
                continue  # unknown names and cycles are reported by the rules
            if item.package not in PLAY_ORDER:
                continue
            if dependency.package not in PLAY_ORDER:
                continue
            first, then = PLAY_ORDER.index(dependency.package), PLAY_ORDER.index(item.package)
            if first < then:
                continue
            how = (
                "in the same play, on every host at once"
                if first == then
                else f"after {item.package}"
            )
            report.error(
                ("software", i, "depends_on", j),
                f"{name} ({dependency.package}) is configured {how}, so {item.name} cannot "
                f"wait for it: nodekit configures packages in this order: "
                f"{', '.join(PLAY_ORDER)}; drop the dependency or depend on an earlier package",
            )
