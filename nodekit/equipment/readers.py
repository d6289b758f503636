"""Protocol clients: one :func:`read` for every protocol the collector polls.

``read(equipment, secrets, timeout)`` returns a :class:`Reading` or raises
:class:`Unreachable` (or a subclass) whose message is
``NAME (protocol at address:port): reason``. Metric names are the same for the
two printer protocols; :data:`METRICS` lists them per protocol.
"""

import asyncio
import http.client
import json
import socket
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .common import Equipment, equipment_from_dict
from .modbus import REGISTER_COUNT, REGISTER_MAP, ModbusError, decode, read_holding_registers

PRINTER_COMMON = (
    "extruder_temp",
    "extruder_target",
    "bed_temp",
    "bed_target",
    "progress",
    "print_duration",
)
_MODBUS_METRICS = tuple(r.metric for r in REGISTER_MAP if r.metric != "state")
METRICS: dict[str, tuple[str, ...]] = {
    "moonraker": (*PRINTER_COMMON, "extruder_power", "bed_power", "filament_used"),
    "octoprint": (*PRINTER_COMMON, "print_time_left"),
    "modbus-tcp": _MODBUS_METRICS,
    "opcua": ("cycle_count", "temperature", "spindle_rpm", "spindle_load", "humidity", "pressure"),
    "rtsp": (),
    "mqtt": (),  # not polled: the device publishes its own metrics
}
MACHINE_ONLY = ("spindle_rpm", "spindle_load")
SENSOR_ONLY = ("humidity", "pressure")
STATES: dict[str, tuple[str, ...]] = {
    "moonraker": ("printing", "complete", "standby", "paused", "cancelled", "error", "startup"),
    "octoprint": ("printing", "complete", "operational", "paused", "error", "closed"),
    "modbus-tcp": ("idle", "running", "error"),
    "opcua": ("idle", "running", "error"),
    "rtsp": ("reachable", "error"),
    "mqtt": ("publishes",),
}


def metrics_for(protocol: str, kind: str) -> tuple[str, ...]:
    """The metrics a reading of this protocol holds for this kind of equipment."""
    names = METRICS[protocol]
    if protocol in ("modbus-tcp", "opcua"):
        skip = MACHINE_ONLY if kind == "sensor" else SENSOR_ONLY
        names = tuple(n for n in names if n not in skip)
    return names


@dataclass
class Reading:
    state: str
    metrics: dict[str, float]
    texts: dict[str, str] = field(default_factory=dict)


class Unreachable(Exception):
    """The machine did not answer usefully; ``str()`` names it and the reason."""

    def __init__(self, equipment: Equipment, reason: str) -> None:
        self.equipment = equipment
        self.reason = reason
        super().__init__(f"{equipment.where}: {reason}")


class AuthRefused(Unreachable):
    """The machine refused our API key or login."""


class BadAnswer(Unreachable):
    """The machine answered something we cannot read."""


class NotPolled(Unreachable):
    """MQTT devices publish their own telemetry; nobody polls them."""


def _num(obj: Any, key: str) -> float | None:
    value = obj.get(key) if isinstance(obj, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _put(metrics: dict[str, float], name: str, value: float | None) -> None:
    if value is not None:
        metrics[name] = value


_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _oserror_reason(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError | socket.timeout):
        return f"no answer within {timeout:g} s"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError | http.client.RemoteDisconnected):
        return "connection closed by the machine"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve address ({exc.strerror})"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[0].lower() + exc.strerror[1:]
    return str(exc) or type(exc).__name__


def _get_json(eq: Equipment, path: str, headers: dict[str, str], timeout: float) -> Any:
    """GET ``http://address:port/path`` and parse JSON; HTTP errors raise."""
    request = urllib.request.Request(f"http://{eq.endpoint}{path}", headers=headers)
    try:
        with _NO_PROXY.open(request, timeout=timeout) as resp:
            body = resp.read(2_000_000)
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            raise AuthRefused(eq, f"API key refused (HTTP {exc.code} on {path})") from None
        raise Unreachable(eq, f"HTTP {exc.code} on {path}") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        text = _oserror_reason(reason, timeout) if isinstance(reason, BaseException) else reason
        raise Unreachable(eq, str(text)) from None
    except (OSError, http.client.HTTPException) as exc:
        raise Unreachable(eq, _oserror_reason(exc, timeout)) from None
    try:
        return json.loads(body)
    except ValueError:
        raise BadAnswer(eq, f"answer to {path} is not JSON") from None


def read_moonraker(eq: Equipment, secrets: Mapping[str, str], timeout: float) -> Reading:
    info = _get_json(eq, "/printer/info", {}, timeout)
    result = info.get("result") if isinstance(info, dict) else None
    if not isinstance(result, dict) or not isinstance(result.get("state"), str):
        raise BadAnswer(eq, "/printer/info has no result.state (not Moonraker?)")
    klippy = result["state"]
    query = "/printer/objects/query?print_stats&extruder&heater_bed&virtual_sdcard"
    try:
        answer = _get_json(eq, query, {}, timeout)
    except AuthRefused:
        raise
    except Unreachable:
        if klippy == "ready":
            raise
        answer = {"result": {"status": {}}}  # Klipper down: Moonraker answers, objects do not
    status = _obj(answer).get("result")
    status = status.get("status") if isinstance(status, dict) else None
    if not isinstance(status, dict):
        raise BadAnswer(eq, "/printer/objects/query has no result.status")
    if klippy == "ready" and not isinstance(status.get("print_stats"), dict):
        raise BadAnswer(eq, "/printer/objects/query has no print_stats")
    stats = _obj(status.get("print_stats"))
    if klippy in ("error", "shutdown"):
        state = "error"
    elif klippy != "ready":
        state = klippy
    else:
        state = str(stats.get("state") or "unknown")
    metrics: dict[str, float] = {}
    for obj, prefix in (("extruder", "extruder"), ("heater_bed", "bed")):
        heater = _obj(status.get(obj))
        _put(metrics, f"{prefix}_temp", _num(heater, "temperature"))
        _put(metrics, f"{prefix}_target", _num(heater, "target"))
        _put(metrics, f"{prefix}_power", _num(heater, "power"))
    _put(metrics, "progress", _num(status.get("virtual_sdcard"), "progress"))
    _put(metrics, "print_duration", _num(stats, "print_duration"))
    _put(metrics, "filament_used", _num(stats, "filament_used"))
    texts = {k: str(stats[k]) for k in ("filename", "message") if stats.get(k)}
    if klippy != "ready" and result.get("state_message"):
        texts["message"] = str(result["state_message"])
    return Reading(state, metrics, texts)


def read_octoprint(eq: Equipment, secrets: Mapping[str, str], timeout: float) -> Reading:
    key = secrets.get("api_key")
    if not key:
        raise AuthRefused(eq, "no api_key for it in the secrets file")
    headers = {"X-Api-Key": key}
    try:
        printer = _get_json(eq, "/api/printer", headers, timeout)
    except Unreachable as exc:
        if "HTTP 409" not in exc.reason:
            raise
        return Reading("error", {}, {"message": "printer is not operational (HTTP 409)"})
    job = _get_json(eq, "/api/job", headers, timeout)
    state_obj = _obj(printer).get("state")
    if not isinstance(state_obj, dict) or not isinstance(state_obj.get("flags"), dict):
        raise BadAnswer(eq, "/api/printer has no state.flags (not OctoPrint?)")
    if not isinstance(job, dict):
        raise BadAnswer(eq, "/api/job is not a JSON object")
    flags = state_obj["flags"]
    progress = _obj(job.get("progress"))
    completion = _num(progress, "completion")
    if flags.get("error"):
        state = "error"
    elif flags.get("closedOrError") or flags.get("operational") is False:
        state = "closed"
    elif flags.get("printing"):
        state = "printing"
    elif flags.get("paused") or flags.get("pausing"):
        state = "paused"
    elif completion is not None and completion >= 100.0:
        state = "complete"
    else:
        state = "operational"
    temps = _obj(printer.get("temperature"))
    metrics: dict[str, float] = {}
    for sensor, prefix in (("tool0", "extruder"), ("bed", "bed")):
        _put(metrics, f"{prefix}_temp", _num(temps.get(sensor), "actual"))
        _put(metrics, f"{prefix}_target", _num(temps.get(sensor), "target"))
    _put(metrics, "progress", None if completion is None else completion / 100.0)
    _put(metrics, "print_duration", _num(progress, "printTime"))
    _put(metrics, "print_time_left", _num(progress, "printTimeLeft"))
    texts: dict[str, str] = {}
    file = _obj(_obj(job.get("job")).get("file"))
    if file.get("name"):
        texts["filename"] = str(file["name"])
    if state_obj.get("error"):
        texts["message"] = str(state_obj["error"])
    return Reading(state, metrics, texts)


def read_modbus(eq: Equipment, secrets: Mapping[str, str], timeout: float) -> Reading:
    assert eq.port is not None
    try:
        regs = read_holding_registers(eq.address, eq.port, 0, REGISTER_COUNT, timeout=timeout)
    except ModbusError as exc:
        raise BadAnswer(eq, str(exc)) from None
    except OSError as exc:
        raise Unreachable(eq, _oserror_reason(exc, timeout)) from None
    state, metrics = decode(regs, eq.kind)
    return Reading(state, metrics, {})


def read_opcua(eq: Equipment, secrets: Mapping[str, str], timeout: float) -> Reading:
    from asyncua.ua.uaerrors import UaError

    from . import opcua

    password = secrets.get("password") or None

    async def _bounded() -> tuple[str, dict[str, float], dict[str, str]]:
        return await asyncio.wait_for(opcua.read_opcua(eq, password, timeout), timeout)

    try:
        state, metrics, texts = asyncio.run(_bounded())
    except opcua.LoginRefused as exc:
        hint = "" if password else "; no password for it in the secrets file"
        raise AuthRefused(eq, f"{exc}{hint}") from None
    except LookupError as exc:
        raise BadAnswer(eq, f"the OPC UA endpoint does not browse: {exc}") from None
    except (OSError, TimeoutError) as exc:
        raise Unreachable(eq, _oserror_reason(exc, timeout)) from None
    except UaError as exc:
        raise Unreachable(eq, f"OPC UA error {type(exc).__name__}") from None
    return Reading(state, metrics, texts)


def read_rtsp(eq: Equipment, secrets: Mapping[str, str], timeout: float) -> Reading:
    assert eq.port is not None
    request = (
        f"OPTIONS rtsp://{eq.endpoint}/ RTSP/1.0\r\nCSeq: 1\r\nUser-Agent: nodekit\r\n\r\n"
    ).encode()
    data = b""
    try:
        with socket.create_connection((eq.address, eq.port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(request)
            while b"\r\n\r\n" not in data and len(data) < 8192:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
    except OSError as exc:
        raise Unreachable(eq, _oserror_reason(exc, timeout)) from None
    head = data.split(b"\r\n\r\n")[0].decode("latin-1")
    lines = head.split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or parts[0] != "RTSP/1.0" or not parts[1].isdigit():
        raise BadAnswer(eq, "no RTSP/1.0 answer to OPTIONS")
    texts = {"status": " ".join(parts[1:])}
    for line in lines[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == "public":
            texts["public"] = value.strip()
    state = "error" if parts[1].startswith("5") else "reachable"
    return Reading(state, {}, texts)


def read_mqtt(eq: Equipment, secrets: Mapping[str, str], timeout: float) -> Reading:
    raise NotPolled(eq, "mqtt devices publish their own telemetry, they are not polled")


_READERS = {
    "moonraker": read_moonraker,
    "octoprint": read_octoprint,
    "modbus-tcp": read_modbus,
    "opcua": read_opcua,
    "rtsp": read_rtsp,
    "mqtt": read_mqtt,
}


def read(
    equipment: Mapping[str, Any] | Equipment,
    secrets: Mapping[str, str] | None = None,
    timeout: float = 3.0,
) -> Reading:
    """Poll one machine once. ``secrets`` is that machine's section of the secrets file.

    Raises :class:`Unreachable` (any failure to get a state) or
    :class:`~.common.ConfigError` (a bad equipment description).
    """
    eq = equipment_from_dict(equipment)
    try:
        return _READERS[eq.protocol](eq, secrets or {}, timeout)
    except Unreachable:
        raise
    except (AttributeError, TypeError, KeyError, IndexError, ValueError) as exc:
        # an answer shaped unlike the protocol's: report it, never crash the caller
        raise BadAnswer(eq, f"malformed answer ({type(exc).__name__})") from None
