"""The verification a blueprint implies: which checks the rendered testinfra module runs."""

from __future__ import annotations

from typing import Any

from nodekit.render.plan import HostPlan, NodePlan, port_number, port_proto

Row = tuple[Any, ...]
SSH = "22/tcp"


def host_specs(node: NodePlan) -> dict[str, str]:
    """testinfra connection strings, one per host."""
    from nodekit.targets import target_for

    target = target_for(node)
    return {h.name: target.testinfra_spec(h) for h in node.hosts}


def services(node: NodePlan) -> list[Row]:
    return [(s.host, s.name, s.unit, list(s.ports)) for s in node.services]


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


def flows_allowed(node: NodePlan) -> list[Row]:
    """One probe per allowed tcp flow port where a service listens and a gateway carries it."""
    rows: list[Row] = []
    for flow in node.flows:
        if flow["from"] == "uplink":
            continue  # the uplink is outside this node: nothing here can probe it
        sources = _sources(node, flow["from"], flow["to"])
        if not sources:
            continue
        for spec in flow["ports"]:
            if port_proto(spec) != "tcp":
                continue  # a udp probe cannot tell "refused" from "nobody answered"
            for target in node.hosts:
                if target.is_gateway:
                    continue  # probe forwarding through the gateway, not the gateway itself
                address = target.addresses.get(flow["to"])
                listening = any(
                    p == spec or (port_number(p) == port_number(spec) and port_proto(p) == "tcp")
                    for s in target.services
                    for p in s.ports
                )
                if address and listening and target.name != sources[0].name:
                    rows.append((sources[0].name, target.name, address, f"{port_number(spec)}/tcp"))
    return sorted(set(rows))


def flows_denied(node: NodePlan) -> list[Row]:
    """For each ordered pair of zones a gateway joins: ssh (always listening) must be
    refused from a host of one zone to a non-gateway host of the other, unless a flow
    allows it."""
    rows: list[Row] = []
    for source_zone in node.zones:
        for target_zone in node.zones:
            if source_zone.name == target_zone.name:
                continue
            if _allowed(node, source_zone.name, target_zone.name, SSH):
                continue
            sources = _sources(node, source_zone.name, target_zone.name)
            targets = [h for h in node.hosts if h.zone == target_zone.name and not h.is_gateway]
            if sources and targets:
                rows.append((sources[0].name, targets[0].name, targets[0].address, SSH))
    return sorted(rows)


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
