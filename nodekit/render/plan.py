"""From a merged blueprint to a node plan: everything the renderers need, derived once.

The plan is plain data in dataclasses: names of networks and containers,
each host's addresses, routes through the gateway, Ansible groups and role
variables. Templates only print it; all decisions are made here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nodekit.blueprint.equipment import (
    Duty,
    broker_of,
    broker_port,
    broker_users,
    device_broker,
    duties,
    equipment_secrets,
)
from nodekit.blueprint.packages import PACKAGES
from nodekit.blueprint.rules import highest_free_address
from nodekit.blueprint.ssh_rules import DEFAULT_USER, effective_ssh

ROLE_ORDER = ("base", "firewall")  # every host; then one role per package
EQUIPMENT_ROLE = "equipment"  # hosts that check or poll machines: the agents' venv
BUNDLE_MOUNT = "/srv/nodekit/bundle"


def port_number(spec: str) -> int:
    """``"1883/tcp"`` -> 1883 (the low end of a range)."""
    return int(spec.split("/", 1)[0].split("-", 1)[0])


def port_proto(spec: str) -> str:
    return spec.split("/", 1)[1] if "/" in spec else "tcp"


def secret_ref(name: str) -> str:
    """The Jinja reference a rendered file holds in place of a secret's value."""
    return '{{ nodekit_secrets["' + name + '"] }}'


@dataclass(frozen=True)
class ZonePlan:
    name: str
    cidr: str
    network: str  # the Docker network of this zone (local target)
    bridge: str  # this machine's address on that network: never a host's (local target)
    vlan: int = 0  # 802.1Q VLAN id (0: none given)


@dataclass(frozen=True)
class ServicePlan:
    name: str
    package: str
    role: str
    unit: str
    host: str
    ports: tuple[str, ...]
    settings: dict[str, Any]
    extra_users: tuple[tuple[str, str], ...] = ()  # broker: nodekit's own (user, secret name)
    broker: str | None = None  # collector, ingest: the mosquitto software it talks to
    store: str | None = None  # ingest: the postgresql software on its host
    depends_on: tuple[
        str, ...
    ] = ()  # software names (configured first; on one host, started first)
    pin: tuple[str, str] | None = None  # software[].version: (main Debian package, version)


@dataclass(frozen=True)
class HostPlan:
    name: str
    role: str
    zone: str
    address: str
    addresses: dict[str, str]  # zone -> address, primary zone first
    container: str
    routes: tuple[tuple[str, str], ...]  # (cidr, via)
    services: tuple[ServicePlan, ...]
    memory_mb: int
    cpus: int
    ssh: dict[str, Any]  # the site's defaults merged with the host's own
    os: str = "debian-12"
    disk_gb: int = 0  # ssh target: preflight checks the host has it
    ssh_allow_from: tuple[str, ...] = ()  # management sources as CIDRs
    equipment_agent: bool = False  # checks or polls machines (role equipment)

    @property
    def login_user(self) -> str:
        return str(self.ssh.get("user") or DEFAULT_USER)

    @property
    def ssh_port(self) -> int:
        return int(self.ssh.get("port") or 22)

    @property
    def connect_address(self) -> str:
        """Where nodekit connects to reach the host (ssh.host, else its address)."""
        return str(self.ssh.get("host") or self.address)

    @property
    def is_gateway(self) -> bool:
        return self.role == "gateway"

    @property
    def roles(self) -> tuple[str, ...]:
        own = sorted({s.role for s in self.services})
        agent = (EQUIPMENT_ROLE,) if self.equipment_agent else ()
        return ROLE_ORDER + agent + tuple(own)


@dataclass(frozen=True)
class EquipmentPlan:
    """A machine: what verify checks, who polls it; on the local target, its twin."""

    duty: Duty
    model: str
    container: str  # the twin's container (local target)
    network: str  # the twin's zone network (local target)
    routes: tuple[tuple[str, str], ...]  # the twin's routes to other zones (cidr, via)
    broker: tuple[str, int] | None = None  # where an MQTT device publishes (address, port)

    @property
    def name(self) -> str:
        return self.duty.name

    @property
    def twin(self) -> bool:
        """Whether the local target stands in a twin for it (an address and a protocol)."""
        return bool(self.duty.address and self.duty.zone and self.duty.protocol)

    def describe(self) -> dict[str, Any]:
        """The equipment as the agents read it (no secrets)."""
        d = self.duty
        return {"name": d.name, "kind": d.kind, "protocol": d.protocol, "address": d.address,
                "port": d.port, "model": self.model}  # fmt: skip


@dataclass(frozen=True)
class NodePlan:
    name: str
    target: str
    timezone: str
    region: str
    labels: dict[str, str]
    zones: tuple[ZonePlan, ...]
    hosts: tuple[HostPlan, ...]
    flows: tuple[dict[str, Any], ...]
    uplink: dict[str, Any]
    checks: tuple[dict[str, Any], ...]
    cloud: dict[str, Any] | None
    domain: str
    secrets: tuple[str, ...] = field(default=())
    equipment: tuple[EquipmentPlan, ...] = field(default=())

    def host(self, name: str) -> HostPlan:
        return next(h for h in self.hosts if h.name == name)

    def zone(self, name: str) -> ZonePlan:
        return next(z for z in self.zones if z.name == name)

    def fqdn(self, host: str) -> str:
        """``<host>.<domain>`` (network.domain); the bare name without a domain."""
        return f"{host}.{self.domain}" if self.domain else host

    @property
    def services(self) -> tuple[ServicePlan, ...]:
        return tuple(s for h in self.hosts for s in h.services)

    @property
    def pins(self) -> dict[str, str]:
        """Debian package -> version: the node's software[].version (one per package)."""
        return dict(s.pin for s in self.services if s.pin)

    @property
    def stack(self) -> str:
        return self.name


def address_seen_from(viewer: HostPlan, other: HostPlan) -> str:
    """Where ``viewer`` reaches ``other``: its address in a zone both have (the
    viewer's primary zone first), else its primary address (through a gateway)."""
    shared = [zone for zone in viewer.addresses if zone in other.addresses]
    return other.addresses[shared[0]] if shared else other.address


def twin_container_name(node: str, equipment: str) -> str:
    return f"nk-{node}-twin-{equipment}"


def container_name(node: str, host: str) -> str:
    return f"nk-{node}-{host}"


def network_name(node: str, zone: str) -> str:
    return f"nk-{node}-{zone}"


def _host_addresses(item: dict[str, Any]) -> dict[str, str]:
    addresses = {item["zone"]: item["address"]}
    for iface in item.get("interfaces") or []:
        addresses.setdefault(iface["zone"], iface["address"])
    return addresses


def plan(data: dict[str, Any]) -> NodePlan:
    """Derive the node plan from a merged, validated blueprint's data."""
    from nodekit.render.uplink import broker_ports, tls_secrets

    node = data["metadata"]["name"]
    network = data["network"]
    compute = data.get("compute") or []
    used = {c["address"] for c in compute}
    used |= {i["address"] for c in compute for i in c.get("interfaces") or []}
    used |= {e["address"] for e in data.get("equipment") or [] if e.get("address")}
    zones = tuple(
        ZonePlan(
            z["name"],
            z["cidr"],
            network_name(node, z["name"]),
            highest_free_address(z["cidr"], used) or "",  # validated for the local target
            int(z.get("vlan") or 0),
        )
        for z in network["zones"]
    )
    cidr_of = {z.name: z.cidr for z in zones}
    addresses = {c["name"]: _host_addresses(c) for c in compute}
    gateways = [c["name"] for c in compute if c["role"] == "gateway"]

    services: dict[str, list[ServicePlan]] = {c["name"]: [] for c in compute}
    secrets: list[str] = equipment_secrets(data)
    extra_users = broker_users(data)
    uplink = dict(network.get("uplink") or {})
    for item in data.get("software") or []:
        spec = PACKAGES[item["package"]]
        settings = dict(item.get("settings") or {})
        ports = tuple(item.get("ports") or spec.default_ports)
        if item["package"] == "mosquitto":  # a hub's broker, a bridging site's
            ports = broker_ports(ports, settings)
            secrets += tls_secrets(item["name"], uplink, settings)
        own_users = tuple(extra_users.get(item["name"], ()))
        secrets += [secret for _, secret in own_users]
        agent = item["package"] in ("edge-collector", "telemetry-ingest")
        broker = broker_of(data, item) if agent else None
        store = next(
            (s["name"] for s in data.get("software") or []
             if s["package"] == "postgresql" and s["host"] == item["host"]),
            None,
        ) if item["package"] == "telemetry-ingest" else None  # fmt: skip
        services[item["host"]].append(
            ServicePlan(
                item["name"],
                item["package"],
                spec.role,
                spec.service,
                item["host"],
                ports,
                settings,
                extra_users=own_users,
                broker=broker["name"] if broker else None,
                store=store,
                depends_on=tuple(item.get("depends_on") or ()),
                pin=(spec.main_package, item["version"])
                if item.get("version") and spec.main_package
                else None,
            )
        )
        for user in (item.get("settings") or {}).get("users") or []:
            secrets.append(f"{item['name']}/{user}")

    machines = duties(data)
    agents = {d.probe_host for d in machines if d.checked} | {
        s["host"] for s in data.get("software") or []
        if s["package"] in ("edge-collector", "telemetry-ingest")
    }  # fmt: skip
    hosts = []
    for c in compute:
        own = addresses[c["name"]]
        routes: list[tuple[str, str]] = []
        if c["role"] != "gateway":
            for zone in zones:
                if zone.name in own:
                    continue
                via = next(
                    (
                        addresses[g][c["zone"]]
                        for g in gateways
                        if c["zone"] in addresses[g] and zone.name in addresses[g]
                    ),
                    None,
                )
                if via:
                    routes.append((cidr_of[zone.name], via))
        resources = c.get("resources") or {}
        ssh = effective_ssh(data["site"].get("ssh"), c.get("ssh"))
        allow_from = tuple(
            cidr_of.get(str(source), str(source)) for source in ssh.get("allow_from") or []
        )
        hosts.append(
            HostPlan(
                name=c["name"],
                role=c["role"],
                zone=c["zone"],
                address=c["address"],
                addresses=own,
                container=container_name(node, c["name"]),
                routes=tuple(routes),
                services=tuple(sorted(services[c["name"]], key=lambda s: s.name)),
                memory_mb=int(resources.get("memory_mb") or 0),
                cpus=int(resources.get("cpus") or 0),
                disk_gb=int(resources.get("disk_gb") or 0),
                ssh=ssh,
                os=str(c.get("os") or "debian-12"),
                ssh_allow_from=allow_from,
                equipment_agent=c["name"] in agents,
            )
        )
    equipment = tuple(
        EquipmentPlan(
            duty,
            str(item.get("model") or ""),
            twin_container_name(node, duty.name),
            network_name(node, duty.zone or ""),
            _twin_routes(duty.zone, zones, addresses, gateways),
            _device_broker(data, duty, addresses),
        )
        for duty, item in zip(machines, data.get("equipment") or [], strict=True)
    )

    site = data["site"]
    return NodePlan(
        name=node,
        target=site["target"],
        timezone=site["timezone"],
        region=site["region"],
        labels=dict(data["metadata"].get("labels") or {}),
        zones=zones,
        hosts=tuple(hosts),
        flows=tuple(network.get("flows") or []),
        uplink=uplink,
        checks=tuple(data.get("checks") or []),
        cloud=data.get("cloud"),
        domain=network.get("domain") or "",
        secrets=tuple(sorted(set(secrets))),
        equipment=equipment,
    )


def _device_broker(
    data: dict[str, Any], duty: Duty, addresses: dict[str, dict[str, str]]
) -> tuple[str, int] | None:
    broker = device_broker(data) if duty.protocol == "mqtt" else None
    if broker is None or broker["host"] not in addresses:
        return None
    own = addresses[broker["host"]]
    return own.get(duty.zone or "", next(iter(own.values()))), broker_port(broker)


def _twin_routes(
    zone: str | None,
    zones: tuple[ZonePlan, ...],
    addresses: dict[str, dict[str, str]],
    gateways: list[str],
) -> tuple[tuple[str, str], ...]:
    """A machine in ``zone`` reaches (and answers) other zones through a gateway."""
    routes = []
    for other in zones:
        if zone is None or other.name == zone:
            continue
        via = next(
            (addresses[g][zone] for g in gateways
             if zone in addresses[g] and other.name in addresses[g]),
            None,
        )  # fmt: skip
        if via:
            routes.append((other.cidr, via))
    return tuple(routes)
