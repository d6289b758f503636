"""Rules of the equipment and of the parts that talk to it (collector, ingest).

What they need of the network is derived (:mod:`nodekit.blueprint.equipment`)
and never added silently: a connection no declared flow allows is an error
that names the flow to add.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nodekit.blueprint.equipment import (
    BROKER,
    COLLECTOR,
    INGEST,
    POLLED,
    broker_of,
    device_broker,
    duties,
    needs,
)
from nodekit.blueprint.model import Node
from nodekit.blueprint.report import Loc, Report

if TYPE_CHECKING:
    from nodekit.blueprint.rules import Skipped


def check_equipment(node: Node, report: Report, skipped: Skipped) -> None:
    if skipped.hosts or skipped.zones or skipped.software:
        return  # references are reported already; derived needs would repeat them
    data = node.model_dump(by_alias=True, mode="json")
    software = data.get("software") or []
    brokers = [s["name"] for s in software if s["package"] == BROKER]
    for index, item in enumerate(software):
        if item["package"] not in (COLLECTOR, INGEST):
            continue
        loc: Loc = ("software", index, "settings", "broker")
        if broker_of(data, item) is None:
            named = (item.get("settings") or {}).get("broker")
            if named:
                problem = f"'{named}' is not a mosquitto software of this node"
            elif brokers:
                problem = f"the node has {len(brokers)} brokers ({', '.join(brokers)}): name one"
            else:
                problem = "the node has no broker: add a software entry with package mosquitto"
            report.error(loc, f"{item['name']} needs an MQTT broker: {problem}")
        if item["package"] == INGEST:
            local_db = [
                s for s in software if s["package"] == "postgresql" and s["host"] == item["host"]
            ]
            if not local_db:
                report.error(
                    ("software", index, "host"),
                    f"{item['name']} writes to PostgreSQL on its own host, and '{item['host']}' "
                    "runs none: add a postgresql software on that host",
                )
    machines = {e["name"] for e in data.get("equipment") or []}
    local = data["site"]["target"] == "local"
    for index, host in enumerate(data.get("compute") or [] if local else []):
        if host["name"].startswith("twin-") and host["name"][5:] in machines:
            report.error(
                ("compute", index, "name"),
                f"host '{host['name']}' would share its name with the twin of equipment "
                f"'{host['name'][5:]}' on the local target: rename the host",
            )
    telemetry = any(s["package"] in (COLLECTOR, INGEST) for s in software)
    for duty in duties(data):
        loc = ("equipment", duty.index, "protocol")
        if duty.protocol and duty.protocol != "mqtt" and not duty.address:
            report.warning(
                loc,
                f"{duty.name} has no address: nodekit can neither check nor poll it over "
                f"{duty.protocol}; give it zone and address",
            )
        elif duty.protocol and duty.address and not duty.probe_host and duty.protocol != "mqtt":
            report.warning(
                loc,
                f"no host drives {duty.name} and no host has an address in zone '{duty.zone}': "
                "verify cannot check it; set equipment host",
            )
        if duty.protocol in POLLED and duty.address and telemetry and not duty.collector:
            report.warning(
                loc,
                f"no edge-collector polls {duty.name} (none on its host or in its zone): "
                "no telemetry is expected of it",
            )
        if duty.protocol == "mqtt" and device_broker(data) is None:
            report.error(
                loc,
                f"{duty.name} publishes over MQTT, but the node has no single broker to "
                "publish to: add a mosquitto software (or name it in the collector's settings)",
            )
    for index, item in enumerate(data.get("equipment") or []):
        if item.get("protocol") == "mqtt" and item.get("port"):
            report.error(
                ("equipment", index, "port"),
                f"{item['name']} publishes to the node's broker over MQTT: it listens on no "
                "port of its own; remove port",
            )
    _check_qc_metrics(data, report)
    flows = data["network"].get("flows") or []
    for need in needs(data):
        if need.met(flows):
            continue
        source = need.source_zones[0]
        report.error(
            need.loc,
            f"{need.why}, but no flow allows {source} -> {need.target_zone} {need.port}/tcp: "
            f"add to network.flows {{from: {source}, to: {need.target_zone}, "
            f"ports: [{need.port}/tcp]}}",
        )


def _check_qc_metrics(data: dict[str, Any], report: Report) -> None:
    """A QC band names a metric some machine the collector polls reports."""
    from nodekit.equipment.readers import metrics_for

    machines = duties(data)
    for index, item in enumerate(data.get("software") or []):
        if item["package"] != COLLECTOR:
            continue
        polled = [d for d in machines if d.collector == item["name"] and d.protocol]
        known = sorted({m for d in polled for m in metrics_for(d.protocol or "", d.kind)})
        for bound in ("max", "min"):
            for metric in (item.get("settings") or {}).get(bound) or {}:
                if metric not in known:
                    report.error(
                        ("software", index, "settings", bound, metric),
                        f"no machine {item['name']} polls reports '{metric}', so this band "
                        f"would never alarm; its metrics: {', '.join(known) or 'none'}",
                    )
