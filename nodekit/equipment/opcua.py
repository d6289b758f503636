"""OPC UA: the twin's address space, its server and the reader's client.

Address space (namespace ``urn:nodekit:equipment``)::

    Objects/
      <equipment name>/          Object
        State          String    running | error
        CycleCount     UInt32    cycles (sensors: measurements)
        Temperature    Double    °C
        SpindleSpeed   Double    rpm   (machines)
        SpindleLoad    Double    %     (machines)
        Humidity       Double    %RH   (sensors)
        Pressure       Double    hPa   (sensors)

Logins: user ``nodekit`` with the ``password`` from the secrets file;
anonymous access is off. Security policy is ``None``: the password travels in
clear on the network, real sites should use Basic256Sha256 (out of scope).
"""

import asyncio
import contextlib
import hmac
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from asyncua import ua
from asyncua.client.client import Client
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.binary_server_asyncio import BinaryServer
from asyncua.server.server import Server
from asyncua.ua.uaerrors import UaStatusCodeError

from .common import Equipment
from .sim import Machine

NAMESPACE = "urn:nodekit:equipment"
PATH = "/nodekit/"
USER = "nodekit"
log = logging.getLogger("nodekit.equipment.opcua")


@dataclass(frozen=True)
class Variable:
    browse_name: str
    metric: str  # "state" for the state text, else the metric name in readings
    variant: ua.VariantType
    kinds: str  # "all", "machine" or "sensor"
    unit: str


VARIABLES: tuple[Variable, ...] = (
    Variable("State", "state", ua.VariantType.String, "all", ""),
    Variable("CycleCount", "cycle_count", ua.VariantType.UInt32, "all", ""),
    Variable("Temperature", "temperature", ua.VariantType.Double, "all", "°C"),
    Variable("SpindleSpeed", "spindle_rpm", ua.VariantType.Double, "machine", "rpm"),
    Variable("SpindleLoad", "spindle_load", ua.VariantType.Double, "machine", "%"),
    Variable("Humidity", "humidity", ua.VariantType.Double, "sensor", "%RH"),
    Variable("Pressure", "pressure", ua.VariantType.Double, "sensor", "hPa"),
)
METRIC_BY_BROWSE_NAME = {v.browse_name: v.metric for v in VARIABLES}


def variables_for(kind: str) -> tuple[Variable, ...]:
    group = "sensor" if kind == "sensor" else "machine"
    return tuple(v for v in VARIABLES if v.kinds in ("all", group))


def endpoint_url(address: str, port: int) -> str:
    return f"opc.tcp://{address}:{port}{PATH}"


class _Users:
    """Only ``nodekit`` with the current password; nobody before the secret exists."""

    def __init__(self, password: Callable[[], str | None]) -> None:
        self.password = password

    def get_user(
        self,
        iserver: Any,
        username: str | None = None,
        password: str | None = None,
        certificate: Any = None,
    ) -> User | None:
        expected = self.password()
        if not expected or username != USER or password is None:
            return None
        if not hmac.compare_digest(password.encode(), expected.encode()):
            return None
        return User(role=UserRole.User, name=USER)


class OpcuaTwin:
    """An asyncua server for one machine; :meth:`stop` closes the port only."""

    def __init__(
        self, machine: Machine, bind: str, port: int, password: Callable[[], str | None]
    ) -> None:
        self.machine = machine
        self.bind = bind
        self.port = port
        self._password = password
        self._server: Server | None = None
        self._binary: BinaryServer | None = None
        self._nodes: dict[str, Any] = {}
        self._updater: asyncio.Task[None] | None = None

    @property
    def listening(self) -> bool:
        return self._binary is not None

    async def _build(self) -> Server:
        eq = self.machine.equipment
        server = Server(user_manager=_Users(self._password))  # type: ignore[arg-type]
        await server.init()
        server.set_endpoint(endpoint_url(self.bind, self.port))
        server.set_server_name(f"nodekit twin {eq.name}")
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        server.set_identity_tokens([ua.UserNameIdentityToken])  # anonymous off
        await server.set_application_uri(f"urn:nodekit:twin:{eq.name}")
        idx = await server.register_namespace(NAMESPACE)
        obj = await server.nodes.objects.add_object(idx, eq.name)
        status = asdict(self.machine.machine())
        for var in variables_for(eq.kind):
            value = status[var.metric]
            node = await obj.add_variable(idx, var.browse_name, ua.Variant(value, var.variant))
            self._nodes[var.metric] = (node, var.variant)
        await server.start()
        return server

    async def start(self) -> None:
        if self._server is None:
            self._server = await self._build()
            self._binary = self._server.bserver
        elif self._binary is None:  # back from offline: listen again, same address space
            binary = BinaryServer(self._server.iserver, self.bind, self.port, self._server.limits)
            binary.set_policies(self._server._policies)
            await binary.start()
            self._binary = self._server.bserver = binary
        if self._binary is not None:
            self.port = self._binary.port
        if self._updater is None:
            self._updater = asyncio.create_task(self._update_loop())

    async def stop(self) -> None:
        """Close the port and every connection (``offline``); values stay."""
        binary, self._binary = self._binary, None
        if binary is not None:
            await binary.stop()

    async def close(self) -> None:
        """Shut the whole server down."""
        if self._updater is not None:
            self._updater.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._updater
            self._updater = None
        server, self._server, self._binary = self._server, None, None
        if server is not None:
            await server.stop()  # stops the current binary server too, if still listening

    async def refresh(self) -> None:
        """Write the simulated values into the address space now."""
        status = asdict(self.machine.machine())
        for metric, (node, variant) in self._nodes.items():
            await node.write_value(ua.Variant(status[metric], variant))

    async def _update_loop(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception as exc:  # keep serving; the next second tries again
                log.warning("%s: cannot update values: %s", self.machine.equipment.name, exc)
            await asyncio.sleep(1.0)


class LoginRefused(Exception):
    """The server refused the session (user/password)."""


async def read_opcua(
    eq: Equipment, password: str | None, timeout: float
) -> tuple[str, dict[str, float], dict[str, str]]:
    """Browse Objects for the equipment object and read its variables.

    Returns (state, metrics, texts). Raises :class:`LoginRefused`,
    :class:`LookupError` (not in the address space), ``OSError`` or
    ``TimeoutError``.
    """
    assert eq.port is not None
    client = Client(endpoint_url(eq.address, eq.port), timeout=timeout)
    client.session_timeout = 30_000
    if password is not None:
        client.set_user(USER)
        client.set_password(password)
    try:
        await client.connect()
    except UaStatusCodeError as exc:
        name = type(exc).__name__
        if "Identity" in name or "UserAccess" in name or "Denied" in name:
            who = f"user {USER}" if password is not None else "anonymous access"
            raise LoginRefused(f"login refused for {who} ({name})") from exc
        raise
    try:
        ns = await client.get_namespace_index(NAMESPACE)
        objects = client.nodes.objects
        found = None
        for ref in await objects.get_children_descriptions():
            if ref.BrowseName.Name == eq.name and ref.BrowseName.NamespaceIndex == ns:
                found = client.get_node(ref.NodeId)
                break
        if found is None:
            raise LookupError(f"no object {eq.name!r} under Objects in namespace {NAMESPACE}")
        refs = await found.get_children_descriptions()
        nodes = [client.get_node(r.NodeId) for r in refs]
        values = await client.read_values(nodes) if nodes else []
    finally:
        with contextlib.suppress(Exception):
            await client.disconnect()
    state = "unknown"
    metrics: dict[str, float] = {}
    texts: dict[str, str] = {}
    for ref, value in zip(refs, values, strict=True):
        metric = METRIC_BY_BROWSE_NAME.get(ref.BrowseName.Name)
        if metric == "state":
            state = str(value)
        elif isinstance(value, bool):
            continue
        elif metric is not None and isinstance(value, int | float):
            metrics[metric] = float(value)
        elif isinstance(value, str):
            texts[ref.BrowseName.Name] = value
    return state, metrics, texts
