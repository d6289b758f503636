"""Collector: payloads, topics, QC bands (edge-triggered), offline handling."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Mapping
from datetime import datetime

import pytest

from nodekit.equipment.collector import (
    Alarm,
    Collector,
    Rule,
    alarm_payload,
    config_from_dict,
    evaluate_bands,
    parse_rules,
)
from nodekit.equipment.common import (
    ConfigError,
    Equipment,
    metric_payload,
    state_payload,
    telemetry_messages,
    topic,
)
from nodekit.equipment.readers import Reading, Unreachable

ISO_UTC_MICRO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
RULES = parse_rules({"max": {"extruder_temp": 260}, "min": {"bed_temp": 40}})


def test_topic_and_payload_format() -> None:
    assert topic("lyon-additive-01", "printer-01", "extruder_temp") == (
        "nodekit/lyon-additive-01/printer-01/extruder_temp"
    )
    ts = 1_750_000_000.25
    value = json.loads(metric_payload(ts, 215))
    assert value == {"time": "2025-06-15T15:06:40.250000Z", "value": 215.0}
    assert isinstance(value["value"], float)
    assert json.loads(state_payload(ts, "printing"))["text"] == "printing"
    assert datetime.fromisoformat(value["time"]).timestamp() == ts
    msgs = telemetry_messages("n", "p", ts, "printing", {"a": 1.0, "b": float("nan")})
    assert [t for t, _ in msgs] == ["nodekit/n/p/state", "nodekit/n/p/a"]  # NaN is not sent


def test_parse_rules() -> None:
    assert set(RULES) == {Rule("extruder_temp", "max", 260.0), Rule("bed_temp", "min", 40.0)}
    with pytest.raises(ConfigError, match="not a number"):
        parse_rules({"max": {"x": "hot"}})
    with pytest.raises(ConfigError):
        parse_rules({"above": {"x": 1}})


def test_bands_are_edge_triggered() -> None:
    active: set[tuple[str, str, str]] = set()

    def step(value: float) -> list[Alarm]:
        return evaluate_bands(RULES, "printer-01", {"extruder_temp": value}, active)

    assert step(250) == []
    first = step(265)
    assert first == [Alarm("printer-01", "extruder_temp", 265, 260.0, "max")]
    assert first[0].message == "extruder_temp 265.0 above max 260"
    assert step(270) == []  # still outside: no repeat
    assert step(260) == []  # the limit itself is inside the band
    assert step(261) != []  # left again: a new alarm
    assert evaluate_bands(RULES, "printer-01", {}, active) == []  # metric missing: no change
    assert step(262) == []


def test_min_band_and_rules_apply_per_equipment() -> None:
    active: set[tuple[str, str, str]] = set()
    a = evaluate_bands(RULES, "printer-01", {"bed_temp": 35.5}, active)
    b = evaluate_bands(RULES, "printer-02", {"bed_temp": 35.5}, active)
    assert len(a) == len(b) == 1
    assert a[0].message == "bed_temp 35.5 below min 40"
    assert evaluate_bands(RULES, "plc-01", {"temperature": 999}, active) == []


def test_alarm_payload() -> None:
    payload = json.loads(alarm_payload(0.5, Alarm("p", "extruder_temp", 265.0, 260.0, "max")))
    assert payload == {
        "time": "1970-01-01T00:00:00.500000Z",
        "metric": "extruder_temp",
        "value": 265.0,
        "limit": 260.0,
        "bound": "max",
        "message": "extruder_temp 265.0 above max 260",
    }


def make_config(**extra: object) -> dict[str, object]:
    eqs = [
        {"name": "printer-01", "kind": "printer", "protocol": "moonraker", "address": "10.0.0.1"},
        {"name": "plc-01", "kind": "plc", "protocol": "modbus-tcp", "address": "10.0.0.2"},
        {"name": "env-01", "kind": "sensor", "protocol": "mqtt", "address": "10.0.0.3"},
    ]
    rules = {"max": {"extruder_temp": 260}}
    return {"node": "n1", "interval_s": 5, "equipment": eqs, "rules": rules, **extra}


class FakeReader:
    def __init__(self) -> None:
        self.answers: dict[str, Reading | Exception] = {}
        self.calls: list[str] = []

    def __call__(self, eq: Equipment, secrets: Mapping[str, str], timeout: float) -> Reading:
        self.calls.append(eq.name)
        answer = self.answers[eq.name]
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_poll_publishes_readings_alarms_and_offline(caplog: pytest.LogCaptureFixture) -> None:
    cfg = config_from_dict(make_config())
    assert cfg.equipment[0].port == 7125 and cfg.equipment[1].port == 502  # default ports
    reader = FakeReader()
    collector = Collector(cfg, reader)
    plc = cfg.equipment[1]
    reader.answers = {
        "printer-01": Reading("printing", {"extruder_temp": 265.0, "progress": 0.5}),
        "plc-01": Unreachable(plc, "connection refused"),
    }
    caplog.set_level(logging.INFO, "nodekit.equipment.collector")
    msgs = {m.topic: m for m in collector.poll()}
    assert sorted(reader.calls) == ["plc-01", "printer-01"]  # mqtt devices are not polled
    temp = json.loads(msgs["nodekit/n1/printer-01/extruder_temp"].payload)
    assert temp["value"] == 265.0 and ISO_UTC_MICRO.match(temp["time"])
    assert json.loads(msgs["nodekit/n1/printer-01/state"].payload)["text"] == "printing"
    alarm = msgs["nodekit/n1/printer-01/alarm"]
    assert alarm.retain and json.loads(alarm.payload)["bound"] == "max"
    assert json.loads(msgs["nodekit/n1/plc-01/state"].payload)["text"] == "offline"
    assert not any(m.retain for t, m in msgs.items() if not t.endswith("/alarm"))
    second = {m.topic for m in collector.poll()}
    assert "nodekit/n1/printer-01/alarm" not in second  # once per crossing
    assert "nodekit/n1/plc-01/state" in second
    offline_lines = [r for r in caplog.records if "offline" in r.getMessage()]
    assert len(offline_lines) == 1  # one line per transition, not per poll
    assert "plc-01 (modbus-tcp at 10.0.0.2:502): offline: connection refused" in (
        offline_lines[0].getMessage()
    )
    reader.answers["plc-01"] = Reading("running", {"cycle_count": 5.0})
    collector.poll()
    assert any("answering again" in r.getMessage() for r in caplog.records)
    collector.close()


def test_a_slow_machine_does_not_stall_the_others() -> None:
    cfg = config_from_dict(make_config(timeout_s=0.2))
    calls: list[str] = []

    def reader(eq: Equipment, secrets: Mapping[str, str], timeout: float) -> Reading:
        calls.append(eq.name)
        if eq.name == "plc-01":
            time.sleep(1.0)  # hung well beyond its timeout
        return Reading("running", {"x": 1.0})

    collector = Collector(cfg, reader)
    started = time.monotonic()
    msgs = {m.topic: json.loads(m.payload) for m in collector.poll()}
    assert time.monotonic() - started < 0.9
    assert msgs["nodekit/n1/printer-01/state"]["text"] == "running"
    assert msgs["nodekit/n1/plc-01/state"]["text"] == "offline"
    collector.poll()
    assert calls.count("plc-01") == 1  # the hung read is not started a second time
    collector.close()


def test_config_errors() -> None:
    with pytest.raises(ConfigError, match="no node"):
        config_from_dict({"equipment": []})
    with pytest.raises(ConfigError, match="unknown protocol"):
        config_from_dict(make_config(equipment=[{"name": "x", "protocol": "s7", "address": "a"}]))
