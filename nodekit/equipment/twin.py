"""Digital twin of one machine: ``python -m nodekit_equipment.twin --config FILE``.

Config (JSON)::

    {"node": "lyon-additive-01",
     "equipment": {"name": "printer-01", "kind": "printer", "protocol": "moonraker",
                   "address": "10.41.1.101", "port": 7125, "model": "Prusa MK4"},
     "bind": "0.0.0.0",
     "state_file": "/var/lib/nodekit-twin/state",
     "secrets_file": "/var/lib/nodekit-twin/secrets.json",
     "broker": {"host": "10.41.2.10", "port": 1883},     (mqtt devices only)
     "interval_s": 5}                                     (mqtt devices only)

The twin listens on the equipment's port. The state file holds ``ok``,
``error`` or ``offline`` (missing = ``ok``) and is re-read every half second,
as is the secrets file (which may appear after the twin started). One line
per state change goes to stdout; secrets never do.
"""

import argparse
import asyncio
import contextlib
import logging
import signal
import socket
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from .common import (
    ConfigError,
    Equipment,
    SecretsFile,
    equipment_from_dict,
    load_json,
    setup_logging,
)
from .sim import FAULTS, Clock, Machine

log = logging.getLogger("nodekit.equipment.twin")
T = TypeVar("T")
SECRET_KEYS = {"octoprint": "api_key", "opcua": "password", "mqtt": "password"}


class TwinServer(Protocol):
    port: int

    @property
    def listening(self) -> bool: ...
    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def close(self) -> None: ...
    async def refresh(self) -> None: ...


@dataclass(frozen=True)
class TwinConfig:
    node: str
    equipment: Equipment
    bind: str = "0.0.0.0"
    state_file: Path | None = None
    secrets_file: Path | None = None
    broker_host: str = "127.0.0.1"
    broker_port: int = 1883
    interval_s: float = 5.0


def config_from_dict(raw: dict[str, Any]) -> TwinConfig:
    """Validate a twin config (see the module docstring)."""
    node = raw.get("node")
    if not isinstance(node, str) or not node:
        raise ConfigError("twin config: no node name")
    eq = equipment_from_dict(raw.get("equipment") or {})
    broker = raw.get("broker") or {}
    if eq.protocol == "mqtt" and not broker.get("host"):
        raise ConfigError(f"{eq.name}: an mqtt twin needs broker.host")
    interval = float(raw.get("interval_s") or 5.0)
    if interval <= 0:
        raise ConfigError(f"{eq.name}: interval_s must be positive")
    state_file, secrets_file = raw.get("state_file"), raw.get("secrets_file")
    return TwinConfig(
        node=node,
        equipment=eq,
        bind=str(raw.get("bind") or "0.0.0.0"),
        state_file=Path(state_file) if state_file else None,
        secrets_file=Path(secrets_file) if secrets_file else None,
        broker_host=str(broker.get("host") or "127.0.0.1"),
        broker_port=int(broker.get("port") or 1883),
        interval_s=interval,
    )


def read_state_file(path: Path | None) -> str | None:
    """``ok`` / ``error`` / ``offline``; missing file = ``ok``; None if unreadable/unknown."""
    if path is None:
        return "ok"
    try:
        text = path.read_text(encoding="utf-8").strip().lower()
    except FileNotFoundError:
        return "ok"
    except OSError:
        return None
    return text if text in FAULTS else None


def free_port(bind: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((bind, 0))
        return int(sock.getsockname()[1])


def make_server(cfg: TwinConfig, machine: Machine, secrets: SecretsFile) -> TwinServer:
    """The protocol server for the equipment's protocol."""
    eq = cfg.equipment

    def secret(key: str) -> Any:
        return lambda: secrets.section(eq.name).get(key) or None

    port = eq.port if eq.port is not None else 0
    if eq.protocol == "moonraker":
        from .httpd import HttpTwin, MoonrakerApp

        return HttpTwin(MoonrakerApp(machine), cfg.bind, port)
    if eq.protocol == "octoprint":
        from .httpd import HttpTwin, OctoprintApp

        return HttpTwin(OctoprintApp(machine, secret("api_key")), cfg.bind, port)
    if eq.protocol == "modbus-tcp":
        from .servers import ModbusTwin

        return ModbusTwin(machine, cfg.bind, port)
    if eq.protocol == "opcua":
        from .opcua import OpcuaTwin

        if port == 0:  # the endpoint URL must name the real port
            port = free_port(cfg.bind)
        return OpcuaTwin(machine, cfg.bind, port, secret("password"))
    if eq.protocol == "rtsp":
        from .servers import RtspTwin

        return RtspTwin(machine, cfg.bind, port)
    from .servers import MqttTwin

    return MqttTwin(
        machine,
        node=cfg.node,
        host=cfg.broker_host,
        port=cfg.broker_port,
        interval_s=cfg.interval_s,
        password=secret("password"),
    )


class Twin:
    """A machine, its protocol server and the state/secrets file watcher."""

    def __init__(
        self,
        cfg: TwinConfig,
        *,
        clock: Clock | None = None,
        job_s: float = 90.0,
        watch_s: float = 0.5,
    ) -> None:
        self.cfg = cfg
        kwargs: dict[str, Any] = {"job_s": job_s}
        if clock is not None:
            kwargs["clock"] = clock
        self.machine = Machine(cfg.equipment, **kwargs)
        self.secrets = SecretsFile(cfg.secrets_file)
        self.server = make_server(cfg, self.machine, self.secrets)
        self.watch_s = watch_s
        self._bad_state_logged = False
        self._start_error = ""
        self._secret_key = SECRET_KEYS.get(cfg.equipment.protocol)
        self._has_secret: bool | None = None

    @property
    def port(self) -> int:
        return self.server.port

    async def start(self) -> None:
        eq = self.cfg.equipment
        state = read_state_file(self.cfg.state_file) or "ok"
        self.machine.set_fault(state)
        if state != "offline":
            await self.server.start()
        if eq.protocol == "mqtt":
            where, port = f"mqtt to broker {self.cfg.broker_host}", f":{self.cfg.broker_port}"
        else:
            where, port = f"{eq.protocol} on {self.cfg.bind}", f":{self.server.port}"
        model = eq.model or eq.kind
        log.info("%s: twin of %s serving %s%s, state %s", eq.name, model, where, port, state)
        self._check_secret()
        if eq.protocol == "opcua":
            log.info("%s: OPC UA security policy None, the password travels in clear", eq.name)

    async def apply(self, state: str) -> None:
        """Switch to ``ok`` / ``error`` / ``offline``; logs one line when it changes."""
        eq = self.cfg.equipment
        before = self.machine.fault
        if self.machine.set_fault(state):
            log.info("%s: state %s -> %s", eq.name, before, state)
        if state == "offline":
            if self.server.listening:
                await self.server.stop()
            return
        if self.server.listening:
            return
        try:  # back from offline; retried at every check until it works
            await self.server.start()
        except OSError as exc:
            reason = f"{exc.strerror or exc}"
            if reason != self._start_error:
                log.warning(
                    "%s (%s on %s:%s): cannot listen: %s",
                    eq.name,
                    eq.protocol,
                    self.cfg.bind,
                    self.server.port,
                    reason,
                )
                self._start_error = reason
        else:
            self._start_error = ""

    async def check(self) -> None:
        """Re-read the state file and the secrets file once."""
        state = read_state_file(self.cfg.state_file)
        if state is None:
            if not self._bad_state_logged:
                name, path = self.cfg.equipment.name, self.cfg.state_file
                log.warning("%s: state file %s unreadable or not ok/error/offline", name, path)
                self._bad_state_logged = True
        else:
            self._bad_state_logged = False
            await self.apply(state)
        self._check_secret()

    def _check_secret(self) -> None:
        """Log (the name, never the value) when the needed secret appears or goes."""
        if self._secret_key is None:
            return
        name = self.cfg.equipment.name
        has = bool(self.secrets.section(name).get(self._secret_key))
        if has != self._has_secret:
            where = f"{self.cfg.secrets_file} [{name}].{self._secret_key}"
            if has:
                log.info("%s: secret %s present", name, where)
            else:
                wait = "not connecting" if self.cfg.equipment.protocol == "mqtt" else "refusing"
                log.info("%s: secret %s missing, %s until it exists", name, where, wait)
            self._has_secret = has

    async def run(self, stop: asyncio.Event) -> None:
        await self.start()
        try:
            while not stop.is_set():
                await self.check()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.watch_s)
        finally:
            await self.server.close()
            log.info("%s: twin stopped", self.cfg.equipment.name)

    async def close(self) -> None:
        await self.server.close()


class TwinThread:
    """A :class:`Twin` on its own event loop thread (tests, embedding).

    ``refresh()`` re-reads the state and secrets files and pushes values now,
    so a test needs no sleeps; ``stop()`` shuts it down.
    """

    def __init__(self, cfg: TwinConfig, **twin_kwargs: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self._stop = asyncio.Event()
        self.twin = self.call(self._make(cfg, twin_kwargs))
        self._runner: Future[None] = asyncio.run_coroutine_threadsafe(
            self.twin.run(self._stop), self.loop
        )
        try:
            self.call(self._started())
        except BaseException:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.loop.close()
            raise

    async def _make(self, cfg: TwinConfig, kwargs: dict[str, Any]) -> Twin:
        return Twin(cfg, **kwargs)

    async def _started(self) -> None:
        while not self.twin.server.listening and self.twin.machine.fault != "offline":
            if self._runner.done():
                self._runner.result()  # raises why the twin could not start
            await asyncio.sleep(0.01)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    @property
    def port(self) -> int:
        return self.twin.port

    @property
    def machine(self) -> Machine:
        return self.twin.machine

    def refresh(self) -> None:
        async def _refresh() -> None:
            await self.twin.check()
            await self.twin.server.refresh()

        self.call(_refresh())

    def stop(self) -> None:
        if self._thread.is_alive() and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._stop.set)
            with contextlib.suppress(Exception):
                self._runner.result(30)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.loop.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nodekit_equipment.twin", description=__doc__)
    parser.add_argument("--config", required=True, help="twin config JSON file")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    setup_logging("nodekit.equipment.twin", args.verbose)
    try:
        cfg = config_from_dict(load_json(args.config, "twin config"))
    except ConfigError as exc:
        log.error("%s", exc)
        return 2

    async def _main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await Twin(cfg).run(stop)

    try:
        asyncio.run(_main())
    except OSError as exc:
        eq = cfg.equipment
        reason = exc.strerror or exc
        log.error(
            "%s (%s on %s:%s): cannot listen: %s", eq.name, eq.protocol, cfg.bind, eq.port, reason
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
