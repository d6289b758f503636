"""The verification a blueprint implies: which checks the rendered testinfra module runs."""

from __future__ import annotations

from typing import Any

from nodekit.render.plan import HostPlan, NodePlan, address_seen_from, port_number, port_proto

Row = tuple[Any, ...]
SSH = "22/tcp"


def host_specs(node: NodePlan) -> dict[str, str]:
    """testinfra connection strings, one per host."""
    from nodekit.targets import target_for

    target = target_for(node)
    return {h.name: target.testinfra_spec(h) for h in node.hosts}


def services(node: NodePlan) -> list[Row]:
    return [(s.host, s.name, s.unit, list(s.ports)) for s in node.services]


def unit_order(node: NodePlan) -> list[Row]:
    """depends_on on one host: (host, unit, the units it starts after)."""
    from nodekit.render.ansible import unit_order as order

    return [(h.name, row["unit"], row["after"]) for h in node.hosts for row in order(h)]


def fqdns(node: NodePlan) -> list[Row]:
    """network.domain: (host, its FQDN, the next host by name, that one's FQDN, the
    address it reaches it at): `hostname -f`, and names resolved without DNS."""
    names = sorted(h.name for h in node.hosts) if node.domain else []
    rows: list[Row] = []
    for i, name in enumerate(names):
        other = node.host(names[(i + 1) % len(names)])
        seen = address_seen_from(node.host(name), other)
        rows.append((name, node.fqdn(name), other.name, node.fqdn(other.name), seen))
    return rows


def declared_checks(node: NodePlan) -> list[Row]:
    rows: list[Row] = []
    for check in node.checks:
        for kind in ("service", "port", "package", "file", "command"):
            if check.get(kind):
                expected = check.get("contains") if kind == "file" else None
                rows.append((check["host"], kind, check[kind], expected))
    return rows


def _reaches(source: HostPlan, zone_cidr: str, zone: str) -> bool:
    """Whether a host has an address in the zone or a route to it."""
    return zone in source.addresses or any(cidr == zone_cidr for cidr, _ in source.routes)


def _sources(node: NodePlan, zone: str, target_zone: str) -> list[HostPlan]:
    cidr = node.zone(target_zone).cidr
    return [
        h
        for h in node.hosts
        if h.zone == zone and not h.is_gateway and _reaches(h, cidr, target_zone)
    ]


def _allowed(node: NodePlan, source_zone: str, target_zone: str, port: str) -> bool:
    number, proto = port_number(port), port_proto(port)
    for flow in node.flows:
        if flow["from"] != source_zone or flow["to"] != target_zone:
            continue
        for spec in flow["ports"]:
            low, _, high = spec.split("/", 1)[0].partition("-")
            if port_proto(spec) == proto and int(low) <= number <= int(high or low):
                return True
    return False


# Ports probed between zones where no flow opens them: remote access, plaintext
# OT protocols, databases, brokers, web (the sample a segmentation audit uses).
DENIED_SAMPLE = ("22/tcp", "23/tcp", "80/tcp", "502/tcp", "1883/tcp", "5432/tcp", "9100/tcp",
                 "icmp")  # fmt: skip
BASE_PACKAGES = ("chrony", "nftables", "openssh-server")  # every host, roles base and firewall


def _targets(node: NodePlan, zone: str, port: str | None = None) -> list[HostPlan]:
    """Non-gateway hosts with an address in ``zone``; those listening on ``port`` first."""
    hosts = [h for h in node.hosts if zone in h.addresses and not h.is_gateway]

    def listens(h: HostPlan) -> bool:
        return port is not None and any(
            port_number(p) == port_number(port) and port_proto(p) == "tcp"
            for s in h.services for p in s.ports
        )  # fmt: skip

    return sorted(hosts, key=lambda h: (not listens(h), h.zone != zone, h.name))


def zone_matrix(node: NodePlan) -> tuple[list[Row], list[Row]]:
    """The live segmentation proof, for every ordered pair of zones a gateway joins:
    (allowed, denied) probes as (source host, target host, address, port). Each
    allowed tcp port must get through (an answer or a refusal from the target),
    each sampled port no flow opens must be blocked."""
    allowed: list[Row] = []
    denied: list[Row] = []
    for a in node.zones:
        for b in node.zones:
            sources = _sources(node, a.name, b.name) if a.name != b.name else []
            if not sources:
                continue
            source = sources[0]
            ports = sorted({
                f"{spec.split('/')[0].split('-')[0]}/tcp"
                for f in node.flows if (f["from"], f["to"]) == (a.name, b.name)
                for spec in f["ports"] if port_proto(spec) == "tcp"
            })  # fmt: skip
            for port in ports:
                target = next(iter(_targets(node, b.name, port)), None)
                if target and target.name != source.name:
                    allowed.append((source.name, target.name, target.addresses[b.name], port))
            target = next((h for h in _targets(node, b.name) if h.zone == b.name), None)
            if target is None or target.name == source.name:
                continue
            for port in DENIED_SAMPLE:
                if port == "icmp" or not _allowed(node, a.name, b.name, port):
                    denied.append((source.name, target.name, target.addresses[b.name], port))
    return sorted(set(allowed)), sorted(set(denied))


def packages(node: NodePlan) -> list[Row]:
    """(host, Debian packages nodekit installs there): verify records their versions."""
    from nodekit.blueprint.packages import PACKAGES

    return [
        (h.name, sorted({*BASE_PACKAGES, *(a for s in h.services
                                            for a in PACKAGES[s.package].apt_packages)}))
        for h in node.hosts
    ]  # fmt: skip


def pins(node: NodePlan) -> list[Row]:
    """(host, software, Debian package, version): software[].version installed exactly."""
    return [(s.host, s.name, *s.pin) for s in node.services if s.pin]


def equipment(node: NodePlan) -> list[Row]:
    """(host, equipment, protocol, address:port): each machine checked over its
    protocol from the host that drives it (else a host in its zone)."""
    return [
        (m.duty.probe_host, m.name, m.duty.protocol, f"{m.duty.address}:{m.duty.port}")
        for m in node.equipment
        if m.duty.checked
    ]


def telemetry(node: NodePlan) -> list[Row]:
    """(historian host, database, port, equipment, seconds to wait): rows newer
    than a minute are expected of every machine a collector polls or that
    publishes itself, in each telemetry-ingest's database."""
    rows: list[Row] = []
    interval = max(
        [int(s.settings.get("interval_s") or 5) for s in node.services
         if s.package == "edge-collector"] or [5]
    )  # fmt: skip
    for service in node.services:
        if service.package != "telemetry-ingest":
            continue
        database = str(service.settings.get("database") or "historian")
        postgres = next(s for s in node.services if s.name == service.store)
        for machine in node.equipment:
            stand_in = node.target != "local" or machine.twin  # local: only twins publish
            if machine.duty.telemetry and stand_in:
                wait = max(45, 3 * interval)
                rows.append(
                    (service.host, database, port_number(postgres.ports[0]), machine.name, wait)
                )
    return rows
