"""Semantic rules on the software list: each item's package, settings, host
and ports, and the dependencies between items (no cycles).

Run by :func:`nodekit.blueprint.rules.check`, reporting by model location.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ValidationError

from nodekit.blueprint.fields import parse_port
from nodekit.blueprint.model import Node, Software
from nodekit.blueprint.packages import PACKAGES, MosquittoSettings, PackageSpec, ZoneRef
from nodekit.blueprint.report import Loc, Report, reference
from nodekit.blueprint.source import did_you_mean

if TYPE_CHECKING:
    from nodekit.blueprint.rules import Skipped


def check_software(node: Node, report: Report, skipped: Skipped) -> None:
    """The software rules, in the order :func:`nodekit.blueprint.rules.check` ran them."""
    _software(node, report, skipped)
    _dependency_cycles(node, report)


def _software(node: Node, report: Report, skipped: Skipped) -> None:
    hosts = [host.name for host in node.compute]
    names = [item.name for item in node.software]
    taken: dict[str, list[tuple[int, int, str, str]]] = {}
    for i, item in enumerate(node.software):
        spec = PACKAGES.get(item.package)
        if spec is None:
            known = ", ".join(sorted(PACKAGES))
            report.error(
                ("software", i, "package"),
                f"unknown package '{item.package}'{did_you_mean(item.package, PACKAGES)}; "
                f"known: {known}",
            )
        else:
            _settings(node, report, skipped, index=i, item=item, spec=spec)
        reference(report, ("software", i, "host"), "host", item.host, hosts, skipped=skipped.hosts)
        for j, dependency in enumerate(item.depends_on):
            loc: Loc = ("software", i, "depends_on", j)
            reference(report, loc, "software", dependency, names, skipped=skipped.software)
        if spec is not None:
            _package_ports(report, index=i, item=item, spec=spec)
            earlier = node.software[:i]
            same = next(
                (o for o in earlier if (o.host, o.package) == (item.host, item.package)), None
            )
            if same is not None:
                report.error(
                    ("software", i, "package"),
                    f"host '{item.host}' already runs {item.package} as software[{same.name}]: "
                    "a host runs one service of each package (one role, one configuration)",
                )
        ports: list[tuple[Loc, str]]
        if item.ports is not None:
            ports = [(("software", i, "ports", j), port) for j, port in enumerate(item.ports)]
        else:
            defaults = spec.default_ports if spec else ()
            ports = [(("software", i, "package"), port) for port in defaults]
        on_host = taken.setdefault(item.host, [])
        for port_loc, port in ports:
            low, high, proto = parse_port(port)
            clash = next(
                (o for o in on_host if o[2] == proto and low <= o[1] and o[0] <= high), None
            )
            if clash:
                what = "port" if item.ports is not None else "default port"
                report.error(
                    port_loc,
                    f"{what} {port} on host '{item.host}' is already used by {clash[3]}",
                )
            on_host.append((low, high, proto, f"software[{item.name}]"))


def _package_ports(report: Report, *, index: int, item: Software, spec: PackageSpec) -> None:
    """Every package nodekit ships listens on TCP; most on exactly one port."""
    if item.ports is None:
        return
    if not spec.default_ports:
        report.error(
            ("software", index, "ports"),
            f"{spec.name} listens on no port (it only connects out): remove ports",
        )
        return
    default = ", ".join(spec.default_ports)
    if not item.ports:
        report.error(
            ("software", index, "ports"),
            f"{spec.name} must listen on a port: list one, or leave ports out for {default}",
        )
    elif spec.one_port and len(item.ports) > 1:
        report.error(
            ("software", index, "ports"),
            f"{spec.name} listens on one port, {len(item.ports)} are listed: "
            f"keep one (default {default})",
        )
    for j, port in enumerate(item.ports):
        low, high, proto = parse_port(port)
        if proto != "tcp" or low != high:
            report.error(
                ("software", index, "ports", j),
                f"{spec.name} listens on single TCP ports, not '{port}': write e.g. {default}",
            )


def _own_users(node: Node, item: Software) -> bool:
    """Whether nodekit gives the broker users of its own (collectors, ingests, devices)."""
    from nodekit.blueprint.equipment import broker_users

    return bool(broker_users(node.model_dump(by_alias=True, mode="json")).get(item.name))


def _settings(
    node: Node, report: Report, skipped: Skipped, *, index: int, item: Software, spec: PackageSpec
) -> None:
    loc: Loc = ("software", index, "settings")
    try:
        settings: BaseModel = spec.settings.model_validate(item.settings)
    except ValidationError as error:
        report.schema_errors(error, spec.settings, loc)
        return
    zones = [zone.name for zone in node.network.zones]
    for name, info in spec.settings.model_fields.items():
        if any(isinstance(mark, ZoneRef) for mark in info.metadata):
            for j, zone in enumerate(getattr(settings, name)):
                reference(report, (*loc, name, j), "zone", zone, zones, skipped=skipped.zones)
    quiet = isinstance(settings, MosquittoSettings) and (
        settings.users or settings.allow_anonymous or settings.accept_bridges
    )
    if isinstance(settings, MosquittoSettings) and not quiet and not _own_users(node, item):
        report.warning(
            (*loc, "users"),
            "this broker accepts no client: it has no users and allow_anonymous is false; "
            "list users (passwords come from the secrets store) or set allow_anonymous: true",
        )
    uplink = node.network.uplink
    bridged = isinstance(settings, MosquittoSettings) and settings.bridge_topics
    if bridged and (uplink is None or uplink.type == "none" or not uplink.peer):
        have = "is not set" if uplink is None else f"is type {uplink.type} with no peer"
        report.error(
            (*loc, "bridge_topics"),
            f"MQTT bridging goes to the uplink's peer, but network.uplink {have}: "
            "set network.uplink (type vpn or direct, with the peer: the hub's node name "
            "or address) "
            "or remove bridge_topics",
        )


def _dependency_cycles(node: Node, report: Report) -> None:
    graph: dict[str, list[str]] = {}
    index: dict[str, int] = {}
    for i, item in enumerate(node.software):
        graph.setdefault(item.name, list(item.depends_on))
        index.setdefault(item.name, i)
    state: dict[str, str] = {}  # "open" while on the path, then "done"
    for start, first in graph.items():
        if start in state:
            continue
        path, pending = [start], [iter(first)]
        state[start] = "open"
        while pending:
            dependency = next(pending[-1], None)
            if dependency is None:
                state[path.pop()] = "done"
                pending.pop()
            elif dependency not in graph:
                continue
            elif state.get(dependency) == "open":
                cycle = [*path[path.index(dependency) :], dependency]
                report.error(
                    ("software", index[dependency], "depends_on"),
                    "dependency cycle: " + " -> ".join(cycle),
                )
            elif dependency not in state:
                state[dependency] = "open"
                path.append(dependency)
                pending.append(iter(graph[dependency]))
