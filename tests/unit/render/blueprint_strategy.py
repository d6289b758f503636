"""A hypothesis strategy of valid blueprints that cover the settings space.

Shapes: one to three zones, one to four hosts, an optional gateway joining
every zone, flows, equipment, checks, an uplink, ssh settings; every package
nodekit ships on some host, each list setting empty, one item or several.
Every generated blueprint must validate: the generator is part of the test.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from nodekit.blueprint.order_rules import PLAY_ORDER
from nodekit.blueprint.packages import PACKAGES

NAMES = ["edge", "historian", "ops", "grafana", "mes", "quality", "line_2"]
TOPICS = ["telemetry/#", "quality/#", "nodekit/cell/+/alarm"]
AGENTS = ("edge-collector", "telemetry-ingest")  # placed beside the broker, below
PORTS = {  # one listener each, two choices per package: never a clash on a host
    "mosquitto": ["1883/tcp", "1884/tcp"],
    "postgresql": ["5432/tcp", "5433/tcp"],
    "node-exporter": ["9100/tcp", "9101/tcp"],
    "prometheus": ["9090/tcp", "9091/tcp"],
}


def _names(draw: st.DrawFn) -> list[str]:
    return draw(st.lists(st.sampled_from(NAMES), max_size=3, unique=True))


def _settings(
    draw: st.DrawFn, package: str, zones: list[str], uplink: bool, gateway: bool = False
) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    if package == "mosquitto":
        if draw(st.booleans()):
            settings["users"] = _names(draw)
        if draw(st.booleans()):
            settings["allow_anonymous"] = draw(st.booleans())
        if uplink and draw(st.booleans()):
            settings["bridge_topics"] = draw(st.lists(st.sampled_from(TOPICS), unique=True))
        if uplink and not gateway and draw(st.booleans()):
            settings["accept_bridges"] = True  # a hub's broker (never on its gateway)
    elif package == "postgresql":
        for key in ("databases", "users"):
            if draw(st.booleans()):
                settings[key] = _names(draw)
        if draw(st.booleans()):
            settings["allowed_zones"] = draw(st.lists(st.sampled_from(zones), unique=True))
    elif package == "prometheus":
        if draw(st.booleans()):
            settings["retention_days"] = draw(st.integers(1, 3650))
        if draw(st.booleans()):
            settings["scrape_interval_s"] = draw(st.integers(1, 3600))
    return settings


@st.composite
def blueprints(draw: st.DrawFn) -> dict[str, Any]:
    target = draw(st.sampled_from(["local", "local", "ssh"]))
    zones = [f"z{i}" for i in range(draw(st.integers(1, 3)))]
    network: dict[str, Any] = {
        "zones": [
            {"name": z, "cidr": f"10.60.{i}.0/24"}
            | ({"vlan": 100 + i} if draw(st.booleans()) else {})
            for i, z in enumerate(zones)
        ]
    }
    if draw(st.booleans()):
        network["domain"] = "site.example.internal"
    uplink = draw(st.sampled_from([None, "none", "vpn", "direct"]))
    if uplink:
        network["uplink"] = {"type": uplink} | (
            {"peer": "10.60.0.200"} if uplink in ("vpn", "direct") else {}
        )
    can_bridge = uplink in ("vpn", "direct")

    compute: list[dict[str, Any]] = []
    if len(zones) > 1 and draw(st.booleans()):
        compute.append(
            {"name": "gw", "role": "gateway", "zone": zones[0], "address": "10.60.0.1"}
            | {
                "interfaces": [
                    {"zone": z, "address": f"10.60.{i}.1"} for i, z in enumerate(zones) if i
                ]
            }
        )
    for i in range(draw(st.integers(1, 4))):
        zone = draw(st.sampled_from(zones))
        host: dict[str, Any] = {
            "name": f"h{i}",
            "role": draw(st.sampled_from(["edge", "controller"])),
            "zone": zone,
            "address": f"10.60.{zones.index(zone)}.{10 + i}",
        }
        if draw(st.booleans()):
            host["resources"] = {"cpus": 1, "memory_mb": draw(st.sampled_from([256, 512]))}
        if target == "ssh" and draw(st.booleans()):
            host["ssh"] = {"user": "ops", "port": draw(st.sampled_from([22, 2222]))}
        compute.append(host)
    hosts = [c["name"] for c in compute]
    gateway = any(c["role"] == "gateway" for c in compute)
    if can_bridge and target == "local" and not gateway:
        # on the local target an uplink meets the WAN through a gateway
        network["uplink"] = {"type": "none"}
        can_bridge = False

    software: list[dict[str, Any]] = []
    for package in sorted(set(PACKAGES) - set(AGENTS)):
        placed = draw(st.lists(st.sampled_from(hosts), max_size=2, unique=True))
        if package != "node-exporter":
            placed = placed[:1]
        for host_name in placed:
            item: dict[str, Any] = {
                "name": f"{package}-{host_name}",
                "package": package,
                "host": host_name,
            }
            if draw(st.booleans()):
                item["ports"] = [draw(st.sampled_from(PORTS[package]))]
            on_gateway = any(c["name"] == host_name and c["role"] == "gateway" for c in compute)
            settings = _settings(draw, package, zones, can_bridge, on_gateway)
            if settings or draw(st.booleans()):
                item["settings"] = settings
            software.append(item)
    # The agents talk to the broker: on the broker's own host, so no flow is needed;
    # the ingest writes to PostgreSQL on its host.
    broker = next((s for s in software if s["package"] == "mosquitto"), None)
    if broker and draw(st.booleans()):
        collector: dict[str, Any] = {
            "name": "collector", "package": "edge-collector", "host": broker["host"],
        }  # fmt: skip
        if draw(st.booleans()):
            # (no QC band: a band must name a metric of a machine the collector polls,
            # and these blueprints give it none)
            collector["settings"] = {"interval_s": draw(st.integers(1, 60))}
        software.append(collector)
    local_db = [s for s in software if s["package"] == "postgresql" and broker
                and s["host"] == broker["host"]]  # fmt: skip
    if broker and local_db and draw(st.booleans()):
        software.append({"name": "ingest", "package": "telemetry-ingest", "host": broker["host"]})
    first = software[0] if software else None
    for item in software[1:]:
        assert first is not None
        earlier = PLAY_ORDER.index(first["package"]) < PLAY_ORDER.index(item["package"])
        if earlier and draw(st.booleans()):  # (a later package cannot be waited for)
            item["depends_on"] = [first["name"]]

    flows = []
    for source in [*zones, "uplink"]:
        for dest in zones:
            if source != dest and draw(st.integers(0, 3)) == 0:
                ports = draw(
                    st.lists(
                        st.sampled_from(["1883/tcp", "5432/tcp", "9100/tcp", "5000-5010/udp"]),
                        min_size=1,
                        unique=True,
                    )
                )
                flows.append({"from": source, "to": dest, "ports": ports})
    # A broker's bridge leaves through an uplink flow, a hub's comes in through one.
    for item in software:
        settings = item.get("settings") or {}
        zone = next(c["zone"] for c in compute if c["name"] == item["host"])
        if settings.get("bridge_topics"):
            flows.append({"from": zone, "to": "uplink", "ports": ["8883/tcp"]})
        if settings.get("accept_bridges"):
            flows.append({"from": "uplink", "to": zone, "ports": ["8883/tcp"]})
    if flows:
        network["flows"] = flows

    data: dict[str, Any] = {
        "apiVersion": "nodekit/v1",
        "kind": "Node",
        "metadata": {"name": "prop-node"},
        "site": {
            "region": "eu-west",
            "timezone": draw(st.sampled_from(["UTC", "Europe/Paris"])),
            "target": target,
        },
        "network": network,
        "compute": compute,
    }
    if software or draw(st.booleans()):
        data["software"] = software
    equipment = []
    for i in range(draw(st.integers(0, 2))):
        zone = draw(st.sampled_from(zones))
        equipment.append(
            {
                "name": f"eq{i}",
                "kind": "sensor",
                "zone": zone,
                "address": f"10.60.{zones.index(zone)}.{100 + i}",
                "port": 502,
                "protocol": "modbus-tcp",
            }
        )
    if equipment:
        data["equipment"] = equipment
    checks = []
    for i in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["service", "port", "package", "file", "command"]))
        value = {
            "service": "chrony",
            "port": "22/tcp",
            "package": "nftables",
            "file": "/etc/hostname",
            "command": "true",
        }[kind]
        check = {"name": f"c{i}", "host": draw(st.sampled_from(hosts)), kind: value}
        if kind == "file" and draw(st.booleans()):
            check["contains"] = "h"
        checks.append(check)
    if checks:
        data["checks"] = checks
    return data
