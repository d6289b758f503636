"""What the node's equipment asks of the rest of the blueprint, derived once.

For each `equipment[]` entry: the port it answers on, the host that checks it
in verify (its driving host, else a host in its zone), the edge collector
that polls it and whether telemetry is expected of it. For the node: the
broker users the collectors, ingests and MQTT devices get, and every
connection (source zone -> zone, port) those parts need, so that validation
can refuse a blueprint whose firewall would block them.

Pure functions over the merged blueprint's data (plain dicts): validation
and rendering call the same code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEFAULT_PORTS = {"moonraker": 7125, "octoprint": 80, "modbus-tcp": 502, "opcua": 4840, "rtsp": 554}
POLLED = ("moonraker", "octoprint", "modbus-tcp", "opcua")  # the collector reads these
COLLECTOR, INGEST, BROKER = "edge-collector", "telemetry-ingest", "mosquitto"


@dataclass(frozen=True)
class Duty:
    """One machine: where it answers and who checks and polls it."""

    index: int  # in equipment[]
    name: str
    kind: str
    protocol: str | None
    zone: str | None
    address: str | None
    port: int | None
    host: str | None  # the compute host that drives it
    probe_host: str | None  # runs its protocol check in verify
    collector: str | None  # the edge-collector software that polls it
    collector_host: str | None
    telemetry: bool  # rows are expected of it in the historian

    @property
    def checked(self) -> bool:
        return bool(self.protocol and self.address and self.probe_host)


@dataclass(frozen=True)
class Need:
    """A connection some part of the node needs through the zones' firewalls."""

    loc: tuple[str | int, ...]  # where in the blueprint the need comes from
    source: str  # a host or an equipment name
    source_zones: tuple[str, ...]  # every zone the source has an address in
    target: str
    target_zone: str
    port: int
    why: str

    def met(self, flows: list[dict[str, Any]]) -> bool:
        if self.target_zone in self.source_zones:
            return True
        return any(
            flow.get("from") == self.source_zones[0]
            and flow.get("to") == self.target_zone
            and covers(flow.get("ports") or [], self.port)
            for flow in flows
        )


def covers(ports: list[str], port: int) -> bool:
    for spec in ports:
        number, _, proto = str(spec).partition("/")
        low, _, high = number.partition("-")
        if proto == "tcp" and low.isdigit() and int(low) <= port <= int(high or low):
            return True
    return False


def _zones_of(host: dict[str, Any]) -> tuple[str, ...]:
    zones = [host["zone"]] + [i["zone"] for i in host.get("interfaces") or []]
    return tuple(dict.fromkeys(zones))


def _software(data: dict[str, Any], package: str) -> list[dict[str, Any]]:
    return [s for s in data.get("software") or [] if s.get("package") == package]


def broker_of(data: dict[str, Any], item: dict[str, Any]) -> dict[str, Any] | None:
    """The mosquitto software a collector or ingest talks to (``settings.broker``,
    else the node's only broker); None when there is none or it is ambiguous."""
    brokers = _software(data, BROKER)
    named = (item.get("settings") or {}).get("broker")
    if named:
        return next((b for b in brokers if b["name"] == named), None)
    return brokers[0] if len(brokers) == 1 else None


def device_broker(data: dict[str, Any]) -> dict[str, Any] | None:
    """The broker MQTT devices publish to: the first collector's, else the only one."""
    for collector in sorted(_software(data, COLLECTOR), key=lambda s: s["name"]):
        broker = broker_of(data, collector)
        if broker:
            return broker
    brokers = _software(data, BROKER)
    return brokers[0] if len(brokers) == 1 else None


def broker_port(broker: dict[str, Any]) -> int:
    ports = broker.get("ports") or ["1883/tcp"]
    return int(str(ports[0]).split("/", 1)[0])


def _hosts_in(compute: list[dict[str, Any]], zone: str) -> list[dict[str, Any]]:
    """Hosts with an address in ``zone``: hosts of the zone first, gateways last."""
    inside = [c for c in compute if zone in _zones_of(c)]
    return sorted(inside, key=lambda c: (c.get("role") == "gateway", c["zone"] != zone, c["name"]))


def duties(data: dict[str, Any]) -> list[Duty]:
    compute = data.get("compute") or []
    collectors = sorted(_software(data, COLLECTOR), key=lambda s: s["name"])
    ingest = bool(_software(data, INGEST))
    result = []
    for index, item in enumerate(data.get("equipment") or []):
        protocol, zone, host = item.get("protocol"), item.get("zone"), item.get("host")
        in_zone = _hosts_in(compute, zone) if zone else []
        probe = host or (in_zone[0]["name"] if in_zone else None)
        collector = None
        if protocol in POLLED and item.get("address"):
            if host:
                collector = next((c for c in collectors if c["host"] == host), None)
            else:
                names = [h["name"] for h in in_zone]
                collector = next((c for c in collectors if c["host"] in names), None)
        device = protocol == "mqtt" and device_broker(data) is not None
        port = item.get("port") or DEFAULT_PORTS.get(protocol or "")
        result.append(
            Duty(
                index=index,
                name=item["name"],
                kind=item["kind"],
                protocol=protocol,
                zone=zone,
                address=item.get("address"),
                port=int(port) if port and protocol != "mqtt" else None,
                host=host,
                probe_host=probe if protocol and protocol != "mqtt" else None,
                collector=collector["name"] if collector else None,
                collector_host=collector["host"] if collector else None,
                telemetry=ingest and (collector is not None or device),
            )
        )
    return result


def broker_users(data: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    """Broker software name -> (user, secret name) nodekit adds for its own parts:
    each collector and ingest (user = its software name) and each MQTT device
    (user = the equipment's name, secret ``equipment/<name>/password``)."""
    users: dict[str, list[tuple[str, str]]] = {}
    for item in _software(data, COLLECTOR) + _software(data, INGEST):
        broker = broker_of(data, item)
        if broker:
            users.setdefault(broker["name"], []).append(
                (item["name"], f"{broker['name']}/{item['name']}")
            )
    device = device_broker(data)
    for item in data.get("equipment") or []:
        if item.get("protocol") == "mqtt" and device:
            users.setdefault(device["name"], []).append(
                (item["name"], f"equipment/{item['name']}/password")
            )
    return {name: sorted(set(pairs)) for name, pairs in users.items()}


def equipment_secrets(data: dict[str, Any]) -> list[str]:
    """Secret names the equipment needs: an OctoPrint API key, an OPC UA or MQTT password."""
    names = []
    for item in data.get("equipment") or []:
        protocol = item.get("protocol")
        if protocol == "octoprint":
            names.append(f"equipment/{item['name']}/api_key")
        elif protocol in ("opcua", "mqtt"):
            names.append(f"equipment/{item['name']}/password")
    return names


def needs(data: dict[str, Any]) -> list[Need]:
    """Every connection the equipment checks, collectors, ingests and devices need."""
    compute = {c["name"]: c for c in data.get("compute") or []}
    # (loc, source host or device zones, target, target zone, port, why)
    wanted: list[tuple[tuple[str | int, ...], str, tuple[str, ...], str, str, int, str]] = []

    def zones(host: str) -> tuple[str, ...]:
        return _zones_of(compute[host]) if host in compute else ()

    for duty in duties(data):
        if not (duty.address and duty.zone and duty.port):
            continue
        loc: tuple[str | int, ...] = ("equipment", duty.index)
        if duty.probe_host:
            why = f"verify checks {duty.name} over {duty.protocol} from {duty.probe_host}"
            wanted.append((loc, duty.probe_host, zones(duty.probe_host), duty.name, duty.zone,
                           duty.port, why))  # fmt: skip
        if duty.collector_host and duty.collector_host != duty.probe_host:
            why = f"{duty.collector} polls {duty.name} over {duty.protocol}"
            wanted.append((loc, duty.collector_host, zones(duty.collector_host), duty.name,
                           duty.zone, duty.port, why))  # fmt: skip
    for index, item in enumerate(data.get("software") or []):
        broker = broker_of(data, item) if item.get("package") in (COLLECTOR, INGEST) else None
        if broker and broker["host"] in compute:
            why = f"{item['name']} connects to the broker {broker['name']}"
            wanted.append((("software", index), item["host"], zones(item["host"]), broker["name"],
                           compute[broker["host"]]["zone"], broker_port(broker), why))  # fmt: skip
    device = device_broker(data)
    for index, item in enumerate(data.get("equipment") or []):
        if (
            item.get("protocol") == "mqtt"
            and device
            and item.get("zone")
            and (device["host"] in compute)
        ):
            why = f"{item['name']} publishes to the broker {device['name']}"
            wanted.append((("equipment", index), item["name"], (item["zone"],), device["name"],
                           compute[device["host"]]["zone"], broker_port(device), why))  # fmt: skip
    return [Need(loc, src, zs, tgt, zone, port, why)
            for loc, src, zs, tgt, zone, port, why in wanted if zs]  # fmt: skip
