"""Ingest: topic + payload -> rows, SQL text, batching, database outages (no server)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest

from nodekit.equipment.collector import Alarm, alarm_payload
from nodekit.equipment.common import metric_payload, state_payload
from nodekit.equipment.ingest import (
    INSERT_ALARM,
    INSERT_TELEMETRY,
    SCHEMA,
    AlarmRow,
    BadMessage,
    RowBuffer,
    TelemetryRow,
    Writer,
    ensure_schema,
    make_on_message,
    parse_message,
    write_rows,
)

TS = 1_750_000_000.123456
MEASURED = datetime.fromtimestamp(TS, UTC)


def test_numeric_message_becomes_a_value_row_with_the_measured_time() -> None:
    row = parse_message("nodekit/n1/printer-01/extruder_temp", metric_payload(TS, 215.2).encode())
    assert row == TelemetryRow(MEASURED, "n1", "printer-01", "extruder_temp", 215.2, None)


def test_state_message_becomes_a_text_row() -> None:
    row = parse_message("nodekit/n1/printer-01/state", state_payload(TS, "printing"))
    assert row == TelemetryRow(MEASURED, "n1", "printer-01", "state", None, "printing")


def test_alarm_message_becomes_an_alarm_row() -> None:
    payload = alarm_payload(TS, Alarm("printer-01", "extruder_temp", 265.0, 260.0, "max"))
    row = parse_message("nodekit/n1/printer-01/alarm", payload)
    assert row == AlarmRow(
        MEASURED,
        "n1",
        "printer-01",
        "extruder_temp",
        265.0,
        260.0,
        "max",
        "extruder_temp 265.0 above max 260",
    )


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        ("nodekit/n1/p/x", b"not json", "not JSON"),
        ("nodekit/n1/p/x", b"[1, 2]", "not a JSON object"),
        ("nodekit/n1/p/x", b'{"value": 1}', "no 'time'"),
        ("nodekit/n1/p/x", b'{"time": "yesterday", "value": 1}', "not ISO 8601"),
        ("nodekit/n1/p/x", b'{"time": "2025-01-01T00:00:00Z", "value": "hot"}', "finite number"),
        ("nodekit/n1/p/x", b'{"time": "2025-01-01T00:00:00Z", "value": true}', "finite number"),
        ("nodekit/n1/p/x", b'{"time": "2025-01-01T00:00:00Z", "value": NaN}', "finite number"),
        ("nodekit/n1/p/x", b'{"time": "2025-01-01T00:00:00Z"}', "neither"),
        ("nodekit/n1/p/state", b'{"time": "2025-01-01T00:00:00Z", "text": 3}', "not a text"),
        ("nodekit/n1/p/alarm", b'{"time": "2025-01-01T00:00:00Z", "bound": "up"}', "bound"),
        ("nodekit/n1/p", b'{"time": "2025-01-01T00:00:00Z", "value": 1}', "topic"),
        ("other/n1/p/x", b'{"time": "2025-01-01T00:00:00Z", "value": 1}', "topic"),
        ("nodekit/n1/p/x", b"\xff\xfe", "not JSON"),
    ],
)
def test_malformed_messages_are_refused(topic: str, payload: bytes, reason: str) -> None:
    with pytest.raises(BadMessage, match=reason):
        parse_message(topic, payload)


def test_naive_time_is_taken_as_utc() -> None:
    row = parse_message("nodekit/n/e/m", b'{"time": "2025-01-01T10:00:00", "value": 1}')
    assert row.time == datetime(2025, 1, 1, 10, tzinfo=UTC)


def test_schema_sql() -> None:
    sql = " ".join(SCHEMA)
    assert (
        "CREATE TABLE IF NOT EXISTS telemetry (time timestamptz NOT NULL, node text NOT NULL, "
        "equipment text NOT NULL, metric text NOT NULL, value double precision, text text)"
    ) in sql
    assert "ON telemetry (time)" in sql and "ON telemetry (equipment, time)" in sql
    assert '"limit" double precision' in sql and "CREATE TABLE IF NOT EXISTS alarms" in sql
    assert all("IF NOT EXISTS" in s for s in SCHEMA)  # safe on every (re)connect


class FakeCursor:
    def __init__(self, conn: FakeConn) -> None:
        self.conn = conn

    def __enter__(self) -> FakeCursor:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def execute(self, sql: str) -> None:
        self.conn.executed.append(sql)

    def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if self.conn.refuse is not None and any(self.conn.refuse in r for r in rows):
            raise psycopg.DataError("invalid byte sequence")
        self.conn.batches.append((sql, list(rows)))


class FakeConn:
    def __init__(self, refuse: object = None) -> None:
        self.executed: list[str] = []
        self.batches: list[tuple[str, list[tuple[Any, ...]]]] = []
        self.commits = self.rollbacks = 0
        self.closed = False
        self.refuse = refuse

    def cursor(self) -> FakeCursor:
        return FakeCursor(self)

    def commit(self) -> None:
        self.commits += 1

    def rollback(self) -> None:
        self.rollbacks += 1

    def close(self) -> None:
        self.closed = True


def rows(n: int, metric: str = "m") -> list[TelemetryRow]:
    return [TelemetryRow(MEASURED, "n", "e", metric, float(i), None) for i in range(n)]


def test_write_rows_splits_tables_in_one_transaction() -> None:
    conn = FakeConn()
    alarm = AlarmRow(MEASURED, "n", "e", "t", 1.0, 0.5, "max", "t 1.0 above max 0.5")
    write_rows(conn, [*rows(2), alarm])
    assert [sql for sql, _ in conn.batches] == [INSERT_TELEMETRY, INSERT_ALARM]
    assert conn.batches[0][1][1] == (MEASURED, "n", "e", "m", 1.0, None)
    assert conn.batches[1][1][0][5:] == (0.5, "max", "t 1.0 above max 0.5")
    assert INSERT_TELEMETRY.count("%s") == 6 and INSERT_ALARM.count("%s") == 8
    assert conn.commits == 1
    ensure_schema(conn)
    assert conn.executed == list(SCHEMA)


def test_buffer_is_bounded_and_keeps_order_on_put_back() -> None:
    buf = RowBuffer(limit=5)
    for row in rows(7):
        buf.put(row)
    assert len(buf) == 5 and buf.dropped == 2
    batch = buf.take(3, wait_s=0)
    assert [r.value for r in batch] == [2.0, 3.0, 4.0]  # the oldest went
    buf.put_back(batch)
    assert [r.value for r in buf.take(10, wait_s=0)] == [2.0, 3.0, 4.0, 5.0, 6.0]


def test_writer_keeps_rows_while_the_database_is_down(caplog: pytest.LogCaptureFixture) -> None:
    buf = RowBuffer()
    conn = FakeConn()
    up = {"ok": False}

    def connect() -> FakeConn:
        if not up["ok"]:
            raise psycopg.OperationalError("connection to server failed: No such file")
        return conn

    writer = Writer(connect, buf)
    for row in rows(3):
        buf.put(row)
    caplog.set_level(logging.INFO, "nodekit.equipment.ingest")
    assert writer.flush_once(wait_s=0) is False
    assert writer.flush_once(wait_s=0) is False
    assert len(buf) == 3
    assert sum("database unavailable" in r.getMessage() for r in caplog.records) == 1
    up["ok"] = True
    assert writer.flush_once(wait_s=0) is True
    assert conn.executed == list(SCHEMA)  # schema ensured on (re)connect
    assert [r[4] for r in conn.batches[0][1]] == [0.0, 1.0, 2.0] and len(buf) == 0
    assert any("database back" in r.getMessage() for r in caplog.records)


def test_writer_batches_at_most_500_rows() -> None:
    buf = RowBuffer()
    conn = FakeConn()
    for row in rows(1200):
        buf.put(row)
    writer = Writer(lambda: conn, buf)
    while len(buf):
        writer.flush_once(wait_s=0)
    assert [len(b) for _, b in conn.batches] == [500, 500, 200]


def test_one_refused_row_does_not_lose_the_batch() -> None:
    buf = RowBuffer()
    conn = FakeConn(refuse=13.0)
    for row in rows(20):
        buf.put(row)
    writer = Writer(lambda: conn, buf)
    assert writer.flush_once(wait_s=0) is True
    written = [r[4] for _, batch in conn.batches for r in batch]
    assert len(written) == 19 and 13.0 not in written


def message(topic: str, payload: bytes, retain: bool = False) -> mqtt.MQTTMessage:
    msg = mqtt.MQTTMessage(topic=topic.encode())
    msg.payload = payload
    msg.retain = retain
    return msg


def test_on_message_skips_bad_messages_keeps_replayed_alarms(
    caplog: pytest.LogCaptureFixture,
) -> None:
    buf = RowBuffer()
    on_message = make_on_message(buf)
    caplog.set_level(logging.WARNING, "nodekit.equipment.ingest")
    on_message(None, None, message("nodekit/n/e/m", b"x" * 5000))  # type: ignore[arg-type]
    good = metric_payload(TS, 1.0).encode()
    on_message(None, None, message("nodekit/n/e/m", good))  # type: ignore[arg-type]
    retained = json.dumps(
        {
            "time": "2025-01-01T00:00:00Z",
            "metric": "m",
            "value": 2.0,
            "limit": 1.0,
            "bound": "max",
            "message": "m",
        }
    ).encode()
    # raised before the ingest subscribed: stored (the table's unique index drops replays)
    on_message(None, None, message("nodekit/n/e/alarm", retained, retain=True))  # type: ignore[arg-type]
    assert len(buf) == 2
    assert "ON CONFLICT DO NOTHING" in INSERT_ALARM
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "nodekit/n/e/m" in lines[0] and "not JSON" in lines[0]
    assert len(lines[0]) < 400  # the payload is cut at 200 characters
