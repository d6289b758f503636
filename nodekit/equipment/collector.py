"""Poll machines and publish their telemetry to MQTT.

    python -m nodekit_equipment.collector --config FILE [--once]

Config (JSON)::

    {"node": "lyon-additive-01", "interval_s": 5, "timeout_s": 3,
     "broker": {"host": "10.41.2.10", "port": 1883, "user": "collector"},
     "secrets_file": "/etc/nodekit/edge-collector/secrets.json",
     "equipment": [<descriptions>],
     "rules": {"max": {"extruder_temp": 260}, "min": {"bed_temp": 40}}}

Secrets: ``{"broker": {"password": ...}, "<equipment>": {"api_key"|"password": ...}}``.

Every ``interval_s`` each machine is polled (in parallel; a dead one costs only
its timeout) and each reading is published, qos 1, to
``nodekit/<node>/<equipment>/<metric>`` as ``{"time": ISO-8601 UTC, "value": x}``
and ``.../state`` as ``{"time": ..., "text": "printing"}``. A machine that does
not answer publishes state ``offline``. A metric leaving its band publishes one
retained alarm on ``.../alarm`` per crossing. ``--once`` polls once and prints
the messages instead of publishing them.
"""

import argparse
import json
import logging
import math
import signal
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from . import mqttio
from .common import (
    ConfigError,
    Equipment,
    SecretsFile,
    equipment_from_dict,
    load_json,
    setup_logging,
    telemetry_messages,
    topic,
    utc_iso,
)
from .readers import Reading, Unreachable, read

log = logging.getLogger("nodekit.equipment.collector")
Reader = Callable[[Equipment, Mapping[str, str], float], Reading]


@dataclass(frozen=True)
class Rule:
    metric: str
    bound: str  # "max" or "min"
    limit: float

    def violated(self, value: float) -> bool:
        return value > self.limit if self.bound == "max" else value < self.limit


@dataclass(frozen=True)
class Alarm:
    equipment: str
    metric: str
    value: float
    limit: float
    bound: str

    @property
    def message(self) -> str:
        side = "above" if self.bound == "max" else "below"
        return f"{self.metric} {float(self.value)!r} {side} {self.bound} {self.limit:g}"


def parse_rules(raw: Any) -> tuple[Rule, ...]:
    """``{"max": {metric: limit}, "min": {metric: limit}}`` -> rules."""
    if raw is None:
        return ()
    if not isinstance(raw, dict) or set(raw) - {"max", "min"}:
        raise ConfigError("rules must be {'max': {...}, 'min': {...}}")
    rules = []
    for bound in ("max", "min"):
        for metric, limit in (raw.get(bound) or {}).items():
            if isinstance(limit, bool) or not isinstance(limit, int | float):
                raise ConfigError(f"rules.{bound}.{metric}: limit {limit!r} is not a number")
            rules.append(Rule(str(metric), bound, float(limit)))
    return tuple(rules)


def evaluate_bands(
    rules: tuple[Rule, ...],
    equipment: str,
    metrics: Mapping[str, float],
    active: set[tuple[str, str, str]],
) -> list[Alarm]:
    """Alarms for metrics that just left their band (edge-triggered).

    ``active`` holds (equipment, metric, bound) currently outside; it is
    updated in place. A metric absent from ``metrics`` keeps its state.
    """
    alarms = []
    for rule in rules:
        value = metrics.get(rule.metric)
        if value is None or not math.isfinite(value):
            continue
        key = (equipment, rule.metric, rule.bound)
        if rule.violated(value):
            if key not in active:
                active.add(key)
                alarms.append(Alarm(equipment, rule.metric, value, rule.limit, rule.bound))
        else:
            active.discard(key)
    return alarms


def alarm_payload(ts: float, alarm: Alarm) -> str:
    return json.dumps(
        {
            "time": utc_iso(ts),
            "metric": alarm.metric,
            "value": float(alarm.value),
            "limit": alarm.limit,
            "bound": alarm.bound,
            "message": alarm.message,
        }
    )


@dataclass(frozen=True)
class Message:
    topic: str
    payload: str
    retain: bool = False


@dataclass(frozen=True)
class CollectorConfig:
    node: str
    equipment: tuple[Equipment, ...]
    interval_s: float = 5.0
    timeout_s: float = 3.0
    broker_host: str = "127.0.0.1"
    broker_port: int = 1883
    broker_user: str | None = None
    secrets_file: str | None = None
    rules: tuple[Rule, ...] = ()


def config_from_dict(raw: dict[str, Any]) -> CollectorConfig:
    node = raw.get("node")
    if not isinstance(node, str) or not node:
        raise ConfigError("collector config: no node name")
    items = raw.get("equipment") or []
    if not isinstance(items, list):
        raise ConfigError("collector config: 'equipment' must be a list")
    equipment = tuple(equipment_from_dict(e) for e in items)
    names = [e.name for e in equipment]
    if len(set(names)) != len(names):
        raise ConfigError("collector config: equipment names must be unique")
    broker = raw.get("broker") or {}
    interval = float(raw.get("interval_s") or 5.0)
    if interval <= 0:
        raise ConfigError("collector config: interval_s must be positive")
    return CollectorConfig(
        node=node,
        equipment=equipment,
        interval_s=interval,
        timeout_s=float(raw.get("timeout_s") or min(3.0, interval)),
        broker_host=str(broker.get("host") or "127.0.0.1"),
        broker_port=int(broker.get("port") or 1883),
        broker_user=broker.get("user") or None,
        secrets_file=raw.get("secrets_file") or None,
        rules=parse_rules(raw.get("rules")),
    )


class Collector:
    """Polls the configured machines; :meth:`poll` returns the messages to publish."""

    def __init__(self, cfg: CollectorConfig, reader: Reader = read) -> None:
        self.cfg = cfg
        self.reader = reader
        self.secrets = SecretsFile(cfg.secrets_file)
        self.polled = tuple(e for e in cfg.equipment if e.protocol != "mqtt")
        self._pool = ThreadPoolExecutor(max(1, min(32, len(self.polled))), "poll")
        self._inflight: dict[str, Future[tuple[float, Reading]]] = {}
        self._offline: dict[str, str] = {}  # equipment -> reason, while unreachable
        self._active: set[tuple[str, str, str]] = set()
        for eq in cfg.equipment:
            if eq.protocol == "mqtt":
                log.info("%s: mqtt device, publishes its own telemetry (not polled)", eq.name)

    def _read(self, eq: Equipment) -> tuple[float, Reading]:
        reading = self.reader(eq, self.secrets.section(eq.name), self.cfg.timeout_s)
        return time.time(), reading

    def poll(self) -> list[Message]:
        """Poll every machine once (in parallel) and build the messages."""
        for eq in self.polled:
            if eq.name not in self._inflight:  # a hung read is not started twice
                self._inflight[eq.name] = self._pool.submit(self._read, eq)
        # HTTP readers make two requests, each bounded by the timeout
        deadline = time.monotonic() + 2 * self.cfg.timeout_s + min(1.0, self.cfg.timeout_s)
        messages: list[Message] = []
        for eq in self.polled:
            future = self._inflight[eq.name]
            try:
                ts, reading = future.result(max(0.0, deadline - time.monotonic()))
            except Exception as exc:
                if not future.done():  # hung: leave it in flight, a later poll picks it up
                    reason = f"no answer within {self.cfg.timeout_s:g} s"
                elif isinstance(exc, Unreachable):
                    reason = exc.reason
                else:  # a reader bug must not stop the others
                    reason = f"{type(exc).__name__}: {exc}"
                self._mark_offline(eq, reason)
                messages += self.messages_for(eq.name, time.time(), Reading("offline", {}))
            else:
                self._mark_online(eq, reading)
                messages += self.messages_for(eq.name, ts, reading)
            if future.done():
                del self._inflight[eq.name]
        return messages

    def messages_for(self, equipment: str, ts: float, reading: Reading) -> list[Message]:
        """State + metrics of one reading, then any alarm it raises."""
        node = self.cfg.node
        pairs = telemetry_messages(node, equipment, ts, reading.state, reading.metrics)
        out = [Message(t, p) for t, p in pairs]
        for alarm in evaluate_bands(self.cfg.rules, equipment, reading.metrics, self._active):
            log.warning("%s: alarm: %s", equipment, alarm.message)
            out.append(Message(topic(node, equipment, "alarm"), alarm_payload(ts, alarm), True))
        return out

    def _mark_offline(self, eq: Equipment, reason: str) -> None:
        if self._offline.get(eq.name) is None:
            log.warning("%s: offline: %s", eq.where, reason)
        self._offline[eq.name] = reason

    def _mark_online(self, eq: Equipment, reading: Reading) -> None:
        if self._offline.pop(eq.name, None) is not None:
            log.info("%s: answering again, state %s", eq.where, reading.state)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def run(cfg: CollectorConfig, stop: threading.Event) -> None:
    """Poll every ``interval_s`` and publish until ``stop`` is set."""
    collector = Collector(cfg)
    password = collector.secrets.section("broker").get("password")
    if cfg.broker_user and not password:
        log.warning("no broker.password in the secrets file, connecting without one")
    client = mqttio.connect(
        client_id=f"nodekit-{cfg.broker_user or 'collector'}-{cfg.node}",  # one per collector
        host=cfg.broker_host,
        port=cfg.broker_port,
        user=cfg.broker_user,
        password=password,
        log=log,
        max_queued=20_000,  # bounded memory while the broker is away
    )
    log.info("polling %d machines every %g s", len(collector.polled), cfg.interval_s)
    try:
        next_poll = time.monotonic()
        while not stop.is_set():
            for msg in collector.poll():
                client.publish(msg.topic, msg.payload, qos=1, retain=msg.retain)
            next_poll += cfg.interval_s
            next_poll = max(next_poll, time.monotonic())
            stop.wait(next_poll - time.monotonic())
    finally:
        collector.close()
        mqttio.disconnect(client)


NONCE_TOPIC = "nodekit/{node}/_verify/nonce"


def send_nonce(cfg: CollectorConfig, nonce: str, timeout_s: float = 15.0) -> int:
    """Publish one nonce the way telemetry goes (this collector's broker and user),
    qos 1, and wait for the broker to take it: verify then looks for it at the hub."""
    password = SecretsFile(cfg.secrets_file).section("broker").get("password")
    client = mqttio.connect(
        client_id=f"nodekit-{cfg.broker_user or 'collector'}-{cfg.node}-nonce",
        host=cfg.broker_host,
        port=cfg.broker_port,
        user=cfg.broker_user,
        password=password,
        log=log,
    )
    try:
        deadline = time.monotonic() + timeout_s
        while not client.is_connected() and time.monotonic() < deadline:
            time.sleep(0.1)
        if not client.is_connected():
            log.error("cannot reach the broker %s:%s", cfg.broker_host, cfg.broker_port)
            return 1
        payload = json.dumps({"time": datetime.now(UTC).isoformat(), "text": nonce})
        info = client.publish(NONCE_TOPIC.format(node=cfg.node), payload, qos=1)
        info.wait_for_publish(timeout_s)
        if not info.is_published():
            log.error("the broker %s:%s did not take the nonce", cfg.broker_host, cfg.broker_port)
            return 1
        print(payload)
        return 0
    finally:
        mqttio.disconnect(client)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nodekit_equipment.collector", description=__doc__)
    parser.add_argument("--config", required=True)
    parser.add_argument("--once", action="store_true", help="poll once, print, do not publish")
    parser.add_argument("--nonce", help="publish this nonce once (verify's end-to-end test)")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    setup_logging("nodekit.equipment.collector", args.verbose)
    try:
        cfg = config_from_dict(load_json(args.config, "collector config"))
    except ConfigError as exc:
        log.error("%s", exc)
        return 2
    if args.nonce:
        return send_nonce(cfg, args.nonce)
    if args.once:
        collector = Collector(cfg)
        for msg in collector.poll():
            print(f"{msg.topic} {msg.payload}{' (retained)' if msg.retain else ''}")
        collector.close()
        return 0
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    run(cfg, stop)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
