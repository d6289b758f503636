"""Ansible side of rendering: inventory, group and host variables, site.yml, ansible.cfg.

Variables follow the roles' argument specs (playbooks/roles/*/meta/
argument_specs.yml). Secrets are never rendered: a host variable holds a
reference such as ``{{ nodekit_secrets['mqtt/edge'] }}`` and the value comes
from the node's secrets file at deploy time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nodekit.render.plan import (
    BUNDLE_MOUNT,
    HostPlan,
    NodePlan,
    ServicePlan,
    port_number,
    secret_ref,
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
        "mosquitto_listeners": [{"port": port_number(p)} for p in service.ports],
        "mosquitto_allow_anonymous": bool(settings.get("allow_anonymous", False)),
        "mosquitto_users": [
            {"name": user, "password": secret_ref(f"{service.name}/{user}")}
            for user in settings.get("users") or []
        ],
    }
    peer = node.uplink.get("peer")
    topics = settings.get("bridge_topics") or []
    if node.uplink.get("type") in ("vpn", "direct") and peer and topics:
        result["mosquitto_bridge"] = {"address": peer, "port": 1883, "topics": list(topics)}
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


ROLE_VARS: dict[str, Callable[[NodePlan, HostPlan, ServicePlan], dict[str, Any]]] = {
    "mosquitto": _mosquitto,
    "postgresql": _postgresql,
    "node_exporter": _node_exporter,
    "prometheus": _prometheus,
}


def host_vars(node: NodePlan, host: HostPlan) -> dict[str, Any]:
    result: dict[str, Any] = {
        **connection_vars(node, host),
        "nodekit_admin_keys": list(host.ssh.get("admin_keys") or []),
        "nodekit_ssh_port": host.ssh_port,
        "nodekit_ssh_allow_from": list(host.ssh_allow_from),
        "nodekit_host_addresses": dict(host.addresses),
        "nodekit_is_gateway": host.is_gateway,
        "nodekit_routes": [{"cidr": cidr, "via": via} for cidr, via in host.routes],
    }
    for service in host.services:
        result.update(ROLE_VARS[service.role](node, host, service))
    return result
