"""Twin servers for Modbus TCP (pymodbus), RTSP (port check) and MQTT devices.

Every twin has the same small async interface: ``start()`` listens (or, for
MQTT, publishes), ``stop()`` closes the port and drops connections (the
``offline`` state), ``refresh()`` pushes simulated values now, ``close()``
ends it for good, ``port`` is the bound port.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt
from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from . import mqttio
from .common import telemetry_messages
from .modbus import REGISTER_COUNT, UNIT_ID, encode
from .sim import Machine

log = logging.getLogger("nodekit.equipment.twin")


class ModbusTwin:
    """Holding registers 0..REGISTER_COUNT-1 of unit id 1, read-only.

    The registers are filled from the simulation on every request, so values
    are always current (never older than the request itself).
    """

    def __init__(self, machine: Machine, bind: str, port: int) -> None:
        self.machine = machine
        self.bind = bind
        self.port = port
        self._server: ModbusTcpServer | None = None

    @property
    def listening(self) -> bool:
        return self._server is not None

    async def _action(  # noqa: PLR0917 (pymodbus calls it with 6 positional arguments)
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        if set_values is not None:
            return ExcCodes.ILLEGAL_FUNCTION  # a monitor never writes
        for i, value in enumerate(encode(self.machine.machine())):
            registers[i - start_address] = value
        return None

    async def start(self) -> None:
        if self._server is not None:
            return
        device = SimDevice(
            id=UNIT_ID,
            simdata=[SimData(0, count=REGISTER_COUNT, values=0, datatype=DataType.REGISTERS)],
            action=self._action,
        )
        server = ModbusTcpServer(device, address=(self.bind, self.port))
        try:
            await server.serve_forever(background=True)
        except RuntimeError as exc:  # pymodbus reports a busy port this way
            raise OSError(f"{exc} ({self.bind}:{self.port})") from exc
        listener = server.transport
        sockets = getattr(listener, "sockets", None)
        if sockets:
            self.port = sockets[0].getsockname()[1]
        self._server = server

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            await server.shutdown()  # type: ignore[no-untyped-call]

    close = stop

    async def refresh(self) -> None:
        return


RTSP_PUBLIC = "OPTIONS, DESCRIBE, SETUP, TEARDOWN, PLAY, PAUSE, GET_PARAMETER"


def rtsp_answer(request: bytes, fault: str) -> bytes:
    """The answer to one RTSP request (headers only, no body)."""
    lines = request.decode("latin-1").split("\r\n")
    parts = lines[0].split()
    cseq = "0"
    for line in lines[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == "cseq":
            cseq = value.strip()
    if len(parts) != 3 or not parts[2].startswith("RTSP/"):
        status = "400 Bad Request"
    elif fault == "error":
        status = "503 Service Unavailable"
    elif parts[0] == "OPTIONS":
        status = "200 OK"
    else:
        status = "501 Not Implemented"
    head = [f"RTSP/1.0 {status}", f"CSeq: {cseq}", "Server: nodekit-twin"]
    if status.startswith("200"):
        head.append(f"Public: {RTSP_PUBLIC}")
    return ("\r\n".join(head) + "\r\n\r\n").encode()


class RtspTwin:
    """Answers ``OPTIONS`` (200 with ``Public:``; 503 in ``error``); nothing else."""

    def __init__(self, machine: Machine, bind: str, port: int) -> None:
        self.machine = machine
        self.bind = bind
        self.port = port
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def listening(self) -> bool:
        return self._server is not None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30.0)
                writer.write(rtsp_answer(request, self.machine.fault))
                await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def start(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._serve, self.bind, self.port)
            self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            for writer in list(self._writers):
                writer.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 2.0)

    close = stop

    async def refresh(self) -> None:
        return


class MqttTwin:
    """A device that publishes its own telemetry every ``interval_s``.

    It connects as user = equipment name with the ``password`` from the
    secrets file, and only once that password exists. ``stop()`` (offline)
    disconnects; a changed password makes it reconnect with the new one.
    """

    def __init__(
        self,
        machine: Machine,
        *,
        node: str,
        host: str,
        port: int,
        interval_s: float,
        password: Callable[[], str | None],
    ) -> None:
        self.machine = machine
        self.node = node
        self.host = host
        self.port = port
        self.interval_s = interval_s
        self._password = password
        self._client: mqtt.Client | None = None
        self._client_password: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._waiting_logged = False
        self.published = 0

    @property
    def listening(self) -> bool:
        return self._task is not None

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await asyncio.to_thread(self._drop_client)

    close = stop

    def _drop_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            mqttio.disconnect(client)

    def _ensure_client(self) -> mqtt.Client | None:
        name = self.machine.equipment.name
        password = self._password()
        if not password:
            if not self._waiting_logged:
                log.info("%s: no MQTT password in the secrets file yet, not connecting", name)
                self._waiting_logged = True
            self._drop_client()
            return None
        if self._client is not None and password != self._client_password:
            log.info("%s: MQTT password changed, reconnecting", name)
            self._drop_client()
        if self._client is None:
            self._client_password = password
            self._client = mqttio.connect(
                client_id=f"nodekit-twin-{name}",
                host=self.host,
                port=self.port,
                user=name,
                password=password,
                log=log,
            )
        return self._client

    async def refresh(self) -> None:
        """Publish one reading now (if connected)."""
        await self.publish()

    async def publish(self) -> bool:
        """Publish one reading; False when not connected (yet)."""
        client = self._ensure_client()
        if client is None or not client.is_connected():
            return False
        state, values = self.machine.reading()
        eq = self.machine.equipment.name
        for topic, payload in telemetry_messages(self.node, eq, time.time(), state, values):
            client.publish(topic, payload, qos=1)
        self.published += 1
        return True

    async def _loop(self) -> None:
        while True:
            sent = False
            try:
                sent = await self.publish()
            except Exception as exc:  # keep the device alive
                log.warning("%s: publish failed: %s", self.machine.equipment.name, exc)
            # not connected yet: look again soon, so the first reading is not an interval late
            await asyncio.sleep(self.interval_s if sent else min(self.interval_s, 0.5))
