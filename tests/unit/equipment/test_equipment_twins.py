"""Twins against the readers: Moonraker, OctoPrint, Modbus TCP, RTSP (127.0.0.1)."""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from equipment_helpers import RunningTwin, start_twin

from nodekit.equipment.modbus import (
    REGISTER_COUNT,
    REGISTER_MAP,
    ModbusError,
    decode,
    encode,
    read_holding_registers,
)
from nodekit.equipment.readers import AuthRefused, BadAnswer, Unreachable, metrics_for, read
from nodekit.equipment.sim import MachineStatus
from nodekit.equipment.twin import TwinThread, config_from_dict

KEY = "octo-key-123"


@pytest.fixture
def twin_factory(tmp_path: Path) -> Iterator[Any]:
    started: list[RunningTwin] = []

    def make(*args: Any, **kwargs: Any) -> RunningTwin:
        twin = start_twin(tmp_path, *args, **kwargs)
        started.append(twin)
        return twin

    yield make
    for twin in started:
        twin.thread.stop()


def http_get(twin: RunningTwin, path: str, headers: dict[str, str] | None = None) -> Any:
    url = f"http://127.0.0.1:{twin.thread.port}{path}"
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=3) as r:
        return json.loads(r.read())


# -- Moonraker -------------------------------------------------------------------------------


def test_moonraker_reading_and_progress_advances(twin_factory: Any) -> None:
    twin = twin_factory("moonraker", "printer", "printer-01", job_s=90.0)
    first = read(twin.equipment, {})
    assert first.state == "printing"
    assert set(first.metrics) == set(metrics_for("moonraker", "printer"))
    assert 213 < first.metrics["extruder_temp"] < 217
    assert first.texts["filename"].endswith(".gcode")
    twin.advance(30)
    second = read(twin.equipment, {})
    assert second.metrics["progress"] == pytest.approx(first.metrics["progress"] + 1 / 3, 1e-3)
    assert second.metrics["print_duration"] > first.metrics["print_duration"]


def test_moonraker_error_offline_and_back(twin_factory: Any) -> None:
    twin = twin_factory("moonraker", "printer", "printer-01")
    twin.set_state("error")
    reading = read(twin.equipment, {})
    assert reading.state == "error"
    assert "extruder_temp" in reading.metrics  # values stay readable in error
    twin.set_state("offline")
    with pytest.raises(Unreachable, match=r"^printer-01 \(moonraker at 127\.0\.0\.1:\d+\): "):
        read(twin.equipment, {}, timeout=1.0)
    twin.state_file.unlink()  # missing state file = ok
    twin.thread.refresh()
    assert read(twin.equipment, {}).state == "printing"


def test_moonraker_returns_only_the_requested_objects(twin_factory: Any) -> None:
    twin = twin_factory("moonraker", "printer", "printer-01")
    answer = http_get(twin, "/printer/objects/query?print_stats=state,filename&heater_bed")
    status = answer["result"]["status"]
    assert set(status) == {"print_stats", "heater_bed"}
    assert set(status["print_stats"]) == {"state", "filename"}
    assert set(status["heater_bed"]) == {"temperature", "target", "power"}
    assert isinstance(answer["result"]["eventtime"], float)
    info = http_get(twin, "/server/info")["result"]
    assert info["klippy_connected"] is True and info["klippy_state"] == "ready"
    assert http_get(twin, "/printer/info")["result"]["hostname"] == "printer-01"
    with pytest.raises(urllib.error.HTTPError) as err:
        http_get(twin, "/printer/gcode/script")
    assert err.value.code == 404
    assert json.loads(err.value.read())["error"]["code"] == 404


# -- OctoPrint -------------------------------------------------------------------------------


def test_octoprint_reading_with_the_key(twin_factory: Any) -> None:
    twin = twin_factory("octoprint", "printer", "octo-01", secrets={"octo-01": {"api_key": KEY}})
    reading = read(twin.equipment, {"api_key": KEY})
    assert reading.state == "printing"
    assert set(reading.metrics) == set(metrics_for("octoprint", "printer"))
    shared = {"extruder_temp", "extruder_target", "bed_temp", "bed_target", "progress"}
    assert shared <= set(metrics_for("moonraker", "printer"))  # same names on both printers
    twin.advance(90)  # job done, operational again
    assert read(twin.equipment, {"api_key": KEY}).state == "complete"
    version = http_get(twin, f"/api/version?apikey={KEY}")
    assert version == {"api": "0.1", "server": "1.10.3", "text": "OctoPrint 1.10.3"}
    twin.set_state("error")
    assert read(twin.equipment, {"api_key": KEY}).state == "error"


def test_octoprint_wrong_or_missing_key_is_refused(twin_factory: Any) -> None:
    twin = twin_factory("octoprint", "printer", "octo-01", secrets={"octo-01": {"api_key": KEY}})
    with pytest.raises(AuthRefused, match=r"^octo-01 \(octoprint at .*\): API key refused"):
        read(twin.equipment, {"api_key": "wrong"})
    with pytest.raises(AuthRefused, match="no api_key"):
        read(twin.equipment, {})
    with pytest.raises(urllib.error.HTTPError) as err:
        http_get(twin, "/api/version")
    assert err.value.code == 403


def test_octoprint_refuses_everything_until_its_secret_arrives(
    twin_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "nodekit.equipment.twin")
    twin = twin_factory("octoprint", "printer", "octo-01")  # no secrets file yet
    with pytest.raises(AuthRefused, match="API key refused"):
        read(twin.equipment, {"api_key": KEY})  # listening, but 403
    twin.set_secrets({"octo-01": {"api_key": KEY}})
    assert read(twin.equipment, {"api_key": KEY}).state == "printing"
    twin.set_secrets({"octo-01": {"api_key": "rotated"}})
    with pytest.raises(AuthRefused):
        read(twin.equipment, {"api_key": KEY})
    lines = [r.getMessage() for r in caplog.records]
    assert sum("api_key missing" in line for line in lines) == 1
    assert sum("api_key present" in line for line in lines) == 1  # a rotation is not news
    assert not any(KEY in line or "rotated" in line for line in lines)


def test_state_changes_are_logged_once(twin_factory: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "nodekit.equipment.twin")
    twin = twin_factory("modbus-tcp", "plc", "plc-01")
    twin.set_state("error")
    twin.thread.refresh()
    twin.set_state("junk")  # not a state: ignored, with one warning
    twin.thread.refresh()
    twin.set_state("offline")
    lines = [r.getMessage() for r in caplog.records]
    changes = [line for line in lines if " -> " in line]
    assert changes == ["plc-01: state ok -> error", "plc-01: state error -> offline"]
    assert sum("not ok/error/offline" in line for line in lines) == 1


def test_octoprint_offline_closes_the_port(twin_factory: Any) -> None:
    twin = twin_factory("octoprint", "printer", "octo-01", secrets={"octo-01": {"api_key": KEY}})
    twin.set_state("offline")
    with pytest.raises(Unreachable, match=r"octo-01.*connection refused"):
        read(twin.equipment, {"api_key": KEY}, timeout=1.0)
    twin.set_state("ok")
    assert read(twin.equipment, {"api_key": KEY}).state == "printing"


# -- Modbus TCP ------------------------------------------------------------------------------


def test_register_map_layout() -> None:
    """HR0 state, HR1-2 cycles (high word first), HR3 rpm, HR4 0.1 degC signed."""
    by_metric = {r.metric: r for r in REGISTER_MAP}
    assert (by_metric["state"].address, by_metric["cycle_count"].address) == (0, 1)
    assert by_metric["cycle_count"].words == 2
    assert (by_metric["spindle_rpm"].address, by_metric["temperature"].address) == (3, 4)
    assert by_metric["temperature"].signed and by_metric["temperature"].scale == 0.1
    used = [a for r in REGISTER_MAP for a in range(r.address, r.address + r.words)]
    assert sorted(used) == list(range(REGISTER_COUNT))  # no gaps, no overlaps
    status = MachineStatus("error", 2, 0x12345, 11_999.6, 41.27, -3.25, 45.5, 1013.2)
    regs = encode(status)
    assert regs[:5] == [2, 0x0001, 0x2345, 12_000, (-32) & 0xFFFF]
    assert decode(regs, "plc") == (
        "error",
        {
            "cycle_count": 0x12345,
            "spindle_rpm": 12_000.0,
            "temperature": -3.2,
            "spindle_load": 41.3,
        },
    )


def test_modbus_reader_against_the_pymodbus_twin(twin_factory: Any) -> None:
    twin = twin_factory("modbus-tcp", "cnc", "cnc-01")
    status = twin.thread.machine.machine()
    regs = read_holding_registers("127.0.0.1", twin.thread.port, 0, REGISTER_COUNT)
    assert regs[0] == 1  # running
    assert (regs[1] << 16) | regs[2] == status.cycle_count
    first = read(twin.equipment, {})
    assert first.state == "running"
    assert set(first.metrics) == set(metrics_for("modbus-tcp", "cnc"))
    assert 11_800 <= first.metrics["spindle_rpm"] <= 12_200
    assert 37.0 < first.metrics["temperature"] < 40.0
    twin.advance(30)
    assert read(twin.equipment, {}).metrics["cycle_count"] == first.metrics["cycle_count"] + 10
    twin.set_state("error")
    assert read(twin.equipment, {}).state == "error"
    twin.set_state("offline")
    with pytest.raises(Unreachable, match=r"cnc-01 \(modbus-tcp at 127\.0\.0\.1:\d+\)"):
        read(twin.equipment, {}, timeout=1.0)
    twin.set_state("ok")
    assert read(twin.equipment, {}).state == "running"


def test_modbus_sensor_and_exception_response(twin_factory: Any) -> None:
    twin = twin_factory("modbus-tcp", "sensor", "env-01")
    reading = read(twin.equipment, {})
    assert set(reading.metrics) == {"cycle_count", "temperature", "humidity", "pressure"}
    with pytest.raises(ModbusError, match="illegal data address"):
        read_holding_registers("127.0.0.1", twin.thread.port, REGISTER_COUNT, 4)


def test_modbus_reader_refuses_a_non_modbus_answer() -> None:
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        eq = {"name": "plc-9", "kind": "plc", "protocol": "modbus-tcp"}
        eq |= {"address": "127.0.0.1", "port": srv.getsockname()[1]}

        def answer() -> None:
            conn, _ = srv.accept()
            with conn:
                conn.recv(64)
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

        threading.Thread(target=answer, daemon=True).start()
        with pytest.raises(Unreachable, match=r"plc-9 \(modbus-tcp .*\): not a Modbus TCP"):
            read(eq, {}, timeout=2.0)


def test_unreachable_machine_names_address_and_reason() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: refused
        eq = {"name": "plc-7", "kind": "plc", "protocol": "modbus-tcp", "address": "127.0.0.1"}
        with pytest.raises(Unreachable) as err:
            read(eq | {"port": port}, {}, timeout=1.0)
    assert str(err.value) == f"plc-7 (modbus-tcp at 127.0.0.1:{port}): connection refused"


# -- RTSP ------------------------------------------------------------------------------------


def test_rtsp_options(twin_factory: Any) -> None:
    twin = twin_factory("rtsp", "camera", "cam-01")
    with socket.create_connection(("127.0.0.1", twin.thread.port), timeout=3) as sock:
        sock.sendall(b"OPTIONS rtsp://127.0.0.1/ RTSP/1.0\r\nCSeq: 7\r\n\r\n")
        answer = sock.recv(4096).decode()
    assert answer.startswith("RTSP/1.0 200 OK\r\n")
    assert re.search(r"\r\nCSeq: 7\r\n", answer) and "\r\nPublic: OPTIONS" in answer
    reading = read(twin.equipment, {})
    assert (reading.state, reading.metrics) == ("reachable", {})
    twin.set_state("error")
    assert read(twin.equipment, {}).state == "error"
    twin.set_state("offline")
    with pytest.raises(Unreachable, match="cam-01 \\(rtsp at"):
        read(twin.equipment, {}, timeout=1.0)


def test_mqtt_devices_are_not_polled() -> None:
    eq = {"name": "env-02", "kind": "sensor", "protocol": "mqtt", "address": "10.41.1.50"}
    with pytest.raises(Unreachable, match="publish their own telemetry"):
        read(eq, {})


@pytest.mark.parametrize("protocol", ["moonraker", "modbus-tcp", "rtsp"])
def test_a_busy_port_is_an_oserror_naming_it(protocol: str, tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        eq = {"name": "m-01", "kind": "plc", "protocol": protocol, "address": "127.0.0.1"}
        cfg = config_from_dict({"node": "n", "equipment": eq | {"port": port}, "bind": "127.0.0.1"})
        thread = None
        with pytest.raises(OSError):
            thread = TwinThread(cfg)
        assert thread is None


@pytest.mark.parametrize(
    ("protocol", "body"),
    [
        ("moonraker", b'{"result": "x"}'),
        ("moonraker", b'{"result": {"state": "ready", "status": {"print_stats": []}}}'),
        ("octoprint", b'{"state": {"flags": []}, "job": []}'),
        ("octoprint", b"<html>"),
    ],
)
def test_malformed_http_answers_are_bad_answers(protocol: str, body: bytes) -> None:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        eq = {"name": "p-9", "kind": "printer", "protocol": protocol, "address": "127.0.0.1"}
        with pytest.raises(BadAnswer, match=rf"^p-9 \({protocol} at 127\.0\.0\.1:\d+\): "):
            read(eq | {"port": server.server_address[1]}, {"api_key": "k"}, timeout=2)
    finally:
        server.shutdown()
        server.server_close()
