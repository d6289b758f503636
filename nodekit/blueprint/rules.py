"""Semantic rules: what the schema alone cannot say about a merged blueprint.

Each rule reads the typed :class:`Node` and reports through a
:class:`Report`, by model location. Items left out because of schema errors
are listed in :class:`Skipped`, so references to them are not reported twice.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

from pydantic import BaseModel, ValidationError

from nodekit.blueprint.equipment_rules import check_equipment
from nodekit.blueprint.model import Node, Software, parse_port
from nodekit.blueprint.order_rules import check_order
from nodekit.blueprint.packages import PACKAGES, MosquittoSettings, PackageSpec, ZoneRef
from nodekit.blueprint.report import Loc, Report
from nodekit.blueprint.source import Located, did_you_mean
from nodekit.blueprint.ssh_rules import check_ssh
from nodekit.blueprint.uplink_rules import check_uplink
from nodekit.blueprint.version_rules import check_versions

DOCKER_DEFAULT = ipaddress.IPv4Network("172.17.0.0/16")
NEEDS_HOST = ("printer", "cnc", "camera")


@dataclass
class Skipped:
    """Names of items left out of the checked model (they had schema errors)."""

    zones: set[str] = field(default_factory=set)
    hosts: set[str] = field(default_factory=set)
    software: set[str] = field(default_factory=set)


def check(node: Node, report: Report, skipped: Skipped) -> None:
    """Run every semantic rule on ``node``."""
    _zones(node, report)
    _addresses(node, report, skipped)
    _hosts(node, report)
    _equipment(node, report, skipped)
    _software(node, report, skipped)
    _dependency_cycles(node, report)
    _flows(node, report, skipped)
    _checks(node, report, skipped)
    _cloud(node, report)
    check_ssh(node, report)
    check_equipment(node, report, skipped)
    check_uplink(node, report, skipped)
    check_order(node, report, skipped)
    check_versions(node, report, skipped)


def unique_names(root: Located, report: Report, lists: Iterable[tuple[str, ...]]) -> None:
    """Names are unique in every named list (checked on the raw merged document)."""
    for path in lists:
        holder: Located | None = root
        for key in path:
            holder = holder.mapping.get(key) if holder and holder.mapping is not None else None
        if holder is None or holder.items is None:
            continue
        first: dict[str, Located] = {}
        for index, item in enumerate(holder.items):
            name = item.mapping.get("name") if item.mapping is not None else None
            if name is None or not isinstance(name.value, str):
                continue
            if name.value in first:
                where = first[name.value].origin
                report.error(
                    (*path, index, "name"),
                    f"duplicate name '{name.value}' (first defined at {where})",
                )
            else:
                first[name.value] = name


def _reference(
    report: Report, loc: Loc, what: str, name: str, known: Iterable[str], *, skipped: set[str]
) -> bool:
    """True when ``name`` is known; else reports it (unless it was skipped)."""
    names = sorted(set(known))
    if name in names:
        return True
    if name not in skipped:
        listed = ", ".join(names) if names else "none"
        report.error(loc, f"unknown {what} '{name}'{did_you_mean(name, names)}; known: {listed}")
    return False


def _zones(node: Node, report: Report) -> None:
    seen: dict[str, ipaddress.IPv4Network] = {}
    vlans: dict[int, str] = {}
    for i, zone in enumerate(node.network.zones):
        network = ipaddress.IPv4Network(zone.cidr)
        for other, other_network in seen.items():
            if network.overlaps(other_network):
                report.error(
                    ("network", "zones", i, "cidr"),
                    f"{zone.cidr} overlaps zone '{other}' ({other_network})",
                )
        seen.setdefault(zone.name, network)
        if zone.vlan is not None:
            if zone.vlan in vlans:
                report.error(
                    ("network", "zones", i, "vlan"),
                    f"vlan {zone.vlan} is already used by zone '{vlans[zone.vlan]}'",
                )
            vlans.setdefault(zone.vlan, zone.name)
        if node.site.target == "local" and network.overlaps(DOCKER_DEFAULT):
            report.warning(
                ("network", "zones", i, "cidr"),
                f"overlaps Docker's default bridge {DOCKER_DEFAULT}: "
                "the local target may fail to create this zone",
            )


def _addresses(node: Node, report: Report, skipped: Skipped) -> None:
    """Addresses sit inside their zone, are not its network or broadcast
    address, and are used once across compute, interfaces and equipment."""
    networks: dict[str, ipaddress.IPv4Network] = {}
    for zone in node.network.zones:
        networks.setdefault(zone.name, ipaddress.IPv4Network(zone.cidr))
    used: dict[str, Loc] = {}  # address -> where it is first used

    def place(zone_loc: Loc, zone: str | None, address_loc: Loc, address: str) -> None:
        if address in used:
            where = report.path(used[address])
            report.error(address_loc, f"{address} is already used by {where}")
        else:
            used[address] = address_loc
        if zone is None:
            report.error(zone_loc, "required with an address: the zone the address is in")
            return
        if not _reference(report, zone_loc, "zone", zone, networks, skipped=skipped.zones):
            return
        network, ip = networks[zone], ipaddress.IPv4Address(address)
        if ip not in network:
            report.error(address_loc, f"{address} is outside zone '{zone}' ({network})")
        elif network.prefixlen < 31 and ip == network.network_address:
            report.error(address_loc, f"{address} is the network address of zone '{zone}'")
        elif network.prefixlen < 31 and ip == network.broadcast_address:
            report.error(address_loc, f"{address} is the broadcast address of zone '{zone}'")

    for i, host in enumerate(node.compute):
        place(("compute", i, "zone"), host.zone, ("compute", i, "address"), host.address)
        zones = {host.zone}
        for j, interface in enumerate(host.interfaces):
            loc: Loc = ("compute", i, "interfaces", j)
            if interface.zone in zones:
                report.error(
                    (*loc, "zone"),
                    f"host '{host.name}' already has an address in zone '{interface.zone}'",
                )
            zones.add(interface.zone)
            place((*loc, "zone"), interface.zone, (*loc, "address"), interface.address)
    for i, item in enumerate(node.equipment):
        if item.address is None:
            if item.port is not None:
                report.error(("equipment", i, "port"), "a port needs the equipment's own address")
            continue
        place(("equipment", i, "zone"), item.zone, ("equipment", i, "address"), item.address)
    if node.site.target == "local":
        _bridge_room(node, report, set(used))


def highest_free_address(cidr: str, used: set[str]) -> str | None:
    """The highest usable address of a network that is not in ``used``, if any.

    The local target gives it to this machine's bridge on the zone's network.
    """
    network = ipaddress.IPv4Network(cidr)
    if network.prefixlen >= 31:
        return None  # no address to spare beside the hosts'
    low, candidate = int(network.network_address) + 1, int(network.broadcast_address) - 1
    while candidate >= low:
        if str(ipaddress.IPv4Address(candidate)) not in used:
            return str(ipaddress.IPv4Address(candidate))
        candidate -= 1
    return None


def _bridge_room(node: Node, report: Report, used: set[str]) -> None:
    """On the local target, each zone needs one address for this machine's bridge."""
    for i, zone in enumerate(node.network.zones):
        if highest_free_address(zone.cidr, used) is None:
            report.error(
                ("network", "zones", i, "cidr"),
                f"zone '{zone.name}' ({zone.cidr}) has no free address left: the local "
                "target needs one for this machine's bridge; use a larger cidr",
            )


def _hosts(node: Node, report: Report) -> None:
    target = node.site.target
    uplink = node.network.uplink
    outward = uplink is not None and uplink.type in ("vpn", "direct")
    for i, host in enumerate(node.compute):
        zones = node.addresses_of(host)
        # (a gateway in one zone routes between it and the uplink: a hub's)
        if host.role == "gateway" and len(zones) < 2 and not outward:
            report.warning(
                ("compute", i, "role"),
                f"a gateway routes between zones, but '{host.name}' has an address in "
                f"'{host.zone}' only: add interfaces in the zones it routes",
            )
        if target == "local" and host.resources and host.resources.disk_gb:
            report.error(
                ("compute", i, "resources", "disk_gb"),
                "the local target cannot size a container's disk (cpus and memory_mb it "
                "limits; disk_gb acts on the ssh target, where preflight checks the host has "
                "it): remove disk_gb",
            )
        if host.os != "debian-12":
            # (the field acts on the ssh target: preflight checks the host runs it)
            why = (
                "the local target makes debian-12 containers only"
                if target == "local"
                else "the site bundle and the roles are built for debian-12 only"
            )
            report.error(("compute", i, "os"), f"{why}: set os: debian-12 (or leave it out)")


def _equipment(node: Node, report: Report, skipped: Skipped) -> None:
    hosts = [host.name for host in node.compute]
    for i, item in enumerate(node.equipment):
        if item.host is not None:
            loc: Loc = ("equipment", i, "host")
            _reference(report, loc, "host", item.host, hosts, skipped=skipped.hosts)
        elif item.kind in NEEDS_HOST:
            report.error(
                ("equipment", i, "host"),
                f"required for a {item.kind}: the compute host that drives it",
            )


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
        _reference(report, ("software", i, "host"), "host", item.host, hosts, skipped=skipped.hosts)
        for j, dependency in enumerate(item.depends_on):
            loc: Loc = ("software", i, "depends_on", j)
            _reference(report, loc, "software", dependency, names, skipped=skipped.software)
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
                _reference(report, (*loc, name, j), "zone", zone, zones, skipped=skipped.zones)
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


def _flows(node: Node, report: Report, skipped: Skipped) -> None:
    zones = [zone.name for zone in node.network.zones]
    gateways = [set(node.addresses_of(host)) for host in node.gateways()]
    uplink = node.network.uplink
    for i, flow in enumerate(node.network.flows):
        loc: Loc = ("network", "flows", i)
        source = flow.from_ == "uplink" or _reference(
            report, (*loc, "from"), "zone", flow.from_, zones, skipped=skipped.zones
        )
        target = flow.to == "uplink" or _reference(
            report, (*loc, "to"), "zone", flow.to, zones, skipped=skipped.zones
        )
        for end, key in ((flow.from_, "from"), (flow.to, "to")):
            if end == "uplink" and (uplink is None or uplink.type == "none"):
                report.warning((*loc, key), "traffic through the uplink, but the network has none")
        if not (source and target):
            continue
        if flow.from_ == flow.to:
            if flow.to == "uplink":
                report.error(loc, "a flow goes from a zone to the uplink or back, not both")
                continue
            report.warning(loc, f"traffic within zone '{flow.to}' is always allowed: no effect")
        elif "uplink" in (flow.from_, flow.to):
            zone = flow.to if flow.from_ == "uplink" else flow.from_
            if not any(zone in own for own in gateways):
                report.warning(
                    loc,
                    f"no gateway has an address in '{zone}' to carry this flow "
                    "(the site's own firewall may)",
                )
        elif not any({flow.from_, flow.to} <= own for own in gateways):
            report.warning(
                loc,
                f"no gateway has addresses in both '{flow.from_}' and '{flow.to}' to carry "
                "this flow (the site's own firewall may)",
            )


def _checks(node: Node, report: Report, skipped: Skipped) -> None:
    hosts = [host.name for host in node.compute]
    for i, item in enumerate(node.checks):
        _reference(report, ("checks", i, "host"), "host", item.host, hosts, skipped=skipped.hosts)


def _cloud(node: Node, report: Report) -> None:
    cloud = node.cloud
    if cloud is None:
        return
    if cloud.dns.zone is None and node.network.domain is None:
        report.error(
            ("cloud", "dns", "zone"),
            "required when network.domain is not set (the zone of the hosts' DNS records)",
        )
    if cloud.dns.vpc_id is None:
        report.error(
            ("cloud", "dns", "vpc_id"),
            "required: the hosts' records go into a private hosted zone attached to this "
            "VPC, so site addresses are never published",
        )
    if cloud.iot.enabled and not node.gateways():
        report.warning(("cloud", "iot", "enabled"), "no gateway host to register with IoT")
