"""The typed model of a merged blueprint (`kind: Node`, format `nodekit/v1`).

Field docstrings become the JSON Schema descriptions editors show. Rules
that need more than one field (addresses inside zones, references,
cycles...) live in :mod:`nodekit.blueprint.rules`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from nodekit.blueprint.fields import (
    PUBLIC_KEY,
    PURDUE_LEVELS,
    Cidr,
    DnsName,
    IPv4,
    Name,
    Port,
    PortRange,
    TcpPort,
    Timezone,
    _purdue,
    _schema,
)
from nodekit.blueprint.packages import PACKAGES

API_VERSION = "nodekit/v1"


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class Metadata(Model):
    name: Name
    """The node's name: a DNS label, unique among the nodes nodekit manages."""
    labels: dict[str, str] = {}
    """Free string labels, used to select nodes (e.g. region, line)."""
    description: str | None = None


class Ssh(Model):
    """How nodekit reaches a host over SSH (target ssh): `site.ssh` gives the
    defaults, `compute[].ssh` overrides them per host, key by key."""

    user: str | None = Field(default=None, pattern=r"^[a-z_][a-z0-9_-]{0,31}$")
    """Login user, with passwordless sudo (default `nodekit`)."""
    port: TcpPort | None = None
    """sshd's port (default 22)."""
    host: str | None = None
    """Address or name to connect to, when not the host's `address`."""
    admin_keys: list[Annotated[str, Field(pattern=PUBLIC_KEY)]] | None = None
    """Public keys (`ssh-ed25519 AAAA... comment`) of the admin user; added to
    its authorized keys, and made its only keys once preflight has seen that
    they include the key the deploy logs in with."""
    jump: str | None = Field(
        default=None, pattern=r"^([a-z_][a-z0-9_-]*@)?[A-Za-z0-9.-]+(:[0-9]{1,5})?$"
    )
    """Bastion to connect through: `[user@]host[:port]` (OpenSSH ProxyJump)."""
    allow_from: list[str] | None = None
    """Management sources: zone names or CIDRs whose hosts may SSH in. The
    firewall always admits SSH from them (default: the host's own zones)."""


class Site(Model):
    region: Name
    """Region label, e.g. `eu-west`."""
    location: str | None = None
    """Free text, e.g. the plant and building."""
    timezone: Timezone
    """IANA time zone of the site, e.g. `Europe/Paris`."""
    target: Literal["local", "ssh"]
    """`local`: hosts simulated as containers on this machine; `ssh`: real machines."""
    ssh: Ssh | None = None
    """SSH defaults of every host (target ssh); `compute[].ssh` overrides them."""
    address_pool: Cidr | None = None
    """The region's address pool (set in a region overlay): `nodekit new site` allocates
    a new site's zones from it, free across the fleet."""


class Zone(Model):
    name: Name
    cidr: Cidr
    """IPv4 network of the zone; zones never overlap."""
    vlan: int | None = Field(default=None, ge=1, le=4094)
    """802.1Q VLAN id, unique (local: a label of the zone's network; ssh: preflight checks)."""
    purpose: Literal["ot", "it", "dmz", "mgmt"] | None = None
    security_level: Literal[1, 2, 3, 4] | None = None
    """IEC 62443-3-2 target security level of the zone (SL-T, 1..4); read by policy."""
    purdue_level: (
        Annotated[float, AfterValidator(_purdue), _schema(enum=list(PURDUE_LEVELS))] | None
    ) = None
    """Purdue model level of the zone: 0..5, 3.5 for a DMZ; read by policy and graph."""


class Flow(Model):
    from_: str = Field(alias="from")
    """Source zone, or `uplink` for traffic arriving through the uplink."""
    to: str
    """Destination zone, or `uplink` for traffic leaving through the uplink."""
    ports: list[PortRange] = Field(min_length=1)
    """Allowed `PORT/PROTO` or `LOW-HIGH/PROTO` (tcp or udp)."""
    purpose: str | None = Field(default=None, min_length=1)
    """Why the conduit exists (free text); policy requires one."""


class Uplink(Model):
    type: Literal["vpn", "direct", "none"]
    peer: str | None = None
    """Where the uplink leads: a hub node's name (`metadata.name` of a blueprint in the
    fleet), or a host name or address (target ssh); required for type vpn."""
    address: IPv4 | None = None
    """This node's own address on the WAN (a hub's is where its sites reach it; on the
    local target it lies in the local WAN, default allocated)."""

    @model_validator(mode="after")
    def _peer_for_vpn(self) -> Uplink:
        if self.type == "vpn" and not self.peer:
            raise ValueError("an uplink of type vpn needs a peer")
        return self


class Network(Model):
    domain: DnsName | None = None
    """DNS suffix: each host is `<host>.<domain>`, named in every host's /etc/hosts."""
    zones: list[Zone] = Field(min_length=1)
    flows: list[Flow] = []
    """Traffic allowed between zones; everything else between zones is denied."""
    uplink: Uplink | None = None
    """The site's link out (MQTT bridging and cloud links go through it)."""


class Resources(Model):
    cpus: int | None = Field(default=None, ge=1, le=1024)
    memory_mb: int | None = Field(default=None, ge=1, le=16_777_216)
    disk_gb: int | None = Field(default=None, ge=1, le=1_048_576)


class Interface(Model):
    zone: str
    """A zone other than the host's own `zone`."""
    address: IPv4


class Compute(Model):
    name: Name
    role: Literal["edge", "controller", "gateway"]
    zone: str
    """The host's primary zone."""
    address: IPv4
    """Address in `zone`."""
    os: str = Field(default="debian-12", pattern=r"^[a-z][a-z0-9.-]*$")
    resources: Resources | None = None
    interfaces: list[Interface] = []
    """Addresses in further zones (a gateway has one in each zone it routes)."""
    ssh: Ssh | None = None
    """Connection settings for target ssh."""


class Equipment(Model):
    name: Name
    kind: Literal["printer", "cnc", "plc", "sensor", "camera", "robot"]
    model: str | None = None
    host: str | None = None
    """The compute host that drives it (required for printer, cnc, camera)."""
    zone: str | None = None
    """Zone of the equipment's own address."""
    address: IPv4 | None = None
    port: TcpPort | None = None
    protocol: Literal["moonraker", "octoprint", "opcua", "modbus-tcp", "mqtt", "rtsp"] | None = None


class Software(Model):
    name: Name
    package: Annotated[str, _schema(enum=sorted(PACKAGES))]
    """A service type nodekit ships (`nodekit packages` lists them)."""
    host: str
    """The compute host it runs on."""
    version: str | None = None
    """Pins the software's main Debian package to this Debian version (`nodekit packages`
    names it): the site bundle carries it, apt installs it, verify checks it. Not for
    nodekit's own agents."""
    ports: list[Port] | None = None
    """Ports it listens on; when absent, the package's default ports."""
    settings: dict[str, Any] = {}
    """Package settings, checked by the package (`nodekit packages`)."""
    depends_on: list[str] = []
    """Software names that must be running first."""


class CloudArchive(Model):
    bucket_prefix: str = Field(default="nodekit-telemetry", pattern=r"^[a-z0-9][a-z0-9-]{2,40}$")
    """The telemetry bucket is named `<bucket_prefix>-<node name>`."""
    retention_days: int = Field(default=365, ge=1, le=36500)
    """Objects older than this are deleted."""


class CloudIot(Model):
    enabled: bool = True
    """Register each gateway host as an IoT thing."""


class CloudDns(Model):
    zone: DnsName | None = None
    """Private hosted zone for the hosts' records; defaults to `network.domain`."""
    vpc_id: str | None = Field(default=None, pattern=r"^vpc-[0-9a-f]{8,17}$")
    """The VPC the private zone is attached to (required: site addresses stay private)."""


class Cloud(Model):
    provider: Literal["aws"]
    region: str = Field(pattern=r"^[a-z]{2}(-[a-z]+)+-[0-9]$")
    """Cloud region, e.g. `eu-west-3`."""
    archive: CloudArchive = CloudArchive()
    iot: CloudIot = CloudIot()
    dns: CloudDns = CloudDns()


class Check(Model):
    name: Name
    host: str
    service: str | None = None
    """A systemd unit that must be running and enabled."""
    port: Port | None = None
    """`PORT/PROTO` that must be listening."""
    package: str | None = None
    """A Debian package that must be installed."""
    file: str | None = None
    """A path that must exist."""
    contains: str | None = None
    """Text the file must contain (with `file` only)."""
    command: str | None = None
    """A shell command that must exit 0."""

    @model_validator(mode="after")
    def _one_kind(self) -> Check:
        kinds = [k for k in CHECK_KINDS if getattr(self, k) is not None]
        if len(kinds) != 1:
            got = ", ".join(kinds) if kinds else "none"
            raise ValueError(f"a check needs exactly one of {', '.join(CHECK_KINDS)} (got: {got})")
        if self.contains is not None and self.file is None:
            raise ValueError("contains goes with file")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in CHECK_KINDS if getattr(self, k) is not None)


CHECK_KINDS = ("service", "port", "package", "file", "command")


class Node(Model):
    """A production node: site, network, hosts, equipment, software, cloud and checks."""

    api_version: Literal["nodekit/v1"] = Field(alias="apiVersion")
    kind: Literal["Node"]
    metadata: Metadata
    site: Site
    network: Network
    compute: list[Compute] = Field(min_length=1)
    equipment: list[Equipment] = []
    software: list[Software] = []
    cloud: Cloud | None = None
    checks: list[Check] = []

    @property
    def name(self) -> str:
        return self.metadata.name

    def host(self, name: str) -> Compute:
        """The compute host called `name` (KeyError if none)."""
        for host in self.compute:
            if host.name == name:
                return host
        raise KeyError(name)

    def zone(self, name: str) -> Zone:
        """The zone called `name` (KeyError if none)."""
        for zone in self.network.zones:
            if zone.name == name:
                return zone
        raise KeyError(name)

    def gateways(self) -> list[Compute]:
        return [host for host in self.compute if host.role == "gateway"]

    def addresses_of(self, host: str | Compute) -> dict[str, str]:
        """Zone name -> address of a host: its own zone first, then its interfaces."""
        compute = self.host(host) if isinstance(host, str) else host
        addresses = {compute.zone: compute.address}
        for interface in compute.interfaces:
            addresses.setdefault(interface.zone, interface.address)
        return addresses

    def software_on(self, host: str) -> list[Software]:
        return [item for item in self.software if item.host == host]
