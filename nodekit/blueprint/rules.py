"""Semantic rules: what the schema alone cannot say about a merged blueprint.

Each rule reads the typed :class:`Node` and reports through a
:class:`Report`, by model location. Items left out because of schema errors
are listed in :class:`Skipped`, so references to them are not reported twice.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

from nodekit.blueprint.equipment_rules import check_equipment
from nodekit.blueprint.model import Node
from nodekit.blueprint.order_rules import check_order
from nodekit.blueprint.report import Loc, Report, reference
from nodekit.blueprint.software_rules import check_software
from nodekit.blueprint.source import Located
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
    check_software(node, report, skipped)
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
        if not reference(report, zone_loc, "zone", zone, networks, skipped=skipped.zones):
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
            reference(report, loc, "host", item.host, hosts, skipped=skipped.hosts)
        elif item.kind in NEEDS_HOST:
            report.error(
                ("equipment", i, "host"),
                f"required for a {item.kind}: the compute host that drives it",
            )


def _flows(node: Node, report: Report, skipped: Skipped) -> None:
    zones = [zone.name for zone in node.network.zones]
    gateways = [set(node.addresses_of(host)) for host in node.gateways()]
    uplink = node.network.uplink
    for i, flow in enumerate(node.network.flows):
        loc: Loc = ("network", "flows", i)
        source = flow.from_ == "uplink" or reference(
            report, (*loc, "from"), "zone", flow.from_, zones, skipped=skipped.zones
        )
        target = flow.to == "uplink" or reference(
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
        reference(report, ("checks", i, "host"), "host", item.host, hosts, skipped=skipped.hosts)


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
