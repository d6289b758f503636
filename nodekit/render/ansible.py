"""Ansible side of rendering: inventory, group and host variables, site.yml, ansible.cfg.

Variables follow the roles' argument specs (playbooks/roles/*/meta/
argument_specs.yml). Secrets are never rendered: a host variable holds a
reference such as ``{{ nodekit_secrets['mqtt/edge'] }}`` and the value comes
from the node's secrets file at deploy time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nodekit.blueprint.packages import with_pins
from nodekit.render.plan import (
    BUNDLE_MOUNT,
    HostPlan,
    NodePlan,
    ServicePlan,
    address_seen_from,
    port_number,
    secret_ref,
)
from nodekit.render.uplink import (
    BRIDGE_PORT_SPEC,
    accepts,
    forwards,
    mosquitto_tls,
    wan_routes,
)

APT_SOURCE = f"deb [trusted=yes] file:{BUNDLE_MOUNT} ./"


def group_name(kind: str, value: str) -> str:
    """Ansible group names allow only letters, digits and underscores."""
    return f"{kind}_{value.replace('-', '_').replace('.', '_')}"


def inventory(node: NodePlan) -> dict[str, Any]:
    groups: dict[str, list[str]] = {}
    for host in node.hosts:
        names = [group_name("role", host.role)]
        names += [group_name("zone", zone) for zone in host.addresses]
        names += [group_name("pkg", s.package) for s in host.services]
        names += ["equipment_agents"] if host.equipment_agent else []
        for name in names:
            groups.setdefault(name, []).append(host.name)
    return {
        "all": {
            "hosts": {host.name: None for host in node.hosts},
            "children": {
                name: {"hosts": dict.fromkeys(sorted(members))}
                for name, members in sorted(groups.items())
            },
        }
    }


def group_vars(node: NodePlan) -> dict[str, Any]:
    from nodekit.targets import target_for

    return {
        "nodekit_node": node.name,
        "nodekit_target": node.target,
        "nodekit_region": node.region,
        "nodekit_timezone": node.timezone,
        "nodekit_apt_source": APT_SOURCE,
        "nodekit_zones": [{"name": z.name, "cidr": z.cidr} for z in node.zones],
        "nodekit_flows": [
            {"from": f["from"], "to": f["to"], "ports": list(f["ports"])} for f in node.flows
        ],
        **target_for(node).role_vars(),
        "ansible_python_interpreter": "/usr/bin/python3",
    }


def connection_vars(node: NodePlan, host: HostPlan) -> dict[str, Any]:
    from nodekit.targets import target_for

    return target_for(node).connection_vars(host)


def _mosquitto(node: NodePlan, host: HostPlan, service: ServicePlan) -> dict[str, Any]:
    settings = service.settings
    result: dict[str, Any] = {
        "mosquitto_allow_anonymous": bool(settings.get("allow_anonymous", False)),
        "mosquitto_users": [
            {"name": user, "password": secret_ref(f"{service.name}/{user}")}
            for user in settings.get("users") or []
        ]
        + [  # nodekit's own parts: collectors, ingests, MQTT devices
            {"name": user, "password": secret_ref(secret)} for user, secret in service.extra_users
        ],
    }
    result["mosquitto_listeners"] = [
        {"port": port_number(p)} for p in service.ports if p != BRIDGE_PORT_SPEC
    ]
    result.update(mosquitto_tls(node, service))
    if accepts(settings):  # a hub: sites publish only under their own node
        result["mosquitto_acl"] = {
            "users": sorted(u["name"] for u in result["mosquitto_users"]),
            "anonymous": result["mosquitto_allow_anonymous"],
        }
    return result


def _postgresql(node: NodePlan, host: HostPlan, service: ServicePlan) -> dict[str, Any]:
    settings = service.settings
    zones = list(settings.get("allowed_zones") or []) or [host.zone]  # exactly those zones
    databases = list(settings.get("databases") or [])
    return {
        "postgresql_port": port_number(service.ports[0]),
        "postgresql_databases": databases,
        "postgresql_allowed_cidrs": sorted({node.zone(z).cidr for z in zones}),
        "postgresql_users": [
            {
                "name": user,
                "password": secret_ref(f"{service.name}/{user}"),
            }
            for user in settings.get("users") or []
        ],
    }


def _node_exporter(node: NodePlan, host: HostPlan, service: ServicePlan) -> dict[str, Any]:
    return {"node_exporter_port": port_number(service.ports[0])}


def _prometheus(node: NodePlan, host: HostPlan, service: ServicePlan) -> dict[str, Any]:
    targets = [
        f"{s_host.address}:{port_number(s.ports[0])}"
        for s_host in node.hosts
        for s in s_host.services
        if s.package == "node-exporter"
    ]
    settings = service.settings
    return {
        "prometheus_port": port_number(service.ports[0]),
        "prometheus_targets": targets,
        "prometheus_retention_days": int(settings.get("retention_days") or 15),
        "prometheus_scrape_interval_s": int(settings.get("scrape_interval_s") or 15),
    }


def _broker(node: NodePlan, host: HostPlan, service: ServicePlan) -> dict[str, Any]:
    """Where a collector or ingest on ``host`` reaches its broker (validated to exist)."""
    mqtt = next(s for s in node.services if s.name == service.broker)
    broker = node.host(mqtt.host)
    address = "127.0.0.1" if broker.name == host.name else broker.address
    for zone, own in broker.addresses.items():
        if zone in host.addresses and broker.name != host.name:
            address = own  # the broker's address in a zone both share
    return {"host": address, "port": port_number(mqtt.ports[0]), "user": service.name}


def _broker_password(service: ServicePlan) -> dict[str, str]:
    return {"password": secret_ref(f"{service.broker}/{service.name}")}


def _equipment_secrets(node: NodePlan, names: set[str]) -> dict[str, dict[str, str]]:
    result: dict[str, dict[str, str]] = {}
    for machine in node.equipment:
        if machine.name not in names:
            continue
        protocol = machine.duty.protocol
        key = "api_key" if protocol == "octoprint" else "password"
        if protocol in ("octoprint", "opcua"):
            result[machine.name] = {key: secret_ref(f"equipment/{machine.name}/{key}")}
    return result


def _edge_collector(node: NodePlan, host: HostPlan, service: ServicePlan) -> dict[str, Any]:
    settings = service.settings
    polled = [m for m in node.equipment if m.duty.collector == service.name]
    broker = _broker(node, host, service)
    return {
        "edge_collector_config": {
            "node": node.name,
            "interval_s": int(settings.get("interval_s") or 5),
            "broker": broker,
            "equipment": [m.describe() for m in polled],
            "rules": {
                "max": dict(settings.get("max") or {}),
                "min": dict(settings.get("min") or {}),
            },
        },
        "edge_collector_secrets": {
            "broker": _broker_password(service),
            **_equipment_secrets(node, {m.name for m in polled}),
        },
    }


def _hub(node: NodePlan) -> bool:
    return any(s.package == "mosquitto" and accepts(s.settings) for s in node.services)


def _telemetry_ingest(node: NodePlan, host: HostPlan, service: ServicePlan) -> dict[str, Any]:
    settings = service.settings
    database = str(settings.get("database") or "historian")
    postgres = next(s for s in host.services if s.name == service.store)
    broker = _broker(node, host, service)
    return {
        "telemetry_ingest_database": database,
        "telemetry_ingest_db_port": port_number(postgres.ports[0]),
        "telemetry_ingest_config": {
            "node": node.name,
            "broker": broker,
            # a hub's ingest stores what every site bridges to it
            "topics": ["nodekit/#" if _hub(node) else f"nodekit/{node.name}/#"],
            "database": {
                "conninfo": f"dbname={database} user=nodekit_ingest host=/var/run/postgresql "
                f"port={port_number(postgres.ports[0])}"
            },
        },
        "telemetry_ingest_secrets": {"broker": _broker_password(service)},
    }


def equipment_vars(node: NodePlan, host: HostPlan) -> dict[str, Any]:
    """The agents' venv and the protocol checks this host runs in verify."""
    from nodekit.agents import agent_version

    probed = [m for m in node.equipment if m.duty.probe_host == host.name and m.duty.checked]
    return {
        "equipment_agent_version": agent_version(),
        "equipment_probe": {"equipment": [m.describe() for m in probed]},
        "equipment_secrets": _equipment_secrets(node, {m.name for m in probed}),
    }


ROLE_VARS: dict[str, Callable[[NodePlan, HostPlan, ServicePlan], dict[str, Any]]] = {
    "mosquitto": _mosquitto,
    "postgresql": _postgresql,
    "node_exporter": _node_exporter,
    "prometheus": _prometheus,
    "edge_collector": _edge_collector,
    "telemetry_ingest": _telemetry_ingest,
}


def unit_order(host: HostPlan) -> list[dict[str, Any]]:
    """depends_on on one host: each service's unit starts after the units it waits for."""
    units = {s.name: s.unit for s in host.services}
    return [
        {"unit": s.unit, "after": sorted({units[d] for d in s.depends_on if d in units})}
        for s in sorted(host.services, key=lambda s: s.unit)
        if any(d in units for d in s.depends_on)
    ]


def etc_hosts(node: NodePlan, host: HostPlan) -> dict[str, Any]:
    """network.domain: the host's FQDN, and every host of the node as /etc/hosts
    lines (address as this host reaches it, FQDN, short name). None without a domain."""
    if not node.domain:
        return {}
    return {
        "nodekit_fqdn": node.fqdn(host.name),
        "nodekit_hosts": [
            f"{address_seen_from(host, other)} {node.fqdn(other.name)} {other.name}"
            for other in node.hosts
        ],
    }


def host_vars(node: NodePlan, host: HostPlan) -> dict[str, Any]:
    result: dict[str, Any] = {
        **connection_vars(node, host),
        "nodekit_admin_keys": list(host.ssh.get("admin_keys") or []),
        "nodekit_ssh_port": host.ssh_port,
        "nodekit_ssh_allow_from": list(host.ssh_allow_from),
        "nodekit_host_addresses": dict(host.addresses),
        "nodekit_is_gateway": host.is_gateway,
        "nodekit_routes": [{"cidr": cidr, "via": via} for cidr, via in host.routes]
        + wan_routes(node, host),
        "nodekit_uplink_forwards": forwards(node, host),
        "nodekit_unit_order": unit_order(host),
        **etc_hosts(node, host),
    }
    if host.equipment_agent:
        result.update(equipment_vars(node, host))
    for service in host.services:
        result.update(ROLE_VARS[service.role](node, host, service))
    result.update(pin_vars(host))
    return result


def pin_vars(host: HostPlan) -> dict[str, Any]:
    """software[].version: the role installs ``name=version`` and the base role holds
    the package (with its source's packages) at it. Nothing for a host without pins."""
    from nodekit.run.bundle import role_apt_packages

    pins = sorted((s.pin, s.role) for s in host.services if s.pin is not None)
    if not pins:
        return {}
    result: dict[str, Any] = {
        "nodekit_apt_pins": [{"package": p, "version": v} for (p, v), _ in pins]
    }
    for (package, version), role in pins:
        result[f"{role}_apt_packages"] = with_pins(role_apt_packages([role]), {package: version})
    return result
