"""Which machines verify expects fresh telemetry of."""

from __future__ import annotations

from typing import Any

from nodekit.render.checks import telemetry
from nodekit.render.plan import plan


def _node(target: str) -> dict[str, Any]:
    return {
        "metadata": {"name": "n1"},
        "site": {"region": "eu", "timezone": "UTC", "target": target},
        "network": {"zones": [{"name": "ot", "cidr": "10.1.1.0/24"}]},
        "compute": [{"name": "h", "role": "edge", "zone": "ot", "address": "10.1.1.10"}],
        "equipment": [
            {"name": "env-01", "kind": "sensor", "protocol": "mqtt", "zone": "ot",
             "address": "10.1.1.50"},
            {"name": "env-02", "kind": "sensor", "protocol": "mqtt"},  # no address
        ],
        "software": [
            {"name": "broker", "package": "mosquitto", "host": "h"},
            {"name": "db", "package": "postgresql", "host": "h"},
            {"name": "ingest", "package": "telemetry-ingest", "host": "h"},
        ],
    }  # fmt: skip


def test_on_the_local_target_only_machines_with_a_twin_publish() -> None:
    assert [row[3] for row in telemetry(plan(_node("local")))] == ["env-01"]


def test_on_the_ssh_target_every_publishing_machine_is_expected() -> None:
    assert [row[3] for row in telemetry(plan(_node("ssh")))] == ["env-01", "env-02"]
