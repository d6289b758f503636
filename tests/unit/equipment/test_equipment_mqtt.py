"""With a real mosquitto on 127.0.0.1: collector -> broker, MQTT twin -> broker -> ingest."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from equipment_helpers import (
    Broker,
    RunningTwin,
    start_mosquitto,
    start_twin,
    wait_for,
)
from paho.mqtt.enums import CallbackAPIVersion

from nodekit.equipment import collector
from nodekit.equipment.ingest import RowBuffer, TelemetryRow, make_on_message

USERS = {"collector": "c-pass", "env-01": "env-pass", "watcher": "w-pass"}


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    b = start_mosquitto(tmp_path_factory.mktemp("mosquitto"), USERS)
    yield b
    b.process.terminate()
    b.process.wait(10)


class Watcher:
    """A subscriber that queues (topic, payload, retain) of every message."""

    def __init__(self, broker: Broker, topic: str, on_message: Any = None) -> None:
        self.seen: dict[str, list[tuple[dict[str, Any], bool]]] = {}
        self.lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="watcher")
        self.client.username_pw_set("watcher", USERS["watcher"])
        subscribed = threading.Event()
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_message = on_message or self._queue
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        assert subscribed.wait(5), "subscription not acknowledged"

    def _queue(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.seen.setdefault(msg.topic, []).append((json.loads(msg.payload), msg.retain))

    def first(self, topic: str, timeout: float = 5.0) -> tuple[dict[str, Any], bool]:
        """The first message seen on ``topic`` (waits for it)."""
        assert wait_for(lambda: topic in self.seen, timeout), f"nothing on {topic}"
        with self.lock:
            return self.seen[topic][0]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_collector_publishes_a_moonraker_poll(broker: Broker, tmp_path: Path) -> None:
    twin = start_twin(tmp_path, "moonraker", "printer", "printer-01")
    secrets = tmp_path / "collector-secrets.json"
    secrets.write_text(json.dumps({"broker": {"password": USERS["collector"]}}))
    cfg = collector.config_from_dict(
        {
            "node": "lyon-additive-01",
            "interval_s": 0.2,
            "broker": {"host": broker.host, "port": broker.port, "user": "collector"},
            "secrets_file": str(secrets),
            "equipment": [twin.equipment],
            "rules": {"max": {"extruder_temp": 100}},
        }
    )
    watcher = Watcher(broker, "nodekit/lyon-additive-01/#")
    stop = threading.Event()
    worker = threading.Thread(target=collector.run, args=(cfg, stop), daemon=True)
    worker.start()
    try:
        base = "nodekit/lyon-additive-01/printer-01"
        payload, retain = watcher.first(f"{base}/extruder_temp")
        assert set(payload) == {"time", "value"} and 213 < payload["value"] < 217
        assert payload["time"].endswith("Z") and not retain
        assert watcher.first(f"{base}/state")[0]["text"] == "printing"
        alarm, _ = watcher.first(f"{base}/alarm")
        assert alarm["bound"] == "max" and alarm["limit"] == 100
    finally:
        stop.set()
        worker.join(10)
        watcher.close()
        twin.thread.stop()
    # the alarm is retained: a newcomer sees the last one at once
    late = Watcher(broker, "nodekit/lyon-additive-01/printer-01/alarm")
    try:
        assert late.first("nodekit/lyon-additive-01/printer-01/alarm")[1] is True
    finally:
        late.close()


@pytest.fixture
def mqtt_twin(broker: Broker, tmp_path: Path) -> Iterator[RunningTwin]:
    extra = {"broker": {"host": broker.host, "port": broker.port}, "interval_s": 0.1}
    twin = start_twin(tmp_path, "mqtt", "sensor", "env-01", extra=extra)  # no secrets yet
    yield twin
    twin.thread.stop()


def test_mqtt_twin_publishes_once_its_password_exists(
    broker: Broker, mqtt_twin: RunningTwin
) -> None:
    server = mqtt_twin.thread.twin.server
    buffer = RowBuffer()
    ingest = Watcher(broker, "nodekit/test-node/#", on_message=make_on_message(buffer))
    try:
        mqtt_twin.thread.refresh()
        assert server.published == 0  # type: ignore[attr-defined]  # no password: no connection
        mqtt_twin.set_secrets({"env-01": {"password": "wrong"}})
        assert not wait_for(lambda: server.published > 0, 0.5)  # type: ignore[attr-defined]
        mqtt_twin.set_secrets({"env-01": {"password": USERS["env-01"]}})
        assert wait_for(lambda: len(buffer) >= 5)
        rows = buffer.take(100, wait_s=0)
        assert isinstance(rows[0], TelemetryRow)
        by_metric = {r.metric: r for r in rows if isinstance(r, TelemetryRow)}
        assert by_metric["state"].text == "running"
        assert {"temperature", "humidity", "pressure"} <= set(by_metric)
        assert all(r.equipment == "env-01" and r.node == "test-node" for r in rows)
        mqtt_twin.set_state("offline")
        count = server.published  # type: ignore[attr-defined]
        assert not wait_for(lambda: server.published > count, 0.4)  # type: ignore[attr-defined]
        assert not server.listening
    finally:
        ingest.close()
