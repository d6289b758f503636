"""The built-in OT security rules: each with an id, a default severity and the
IEC 62443-3-3 system requirement (SR) it maps to.

A rule reads a merged blueprint's data and yields hits: the key path where
the problem is (so findings point at FILE:LINE), a message that says what to
change, and the zone a waiver may name. Rules judge designs that *work*;
what cannot work is validation's business.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from nodekit.blueprint.equipment import DEFAULT_PORTS, needs
from nodekit.blueprint.ssh_rules import effective_ssh

Data = dict[str, Any]
UPLINK = "uplink"
UPLINK_LEVEL = 5.0  # what arrives through the uplink is treated as enterprise or beyond
LEVELS = (0.0, 1.0, 2.0, 3.0, 3.5, 4.0, 5.0)
PLAINTEXT = {21: "FTP", 23: "telnet", 80: "HTTP", 502: "Modbus TCP", 1883: "MQTT",
             20000: "DNP3", 44818: "EtherNet/IP"}  # fmt: skip
PLAINTEXT_PROTOCOLS = ("moonraker", "octoprint", "modbus-tcp", "rtsp")  # equipment over plaintext


@dataclass(frozen=True)
class Hit:
    path: str  # key path in the merged blueprint, e.g. ``network.flows[0].ports``
    message: str
    zone: str | None = None  # the zone a waiver can name


@dataclass(frozen=True)
class Rule:
    id: str
    severity: str  # default: error, warning or note
    sr: str  # the IEC 62443-3-3 system requirement, e.g. "SR 5.1"
    title: str
    help: str  # what to change
    check: Callable[[Data, Limits], Iterator[Hit]]


@dataclass(frozen=True)
class Limits:
    port_range: int = 100  # widest port range a conduit may open, in ports


def _zones(data: Data) -> dict[str, Data]:
    return {z["name"]: z for z in data["network"]["zones"]}


def _flows(data: Data) -> list[tuple[int, Data]]:
    return list(enumerate(data["network"].get("flows") or []))


def _ports(spec: str) -> tuple[int, int, str]:
    numbers, _, proto = spec.partition("/")
    low, _, high = numbers.partition("-")
    return int(low), int(high or low), proto or "tcp"


def _covers(flow: Data, port: int, proto: str = "tcp") -> str | None:
    """The flow's port spec that opens ``port``, if any."""
    for spec in flow["ports"]:
        low, high, p = _ports(spec)
        if p == proto and low <= port <= high:
            return str(spec)
    return None


def _level(data: Data, zone: str) -> float | None:
    if zone == UPLINK:
        return UPLINK_LEVEL
    value = _zones(data).get(zone, {}).get("purdue_level")
    return None if value is None else float(value)


def _show(level: float) -> str:
    return str(int(level)) if level.is_integer() else str(level)


def _is_ot(data: Data, zone: str) -> bool:
    info = _zones(data).get(zone, {})
    level = info.get("purdue_level")
    return (level is not None and float(level) <= 3) or (
        level is None and info.get("purpose") == "ot"
    )


def conduit_purpose(data: Data, limits: Limits) -> Iterator[Hit]:
    for i, flow in _flows(data):
        if not flow.get("purpose"):
            yield Hit(
                f"network.flows[{i}]",
                f"conduit {flow['from']} -> {flow['to']} names no purpose: add `purpose:` "
                "saying what the traffic is for",
                flow["to"],
            )


def purdue_skip(data: Data, limits: Limits) -> Iterator[Hit]:
    for i, flow in _flows(data):
        a, b = _level(data, flow["from"]), _level(data, flow["to"])
        if a is None or b is None:
            continue
        gap = abs(LEVELS.index(a) - LEVELS.index(b))
        if gap > 1:
            yield Hit(
                f"network.flows[{i}]",
                f"conduit {flow['from']} (level {_show(a)}) -> {flow['to']} (level {_show(b)}) "
                "skips Purdue levels: route it through a zone in between (a DMZ, level 3.5, "
                "between OT and enterprise)",
                flow["to"] if flow["to"] != UPLINK else flow["from"],
            )


def uplink_into_ot(data: Data, limits: Limits) -> Iterator[Hit]:
    for i, flow in _flows(data):
        if flow["from"] == UPLINK and _is_ot(data, flow["to"]):
            yield Hit(
                f"network.flows[{i}].from",
                f"traffic from the uplink may enter OT zone {flow['to']}: let it end in a DMZ "
                "and reach OT only from there",
                flow["to"],
            )


def plaintext_across_boundary(data: Data, limits: Limits) -> Iterator[Hit]:
    zones = _zones(data)
    for i, flow in _flows(data):
        levels = [
            int(zones[z].get("security_level") or 0)
            for z in (flow["from"], flow["to"]) if z in zones
        ]  # fmt: skip
        if flow["from"] == UPLINK or flow["to"] == UPLINK:
            levels.append(2)  # the uplink is an untrusted network
        if max(levels, default=0) < 2:
            continue
        for port, name in sorted(PLAINTEXT.items()):
            spec = _covers(flow, port)
            if spec:
                yield Hit(
                    f"network.flows[{i}].ports",
                    f"{name} ({spec}, plaintext) crosses the boundary {flow['from']} -> "
                    f"{flow['to']} of a zone with security level 2 or more: use its TLS port, "
                    "or waive with a reason until it is available",
                    flow["to"] if flow["to"] in zones else flow["from"],
                )


def bridge_plaintext(data: Data, limits: Limits) -> Iterator[Hit]:
    # nodekit's bridges are TLS (8883); a conduit through the uplink that opens
    # plaintext MQTT (1883) is someone else's, in the clear on an untrusted network.
    for index, flow in enumerate(data["network"].get("flows") or []):
        if UPLINK not in (flow["from"], flow["to"]):
            continue
        for spec in flow["ports"]:
            low, _, high = spec.split("/", 1)[0].partition("-")
            if spec.endswith("/tcp") and int(low) <= 1883 <= int(high or low):
                yield Hit(
                    f"network.flows[{index}].ports",
                    f"conduit {flow['from']} -> {flow['to']} carries plaintext MQTT (1883/tcp) "
                    "over the uplink: bridge over TLS on 8883 (nodekit's bridges do)",
                    flow["to"] if flow["to"] != UPLINK else flow["from"],
                )


def _management(data: Data, host: Data) -> list[str]:
    """The host's management sources as CIDRs (default: its own zones)."""
    zones = _zones(data)
    own = [host["zone"], *(i["zone"] for i in host.get("interfaces") or [])]
    sources = effective_ssh(data["site"].get("ssh"), host.get("ssh")).get("allow_from") or own
    return [zones[s]["cidr"] if s in zones else str(s) for s in sources]


def _inside(cidr: str, sources: list[str]) -> bool:
    net = ipaddress.ip_network(cidr, strict=False)
    for source in sources:
        try:
            if net.subnet_of(ipaddress.ip_network(source, strict=False)):  # type: ignore[arg-type]
                return True
        except ValueError:
            continue
    return False


def ssh_from_management(data: Data, limits: Limits) -> Iterator[Hit]:
    zones = _zones(data)
    compute = data.get("compute") or []
    for i, flow in _flows(data):
        for host in compute:
            in_zone = flow["to"] in (
                host["zone"],
                *(x["zone"] for x in host.get("interfaces") or []),
            )
            port = int(effective_ssh(data["site"].get("ssh"), host.get("ssh")).get("port") or 22)
            spec = _covers(flow, port) if in_zone else None
            if not spec:
                continue
            source = flow["from"]
            allowed = source in zones and _inside(zones[source]["cidr"], _management(data, host))
            if not allowed:
                yield Hit(
                    f"network.flows[{i}].ports",
                    f"conduit {source} -> {flow['to']} opens SSH ({spec}) to {host['name']}, "
                    f"and {source} is not among its management sources: remove the port, or "
                    "add the zone to ssh.allow_from",
                    flow["to"],
                )


def port_range_wide(data: Data, limits: Limits) -> Iterator[Hit]:
    for i, flow in _flows(data):
        for spec in flow["ports"]:
            low, high, _ = _ports(spec)
            if high - low + 1 > limits.port_range:
                yield Hit(
                    f"network.flows[{i}].ports",
                    f"conduit {flow['from']} -> {flow['to']} opens {high - low + 1} ports "
                    f"({spec}), more than the limit of {limits.port_range}: open only the "
                    "ports the traffic uses",
                    flow["to"],
                )


def equipment_exposed(data: Data, limits: Limits) -> Iterator[Hit]:
    wanted = {(zone, n.target, n.port) for n in needs(data) for zone in n.source_zones}
    for i, flow in _flows(data):
        for item in data.get("equipment") or []:
            port = item.get("port") or DEFAULT_PORTS.get(item.get("protocol") or "")
            if not (item.get("address") and item.get("zone") == flow["to"] and port):
                continue
            spec = _covers(flow, int(port))
            if spec and (flow["from"], item["name"], int(port)) not in wanted:
                yield Hit(
                    f"network.flows[{i}].ports",
                    f"conduit {flow['from']} -> {flow['to']} opens {item['name']}'s port "
                    f"({spec}), and nothing nodekit runs in {flow['from']} needs it: machines "
                    "are reached from their zone and the conduits their checks and collectors "
                    "need",
                    flow["to"],
                )


def mqtt_anonymous(data: Data, limits: Limits) -> Iterator[Hit]:
    for item in data.get("software") or []:
        settings = item.get("settings") or {}
        if item["package"] == "mosquitto" and settings.get("allow_anonymous"):
            host = next(c for c in data.get("compute") or [] if c["name"] == item["host"])
            yield Hit(
                f"software[{item['name']}].settings.allow_anonymous",
                f"broker {item['name']} lets clients in without a user name: set "
                "allow_anonymous: false and give each client a user",
                host["zone"],
            )


def zone_unclassified(data: Data, limits: Limits) -> Iterator[Hit]:
    for zone in data["network"]["zones"]:
        missing = [k for k in ("security_level", "purdue_level") if zone.get(k) is None]
        if missing:
            yield Hit(
                f"network.zones[{zone['name']}]",
                f"zone {zone['name']} has no {' and no '.join(missing)}: set them, so its "
                "conduits can be judged",
                zone["name"],
            )


def security_level_step(data: Data, limits: Limits) -> Iterator[Hit]:
    zones = _zones(data)
    for i, flow in _flows(data):
        src, dst = zones.get(flow["from"], {}), zones.get(flow["to"], {})
        low, high = src.get("security_level"), dst.get("security_level")
        if low and high and high - low >= 2:
            yield Hit(
                f"network.flows[{i}]",
                f"conduit into {flow['to']} (SL {high}) from {flow['from']} (SL {low}), two "
                "or more levels below it: put a zone in between, or raise the source's level",
                flow["to"],
            )


RULES: tuple[Rule, ...] = (
    Rule("conduit-purpose", "error", "SR 5.1", "Every conduit names its purpose",
         "Add `purpose:` to the flow.", conduit_purpose),
    Rule("purdue-skip", "error", "SR 5.1", "No conduit skips Purdue levels",
         "Route the traffic through the level in between (a DMZ between OT and enterprise).",
         purdue_skip),
    Rule("uplink-into-ot", "error", "SR 5.2", "Nothing from the uplink into an OT zone",
         "End uplink traffic in a DMZ.", uplink_into_ot),
    Rule("plaintext-across-boundary", "error", "SR 4.1",
         "No plaintext protocol across the boundary of a zone with SL 2 or more",
         "Use the protocol's TLS port, or waive with a reason and expiry.",
         plaintext_across_boundary),
    Rule("bridge-plaintext", "error", "SR 1.13",
         "No plaintext MQTT over the uplink (an untrusted network)",
         "Bridge over TLS, or waive with a reason and expiry.", bridge_plaintext),
    Rule("ssh-from-management", "error", "SR 1.13", "SSH only from the management sources",
         "Remove the SSH port from the conduit, or add its zone to ssh.allow_from.",
         ssh_from_management),
    Rule("port-range-wide", "warning", "SR 5.1", "No port range wider than the limit",
         "Open only the ports used (limit: policy file `limits.port_range`).", port_range_wide),
    Rule("equipment-exposed", "error", "SR 5.2",
         "Equipment reachable only from its zone and the conduits its checks need",
         "Remove the machine's port from the conduit.", equipment_exposed),
    Rule("mqtt-anonymous", "error", "SR 1.1", "Brokers identify every client",
         "Set allow_anonymous: false.", mqtt_anonymous),
    Rule("zone-unclassified", "warning", "SR 5.1", "Every zone has a security and Purdue level",
         "Set security_level and purdue_level on the zone.", zone_unclassified),
    Rule("security-level-step", "warning", "SR 5.2",
         "No conduit into a zone from one two or more security levels below",
         "Put a zone in between, or raise the source zone's level.", security_level_step),
)  # fmt: skip
WAIVER_EXPIRED = Rule(
    "waiver-expired", "error", "SR 5.1", "Every waiver is within its expiry",
    "Renew the waiver with a new reason and date, or fix the finding.",
    lambda data, limits: iter(()),
)  # fmt: skip
BY_ID = {r.id: r for r in (*RULES, WAIVER_EXPIRED)}
