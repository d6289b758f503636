"""HTTP twins: the Moonraker and OctoPrint API subsets a monitor uses.

:class:`MoonrakerApp` and :class:`OctoprintApp` turn (path, headers) into
(status, JSON body) without any socket, :class:`HttpTwin` serves one of them
with a :class:`http.server.ThreadingHTTPServer` that can stop and start
listening again on the same port (the ``offline`` state).
"""

import asyncio
import hmac
import json
import threading
import time
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from .sim import Machine

JSON = dict[str, Any]
MOONRAKER_VERSION = "v0.9.3-nodekit"
KLIPPER_VERSION = "v0.12.0-nodekit"
OCTOPRINT_VERSION = "1.10.3"
SecretGetter = Callable[[], str | None]


class App(Protocol):
    def handle(self, method: str, target: str, headers: Mapping[str, str]) -> tuple[int, JSON]:
        """Answer one request: (HTTP status, JSON body)."""
        ...


class MoonrakerApp:
    """``/server/info``, ``/printer/info``, ``/printer/objects/list|query``."""

    def __init__(self, machine: Machine) -> None:
        self.machine = machine
        self._started = time.monotonic()

    def _objects(self) -> dict[str, JSON]:
        p = self.machine.printer()
        return {
            "print_stats": {
                "state": p.state,
                "filename": p.filename,
                "print_duration": p.print_duration,
                "total_duration": p.total_duration,
                "filament_used": p.filament_used,
                "message": p.message,
            },
            "extruder": {
                "temperature": p.extruder_temp,
                "target": p.extruder_target,
                "power": p.extruder_power,
            },
            "heater_bed": {"temperature": p.bed_temp, "target": p.bed_target, "power": p.bed_power},
            "virtual_sdcard": {
                "progress": p.progress,
                "is_active": p.state == "printing",
                "file_path": f"/home/pi/printer_data/gcodes/{p.filename}",
            },
        }

    def handle(self, method: str, target: str, headers: Mapping[str, str]) -> tuple[int, JSON]:
        url = urlsplit(target)
        if method != "GET":
            return 405, _moonraker_error(405, f"{method} not supported by this twin")
        error = self.machine.fault != "ok"
        if url.path == "/server/info":
            return 200, {
                "result": {
                    "klippy_connected": True,
                    "klippy_state": "error" if error else "ready",
                    "components": ["server", "file_manager", "klippy_apis", "history"],
                    "failed_components": [],
                    "warnings": [],
                    "moonraker_version": MOONRAKER_VERSION,
                    "api_version": [1, 5, 0],
                    "api_version_string": "1.5.0",
                }
            }
        if url.path == "/printer/info":
            p = self.machine.printer()
            return 200, {
                "result": {
                    "state": "error" if error else "ready",
                    "state_message": p.message if error else "Printer is ready",
                    "hostname": self.machine.equipment.name,
                    "software_version": KLIPPER_VERSION,
                    "cpu_info": "4 core ARMv7 Processor rev 3 (v7l)",
                }
            }
        if url.path == "/printer/objects/list":
            return 200, {"result": {"objects": sorted(self._objects())}}
        if url.path == "/printer/objects/query":
            query = parse_qs(url.query, keep_blank_values=True)
            available = self._objects()
            status: dict[str, JSON] = {}
            for name, values in query.items():
                if name not in available:
                    continue
                wanted = {a for v in values for a in v.split(",") if a}
                obj = available[name]
                status[name] = {k: v for k, v in obj.items() if not wanted or k in wanted}
            eventtime = round(time.monotonic() - self._started + 1000.0, 6)
            return 200, {"result": {"eventtime": eventtime, "status": status}}
        return 404, _moonraker_error(404, f"No route {method} {url.path}")


def _moonraker_error(code: int, message: str) -> JSON:
    return {"error": {"code": code, "message": message, "traceback": ""}}


class OctoprintApp:
    """``/api/version``, ``/api/printer``, ``/api/job``; X-Api-Key required."""

    def __init__(self, machine: Machine, api_key: SecretGetter) -> None:
        self.machine = machine
        self.api_key = api_key

    def authorized(self, target: str, headers: Mapping[str, str]) -> bool:
        expected = self.api_key()
        if not expected:
            return False  # the secrets file has not arrived yet: refuse everything
        given = headers.get("X-Api-Key")
        if given is None:
            given = parse_qs(urlsplit(target).query).get("apikey", [""])[0]
        return hmac.compare_digest(given.encode(), expected.encode())

    def handle(self, method: str, target: str, headers: Mapping[str, str]) -> tuple[int, JSON]:
        if not self.authorized(target, headers):
            return 403, {"error": "You don't have the permission to access the requested resource."}
        path = urlsplit(target).path
        if method != "GET":
            return 405, {"error": "Method not allowed"}
        if path == "/api/version":
            v = OCTOPRINT_VERSION
            return 200, {"api": "0.1", "server": v, "text": f"OctoPrint {v}"}
        p = self.machine.printer()
        error = p.state == "error"
        printing = p.state == "printing"
        text = "Error" if error else "Printing" if printing else "Operational"
        if path == "/api/printer":
            flags = {
                "operational": not error,
                "printing": printing,
                "paused": False,
                "pausing": False,
                "cancelling": False,
                "sdReady": True,
                "error": error,
                "ready": not error and not printing,
                "closedOrError": error,
                "finishing": False,
                "resuming": False,
            }
            return 200, {
                "state": {"text": text, "error": p.message if error else "", "flags": flags},
                "temperature": {
                    "tool0": {"actual": p.extruder_temp, "target": p.extruder_target, "offset": 0},
                    "bed": {"actual": p.bed_temp, "target": p.bed_target, "offset": 0},
                },
            }
        if path == "/api/job":
            return 200, {
                "job": {
                    "file": {"name": p.filename, "origin": "local", "path": p.filename},
                    "estimatedPrintTime": p.estimated_time,
                    "filament": {"tool0": {"length": 2350.0, "volume": 5.65}},
                },
                "progress": {
                    "completion": round(100.0 * p.progress, 3),
                    "filepos": int(p.progress * 1_800_000),
                    "printTime": round(p.print_duration),
                    "printTimeLeft": round(max(0.0, p.estimated_time - p.print_duration)),
                    "printTimeLeftOrigin": "estimate",
                },
                "state": text,
            }
        return 404, {"error": f"Not found: {path}"}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: App) -> None:
        self.app = app
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "nodekit-twin"
    sys_version = ""

    def _answer(self) -> None:
        headers = dict(self.headers.items())
        status, body = self.server.app.handle(self.command, self.path, headers)
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = _answer
    do_POST = _answer

    def log_message(self, format: str, *args: Any) -> None:
        return  # one line per state change only, not per request


class HttpTwin:
    """Serve an :class:`App`; :meth:`stop` closes the port, :meth:`start` reopens it."""

    def __init__(self, app: App, bind: str, port: int) -> None:
        self.app = app
        self.bind = bind
        self.port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def listening(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        if self._server is not None:
            return
        server = _Server((self.bind, self.port), self.app)
        self.port = server.server_address[1]  # keep an ephemeral port across offline periods
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()

    async def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            await asyncio.to_thread(server.shutdown)
            server.server_close()
        if thread is not None:
            await asyncio.to_thread(thread.join, 2.0)

    close = stop

    async def refresh(self) -> None:
        return  # answers are computed per request
