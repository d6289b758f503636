"""MQTT telemetry into PostgreSQL.

    python -m nodekit_equipment.ingest --config FILE

Config (JSON)::

    {"node": "lyon-additive-01",
     "broker": {"host": "127.0.0.1", "port": 1883, "user": "ingest"},
     "secrets_file": "/etc/nodekit/telemetry-ingest/secrets.json",  # {"broker": {"password"}}
     "database": {"conninfo": "dbname=historian"},
     "topics": ["nodekit/lyon-additive-01/#"]}

Each message on ``nodekit/<node>/<equipment>/<metric>`` becomes a row of
``telemetry`` (``value`` for numbers, ``text`` for states) or, for
``.../alarm``, of ``alarms``; ``time`` is the measured time from the payload.
Rows are written in batches (every second or 500 rows) by a worker thread;
while the database is away they wait in a bounded buffer. A malformed
message is logged in one line and skipped.
"""

import argparse
import collections
import json
import logging
import math
import signal
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import astuple, dataclass
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt

from . import mqttio
from .common import TOPIC_ROOT, ConfigError, SecretsFile, load_json, setup_logging

log = logging.getLogger("nodekit.equipment.ingest")

SCHEMA: tuple[str, ...] = (
    "CREATE TABLE IF NOT EXISTS telemetry ("
    "time timestamptz NOT NULL, node text NOT NULL, equipment text NOT NULL, "
    "metric text NOT NULL, value double precision, text text)",
    # when the row was written: `received - time` is the way from the machine here
    "ALTER TABLE telemetry ADD COLUMN IF NOT EXISTS received timestamptz DEFAULT clock_timestamp()",
    "CREATE INDEX IF NOT EXISTS telemetry_time_idx ON telemetry (time)",
    "CREATE INDEX IF NOT EXISTS telemetry_equipment_time_idx ON telemetry (equipment, time)",
    "CREATE TABLE IF NOT EXISTS alarms ("
    "time timestamptz NOT NULL, node text, equipment text, metric text, "
    'value double precision, "limit" double precision, bound text, message text)',
    "CREATE INDEX IF NOT EXISTS alarms_time_idx ON alarms (time)",
    "CREATE UNIQUE INDEX IF NOT EXISTS alarms_once_idx ON alarms (node, equipment, metric, time)",
)
INSERT_TELEMETRY = (
    "INSERT INTO telemetry (time, node, equipment, metric, value, text) "
    "VALUES (%s, %s, %s, %s, %s, %s)"
)
INSERT_ALARM = (
    'INSERT INTO alarms (time, node, equipment, metric, value, "limit", bound, message) '
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
)
BATCH_ROWS = 500
FLUSH_S = 1.0
BUFFER_ROWS = 200_000
MAX_PAYLOAD = 65_536


@dataclass(frozen=True)
class TelemetryRow:
    time: datetime
    node: str
    equipment: str
    metric: str
    value: float | None
    text: str | None


@dataclass(frozen=True)
class AlarmRow:
    time: datetime
    node: str
    equipment: str
    metric: str
    value: float
    limit: float
    bound: str
    message: str


Row = TelemetryRow | AlarmRow


class BadMessage(ValueError):
    """A message that cannot become a row; the text says why."""


def _time(raw: Any) -> datetime:
    if not isinstance(raw, str):
        raise BadMessage("no 'time' string")
    try:
        ts = datetime.fromisoformat(raw)
    except ValueError:
        raise BadMessage(f"'time' {raw[:40]!r} is not ISO 8601") from None
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


def _number(raw: Any, key: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        raise BadMessage(f"'{key}' is not a finite number")
    return float(raw)


def _text(raw: Any, key: str) -> str:
    if not isinstance(raw, str) or "\x00" in raw:
        raise BadMessage(f"'{key}' is not a text")
    return raw


def parse_message(topic: str, payload: bytes | bytearray | str) -> Row:
    """The row for one MQTT message; :class:`BadMessage` if it is malformed."""
    parts = topic.split("/")
    if len(parts) != 4 or parts[0] != TOPIC_ROOT or not all(parts):
        raise BadMessage(f"topic is not {TOPIC_ROOT}/<node>/<equipment>/<metric>")
    _, node, equipment, metric = parts
    if len(payload) > MAX_PAYLOAD:
        raise BadMessage(f"payload larger than {MAX_PAYLOAD} bytes")
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise BadMessage("payload is not JSON") from None
    if not isinstance(data, dict):
        raise BadMessage("payload is not a JSON object")
    ts = _time(data.get("time"))
    if metric == "alarm":
        bound = data.get("bound")
        if bound not in ("max", "min"):
            raise BadMessage("'bound' is not max or min")
        return AlarmRow(
            time=ts,
            node=node,
            equipment=equipment,
            metric=_text(data.get("metric"), "metric"),
            value=_number(data.get("value"), "value"),
            limit=_number(data.get("limit"), "limit"),
            bound=str(bound),
            message=_text(data.get("message", ""), "message"),
        )
    if "value" in data:
        return TelemetryRow(ts, node, equipment, metric, _number(data["value"], "value"), None)
    if "text" in data:
        return TelemetryRow(ts, node, equipment, metric, None, _text(data["text"], "text"))
    raise BadMessage("payload has neither 'value' nor 'text'")


def ensure_schema(conn: Any) -> None:
    """Create the tables and indexes if missing (idempotent)."""
    with conn.cursor() as cur:
        for statement in SCHEMA:
            cur.execute(statement)
    conn.commit()


def write_rows(conn: Any, rows: Iterable[Row]) -> None:
    """Insert rows in one transaction (``executemany`` per table)."""
    telemetry = [astuple(r) for r in rows if isinstance(r, TelemetryRow)]
    alarms = [astuple(r) for r in rows if isinstance(r, AlarmRow)]
    with conn.cursor() as cur:
        if telemetry:
            cur.executemany(INSERT_TELEMETRY, telemetry)
        if alarms:
            cur.executemany(INSERT_ALARM, alarms)
    conn.commit()


class RowBuffer:
    """Thread-safe FIFO of rows, bounded: when full the oldest rows go."""

    def __init__(self, limit: int = BUFFER_ROWS) -> None:
        self._rows: collections.deque[Row] = collections.deque()
        self._limit = limit
        self._cond = threading.Condition()
        self.dropped = 0

    def __len__(self) -> int:
        with self._cond:
            return len(self._rows)

    def put(self, row: Row) -> None:
        with self._cond:
            self._rows.append(row)
            while len(self._rows) > self._limit:
                self._rows.popleft()
                self.dropped += 1
            if len(self._rows) >= BATCH_ROWS:
                self._cond.notify()

    def put_back(self, rows: list[Row]) -> None:
        """Return an unwritten batch to the front, keeping the order."""
        with self._cond:
            room = max(0, self._limit - len(self._rows))
            keep = rows[len(rows) - room :] if len(rows) > room else rows
            self.dropped += len(rows) - len(keep)
            self._rows.extendleft(reversed(keep))

    def take(self, max_rows: int = BATCH_ROWS, wait_s: float = FLUSH_S) -> list[Row]:
        """Up to ``max_rows`` rows, waiting at most ``wait_s`` for a full batch."""
        with self._cond:
            if len(self._rows) < max_rows:
                self._cond.wait(wait_s)
            n = min(max_rows, len(self._rows))
            return [self._rows.popleft() for _ in range(n)]


class Writer:
    """Writes batches from a :class:`RowBuffer`; reconnects and retries on failure."""

    def __init__(self, connect: Callable[[], Any], buffer: RowBuffer) -> None:
        self.connect = connect
        self.buffer = buffer
        self.written = 0
        self._conn: Any = None
        self._down_since: float | None = None
        self._retry_s = 1.0

    def _connection(self) -> Any:
        if self._conn is None:
            conn = self.connect()
            try:
                ensure_schema(conn)
            except Exception:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception as exc:
                log.debug("closing the database connection: %s", exc)

    def flush_once(self, wait_s: float = FLUSH_S) -> bool:
        """Write one batch; False if the database is unavailable (rows kept)."""
        rows = self.buffer.take(BATCH_ROWS, wait_s)
        if not rows:
            return True
        try:
            conn = self._connection()
            self._write(conn, rows)
        except Exception as exc:
            self.buffer.put_back(rows)
            self._drop_connection()
            if self._down_since is None:
                self._down_since = time.monotonic()
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc)
                log.warning("database unavailable (%s), buffering rows", reason)
            return False
        if self._down_since is not None:
            dropped = self.buffer.dropped
            log.info("database back, %d rows buffered, %d dropped", len(self.buffer), dropped)
            self._down_since = None
        self.written += len(rows)
        return True

    def _write(self, conn: Any, rows: list[Row]) -> None:
        import psycopg

        try:
            write_rows(conn, rows)
        except (psycopg.OperationalError, psycopg.InterfaceError):
            raise  # the database is away: keep the rows
        except psycopg.Error:
            conn.rollback()  # some row was refused: write them one by one, drop the bad ones
            for row in rows:
                try:
                    write_rows(conn, [row])
                except (psycopg.OperationalError, psycopg.InterfaceError):
                    raise
                except psycopg.Error as exc:
                    conn.rollback()
                    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                    log.warning("%s/%s: row refused: %s", row.equipment, row.metric, reason)

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set() or len(self.buffer):
            if self.flush_once():
                self._retry_s = 1.0
            else:
                if stop.wait(self._retry_s):
                    break
                self._retry_s = min(30.0, self._retry_s * 2)
        self._drop_connection()


class _BadLog:
    """At most ``per_minute`` lines about malformed messages, then a count."""

    def __init__(self, per_minute: int = 20) -> None:
        self.per_minute = per_minute
        self._window = 0.0
        self._count = 0
        self._lock = threading.Lock()

    def __call__(self, topic: str, payload: bytes | bytearray, reason: str) -> None:
        with self._lock:
            now = time.monotonic()
            if now - self._window >= 60.0:
                if self._count > self.per_minute:
                    log.warning("%d more malformed messages", self._count - self.per_minute)
                self._window, self._count = now, 0
            self._count += 1
            if self._count > self.per_minute:
                return
        shown = payload[:200].decode("utf-8", "replace")
        log.warning("skipped message on %s: %s; payload %r", topic[:200], reason, shown)


def make_on_message(buffer: RowBuffer) -> Callable[[mqtt.Client, Any, mqtt.MQTTMessage], None]:
    bad = _BadLog()

    def on_message(_c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        # A retained alarm replayed on subscribe is stored too: it may have been
        # raised before this ingest first subscribed. The alarms table holds each
        # (node, equipment, metric, time) once, so a replay is never a duplicate.
        try:
            buffer.put(parse_message(msg.topic, msg.payload))
        except BadMessage as exc:
            bad(msg.topic, msg.payload, str(exc))
        except Exception as exc:  # never let one message kill the network thread
            bad(msg.topic, msg.payload, f"{type(exc).__name__}: {exc}")

    return on_message


def run(raw: dict[str, Any], stop: threading.Event) -> None:
    import psycopg

    node = raw.get("node")
    conninfo = (raw.get("database") or {}).get("conninfo")
    if not isinstance(node, str) or not node or not isinstance(conninfo, str):
        raise ConfigError("ingest config needs node and database.conninfo")
    topics = raw.get("topics") or [f"{TOPIC_ROOT}/{node}/#"]
    broker = raw.get("broker") or {}
    password = SecretsFile(raw.get("secrets_file")).section("broker").get("password")
    buffer = RowBuffer()
    writer = Writer(lambda: psycopg.connect(conninfo, connect_timeout=5), buffer)
    worker = threading.Thread(target=writer.run, args=(stop,), name="db-writer", daemon=True)
    worker.start()

    def subscribe(client: mqtt.Client) -> None:
        client.subscribe([(str(t), 1) for t in topics])
        log.info("subscribed to %s", ", ".join(map(str, topics)))

    client = mqttio.connect(
        client_id=f"nodekit-{broker.get('user') or 'ingest'}-{node}",  # one per ingest
        host=str(broker.get("host") or "127.0.0.1"),
        port=int(broker.get("port") or 1883),
        user=broker.get("user") or None,
        password=password,
        log=log,
        on_connected=subscribe,
        on_message=make_on_message(buffer),
        clean_session=False,  # the broker keeps qos 1 messages while ingest restarts
    )
    try:
        stop.wait()
    finally:
        mqttio.disconnect(client)
        worker.join(10)
        if buffer.dropped:
            log.warning("%d rows dropped while the database was away", buffer.dropped)
        if len(buffer):
            log.warning("%d rows not written: the database was away at shutdown", len(buffer))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nodekit_equipment.ingest", description=__doc__)
    parser.add_argument("--config", required=True)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    setup_logging("nodekit.equipment.ingest", args.verbose)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        run(load_json(args.config, "ingest config"), stop)
    except ConfigError as exc:
        log.error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
