"""Shared pieces of the equipment agents: equipment descriptions, config and
secrets files, telemetry topics and payloads, logging.

Everything here is plain stdlib so that every agent (twin, probe, collector,
ingest) can import it on a bare Debian host.
"""

import json
import logging
import math
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

PROTOCOLS = ("moonraker", "octoprint", "modbus-tcp", "opcua", "mqtt", "rtsp")
KINDS = ("printer", "cnc", "plc", "sensor", "camera", "robot")
DEFAULT_PORTS: dict[str, int] = {
    "moonraker": 7125,
    "octoprint": 80,
    "modbus-tcp": 502,
    "opcua": 4840,
    "rtsp": 554,
}
TOPIC_ROOT = "nodekit"


class ConfigError(ValueError):
    """A config, equipment description or secrets file is unusable."""


@dataclass(frozen=True)
class Equipment:
    """One machine as nodekit describes it (see :func:`equipment_from_dict`)."""

    name: str
    kind: str
    protocol: str
    address: str
    port: int | None
    model: str = ""

    @property
    def endpoint(self) -> str:
        """``address:port`` (or just the address for MQTT devices)."""
        return self.address if self.port is None else f"{self.address}:{self.port}"

    @property
    def where(self) -> str:
        """``name (protocol at address:port)``, the prefix of every error message."""
        return f"{self.name} ({self.protocol} at {self.endpoint})"


def equipment_from_dict(raw: Mapping[str, Any] | Equipment) -> Equipment:
    """Validate an equipment description and fill in the protocol's default port."""
    if isinstance(raw, Equipment):
        return raw
    if not isinstance(raw, Mapping):
        raise ConfigError(f"equipment description must be an object, got {type(raw).__name__}")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError("equipment description without a name")
    protocol = raw.get("protocol")
    if protocol not in PROTOCOLS:
        raise ConfigError(f"{name}: unknown protocol {protocol!r} (one of {', '.join(PROTOCOLS)})")
    kind = raw.get("kind", "plc")
    if kind not in KINDS:
        raise ConfigError(f"{name}: unknown kind {kind!r} (one of {', '.join(KINDS)})")
    address = raw.get("address")
    if not isinstance(address, str) or not address:
        raise ConfigError(f"{name}: no address")
    port = raw.get("port")
    if port is None:
        port = DEFAULT_PORTS.get(protocol)
    elif isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ConfigError(f"{name}: port {port!r} is not a TCP port")
    model = raw.get("model") or ""
    return Equipment(name, kind, protocol, address, port, str(model))


def load_json(path: str | Path, what: str = "config") -> dict[str, Any]:
    """Read a JSON object from ``path``; :class:`ConfigError` names the file and the reason."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise ConfigError(f"{what} {path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{what} {path} must hold a JSON object")
    return data


class SecretsFile:
    """A secrets JSON file that may appear, change or vanish while an agent runs.

    :meth:`get` re-reads the file only when its size, mtime or inode changed.
    A missing file reads as ``{}``; a malformed one keeps the last good content
    (the writer may be half-way through). Values are never logged.
    """

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path else None
        self._stamp: tuple[int, int, int] | None = None
        self._data: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()

    def get(self) -> dict[str, dict[str, str]]:
        if self.path is None:
            return {}
        with self._lock:
            try:
                st = self.path.stat()
            except OSError:
                self._stamp, self._data = None, {}
                return {}
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
            if stamp != self._stamp:
                try:
                    raw = json.loads(self.path.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    return self._data  # half-written: keep what we had, retry next time
                self._stamp = stamp
                self._data = _clean_secrets(raw)
            return self._data

    def section(self, key: str) -> dict[str, str]:
        """The secrets of one equipment (or of ``broker``), ``{}`` when absent."""
        return self.get().get(key, {})


def _clean_secrets(raw: object) -> dict[str, dict[str, str]]:
    if not isinstance(raw, dict):
        return {}
    out: dict[str, dict[str, str]] = {}
    for key, section in raw.items():
        if isinstance(section, dict):
            out[str(key)] = {str(k): str(v) for k, v in section.items() if v is not None}
    return out


def utc_iso(ts: float) -> str:
    """ISO 8601 UTC with microseconds, e.g. ``2025-03-01T09:30:00.123456Z``."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def topic(node: str, equipment: str, metric: str) -> str:
    """``nodekit/<node>/<equipment>/<metric>``."""
    return f"{TOPIC_ROOT}/{node}/{equipment}/{metric}"


def metric_payload(ts: float, value: float) -> str:
    """``{"time": ..., "value": <float>}`` for a numeric metric."""
    return json.dumps({"time": utc_iso(ts), "value": float(value)})


def state_payload(ts: float, text: str) -> str:
    """``{"time": ..., "text": "printing"}`` for the ``state`` topic."""
    return json.dumps({"time": utc_iso(ts), "text": text})


def telemetry_messages(
    node: str, equipment: str, ts: float, state: str, metrics: Mapping[str, float]
) -> list[tuple[str, str]]:
    """(topic, payload) pairs for one reading: the state, then each finite metric."""
    out = [(topic(node, equipment, "state"), state_payload(ts, state))]
    for name in sorted(metrics):
        value = metrics[name]
        if isinstance(value, int | float) and math.isfinite(value):
            out.append((topic(node, equipment, name), metric_payload(ts, value)))
    return out


def setup_logging(name: str, verbose: bool = False) -> logging.Logger:
    """One line per event on stdout; quiet the libraries' own chatter."""
    logging.basicConfig(
        stream=sys.stdout,
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        force=True,
    )
    for lib in ("asyncua", "pymodbus", "paho"):
        logging.getLogger(lib).setLevel(logging.DEBUG if verbose else logging.ERROR)
    return logging.getLogger(name)
