"""The service types nodekit ships: what `software[].package` may name.

Each package is one Ansible role and one verification. Its settings model
checks `software[].settings` (unknown keys are refused, defaults filled in).
Settings never hold secrets: user *names* only; passwords come from the
secrets store at deploy time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class ZoneRef:
    """Marks a settings field whose strings name zones of the blueprint (checked)."""


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


Ident = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]{0,62}$")]


class MosquittoSettings(Settings):
    allow_anonymous: bool = False
    """Let clients connect without a user name."""
    users: list[Ident] = []
    """MQTT user names; each password comes from the secret `<software name>/<user>`."""
    bridge_topics: list[str] = []
    """Topics bridged to the uplink's peer (a hub) over TLS on 8883 with the fleet's
    certificates (e.g. `nodekit/#`: the node's telemetry, topics unchanged)."""
    bridge_queue: int = Field(default=10000, ge=1, le=10_000_000)
    """Messages kept for the hub while it is unreachable; once full, newer ones are dropped."""
    accept_bridges: bool = False
    """A hub's broker: accept the fleet's site bridges over TLS on 8883 (a certificate of
    the fleet CA required; a site may publish only under `nodekit/<its node>/`)."""


class PostgresqlSettings(Settings):
    databases: list[Ident] = []
    """Databases to create."""
    users: list[Ident] = []
    """Database roles; each password comes from the secret `<software name>/<user>`."""
    allowed_zones: Annotated[list[str], ZoneRef()] = []
    """Exactly the zones whose hosts may connect over the network (pg_hba), besides
    loopback; empty: the host's own zone only."""


class NodeExporterSettings(Settings):
    pass


class PrometheusSettings(Settings):
    retention_days: int = Field(default=15, ge=1, le=3650)
    """How long samples are kept."""
    scrape_interval_s: int = Field(default=15, ge=1, le=3600)
    """Seconds between scrapes of every node-exporter of the node."""


Metric = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]


class EdgeCollectorSettings(Settings):
    interval_s: int = Field(default=5, ge=1, le=3600)
    """Seconds between two polls of each machine."""
    broker: str | None = None
    """The software name of the broker it publishes to; default: the node's only mosquitto."""
    max: dict[Metric, float] = {}
    """QC upper bounds per metric (e.g. `extruder_temp: 260`): above it, an alarm."""
    min: dict[Metric, float] = {}
    """QC lower bounds per metric (e.g. `bed_temp: 40`): below it, an alarm."""


class TelemetryIngestSettings(Settings):
    database: Ident = "historian"
    """The PostgreSQL database (on the same host) the rows go to; created if missing."""
    broker: str | None = None
    """The software name of the broker it subscribes to; default: the node's only mosquitto."""


@dataclass(frozen=True)
class PackageSpec:
    """One service type: its Ansible role, Debian packages, systemd unit and ports."""

    name: str
    role: str
    apt_packages: tuple[str, ...]
    service: str
    default_ports: tuple[str, ...]
    settings: type[BaseModel]
    description: str
    one_port: bool = True  # the service listens on one TCP port (else: one or more)
    # (a package with no default port listens on none: `ports` is refused)
    purge: tuple[str, ...] = ()  # Debian packages purged when the software is removed
    owned_paths: tuple[str, ...] = ()  # files nodekit writes that no package owns
    # The Debian package `software[].version` pins (the software itself); None for
    # nodekit's own agents, whose version is nodekit's.
    main_package: str | None = None

    @property
    def settings_keys(self) -> tuple[str, ...]:
        return tuple(self.settings.model_fields)


PACKAGES: dict[str, PackageSpec] = {
    spec.name: spec
    for spec in (
        PackageSpec(
            name="mosquitto",
            role="mosquitto",
            apt_packages=("mosquitto",),
            service="mosquitto",
            default_ports=("1883/tcp",),
            main_package="mosquitto",
            settings=MosquittoSettings,
            description="MQTT broker for machine telemetry",
            one_port=False,  # one listener per port
            purge=("mosquitto", "mosquitto-clients"),
            owned_paths=(
                "/etc/mosquitto/conf.d/nodekit.conf",
                "/etc/mosquitto/nodekit.passwd",
                "/etc/mosquitto/nodekit.users.sha256",
            ),
        ),
        PackageSpec(
            name="node-exporter",
            role="node_exporter",
            apt_packages=("prometheus-node-exporter",),
            service="prometheus-node-exporter",
            default_ports=("9100/tcp",),
            main_package="prometheus-node-exporter",
            settings=NodeExporterSettings,
            description="host metrics for Prometheus",
            purge=("prometheus-node-exporter",),
        ),
        PackageSpec(
            name="postgresql",
            role="postgresql",
            apt_packages=("postgresql",),
            service="postgresql",
            default_ports=("5432/tcp",),
            main_package="postgresql-15",  # the server (the metapackage's 15+248 says little)
            settings=PostgresqlSettings,
            description="PostgreSQL database (historian, MES data)",
            purge=("postgresql", "postgresql-15"),  # its data goes with it
        ),
        PackageSpec(
            name="edge-collector",
            role="edge_collector",
            apt_packages=("python3-venv",),
            service="nodekit-edge-collector",
            default_ports=(),
            settings=EdgeCollectorSettings,
            description="polls the node's machines by protocol, publishes telemetry and QC alarms",
            owned_paths=(
                "/etc/systemd/system/nodekit-edge-collector.service",
                "/etc/nodekit/edge-collector",
            ),
        ),
        PackageSpec(
            name="telemetry-ingest",
            role="telemetry_ingest",
            apt_packages=("python3-venv",),
            service="nodekit-telemetry-ingest",
            default_ports=(),
            settings=TelemetryIngestSettings,
            description="writes the node's MQTT telemetry into the historian database",
            owned_paths=(
                "/etc/systemd/system/nodekit-telemetry-ingest.service",
                "/etc/nodekit/telemetry-ingest",
            ),
        ),
        PackageSpec(
            name="prometheus",
            role="prometheus",
            apt_packages=("prometheus",),
            service="prometheus",
            default_ports=("9090/tcp",),
            main_package="prometheus",
            settings=PrometheusSettings,
            description="metrics server scraping the node's exporters",
            purge=("prometheus",),
        ),
    )
}


def with_pins(names: Iterable[str], pins: Mapping[str, str]) -> list[str]:
    """apt requests: ``names``, each pinned package as ``name=version`` (appended when
    not among them, as postgresql-15 beside the ``postgresql`` metapackage)."""
    names = list(names)
    pinned = [f"{name}={version}" for name, version in sorted(pins.items()) if name not in names]
    return [f"{name}={pins[name]}" if name in pins else name for name in names] + pinned
