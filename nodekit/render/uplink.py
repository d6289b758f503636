"""The uplink: how a node meets the rest of the fleet.

A site's broker bridges its telemetry to a hub over TLS (:data:`BRIDGE_PORT`,
fleet certificates); a hub's broker accepts those bridges. Through the node's
gateway, ``to: uplink`` flows let traffic out and ``from: uplink`` flows let
it in: what arrives for the gateway itself on a port a host in the flow's
zone serves is passed on to that host.

On the local target the gateways of all nodes meet on one WAN network that
nodekit creates (:data:`WAN_NETWORK`, :data:`LOCAL_WAN`): a node's hosts
route it through their gateway, which masquerades what leaves.
"""

from __future__ import annotations

from typing import Any

from nodekit.blueprint.fleet import LOCAL_WAN  # the local target's WAN
from nodekit.render.plan import HostPlan, NodePlan, ServicePlan, port_number, port_proto

BRIDGE_PORT = 8883
BRIDGE_PORT_SPEC = f"{BRIDGE_PORT}/tcp"

WAN_NETWORK = "nodekit-wan"
WAN_STACK = "wan"
CA_CERT_SECRET = "tls/fleet-ca"


def active(uplink: dict[str, Any]) -> bool:
    """Whether the node has a way out (an uplink of type vpn or direct)."""
    return uplink.get("type") in ("vpn", "direct")


def bridges(uplink: dict[str, Any], settings: dict[str, Any]) -> bool:
    """Whether a broker with these settings bridges to the uplink's peer."""
    return active(uplink) and bool(uplink.get("peer")) and bool(settings.get("bridge_topics"))


def accepts(settings: dict[str, Any]) -> bool:
    """Whether a broker accepts the fleet's bridges (a hub's)."""
    return bool(settings.get("accept_bridges"))


def tls_secrets(name: str, uplink: dict[str, Any], settings: dict[str, Any]) -> list[str]:
    """The secrets a broker's TLS needs: the fleet CA's certificate and its own."""
    if bridges(uplink, settings) or accepts(settings):
        return [CA_CERT_SECRET, f"tls/{name}"]
    return []


def broker_ports(ports: tuple[str, ...], settings: dict[str, Any]) -> tuple[str, ...]:
    """A hub's broker also listens on the TLS bridge port."""
    if accepts(settings) and BRIDGE_PORT_SPEC not in ports:
        return (*ports, BRIDGE_PORT_SPEC)
    return ports


def uplink_gateway(node: NodePlan) -> HostPlan | None:
    """The gateway that carries the uplink (the first), when the node has one."""
    if not active(node.uplink):
        return None
    return next((h for h in node.hosts if h.is_gateway), None)


def forwards(node: NodePlan, host: HostPlan) -> list[dict[str, Any]]:
    """On the uplink gateway: ports of ``from: uplink`` flows that a host of the
    flow's zone serves, passed on to that host."""
    if uplink_gateway(node) is not host:
        return []
    found: dict[tuple[int, str], str] = {}
    for flow in node.flows:
        if flow["from"] != "uplink" or flow["to"] == "uplink":
            continue
        for server in node.hosts:
            address = server.addresses.get(flow["to"])
            if not address or server is host:
                continue
            for service in server.services:
                for spec in service.ports:
                    if _covered(spec, flow["ports"]):
                        key = (port_number(spec), port_proto(spec))
                        found.setdefault(key, address)
    return [{"port": p, "proto": proto, "to": to} for (p, proto), to in sorted(found.items())]


def _covered(spec: str, allowed: list[str]) -> bool:
    number, proto = port_number(spec), port_proto(spec)
    for item in allowed:
        low, _, high = item.split("/", 1)[0].partition("-")
        if port_proto(item) == proto and int(low) <= number <= int(high or low):
            return True
    return False


def wan_routes(node: NodePlan, host: HostPlan) -> list[dict[str, str]]:
    """Local target: a host reaches the WAN through the uplink gateway's address
    in its own zone."""
    gateway = uplink_gateway(node)
    if node.target != "local" or gateway is None or host is gateway:
        return []
    via = gateway.addresses.get(host.zone)
    return [{"cidr": LOCAL_WAN, "via": via}] if via else []


def mosquitto_tls(node: NodePlan, service: ServicePlan) -> dict[str, Any]:
    """The broker role's TLS and bridge variables (secret references only)."""
    from nodekit.render.plan import secret_ref

    settings = service.settings
    result: dict[str, Any] = {}
    if tls_secrets(service.name, node.uplink, settings):
        result["mosquitto_tls"] = {
            "ca": secret_ref(CA_CERT_SECRET),
            "bundle": secret_ref(f"tls/{service.name}"),
        }
    if accepts(settings):
        result["mosquitto_bridge_listener"] = {"port": BRIDGE_PORT}
    if bridges(node.uplink, settings):
        result["mosquitto_bridge"] = {
            "address": str(node.uplink["peer"]),
            "port": BRIDGE_PORT,
            "topics": list(settings.get("bridge_topics") or []),
            "clientid": f"bridge-{node.name}",  # unique per site at the hub
            "queue": int(settings.get("bridge_queue") or 10000),
        }
    return result
