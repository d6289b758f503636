"""Rules of the uplink: a hub's broker that accepts bridges, a site's bridge.

What the bridges need of the network is never added silently (as for the
equipment): a connection no declared flow allows is an error that names the
flow to add.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from pydantic import ValidationError

from nodekit.blueprint.fields import parse_port
from nodekit.blueprint.model import Node
from nodekit.blueprint.packages import MosquittoSettings
from nodekit.blueprint.report import Loc, Report

if TYPE_CHECKING:
    from nodekit.blueprint.rules import Skipped

BRIDGE_PORT = 8883


def _allows(node: Node, source: str, target: str) -> bool:
    for flow in node.network.flows:
        if (flow.from_, flow.to) != (source, target):
            continue
        for spec in flow.ports:
            low, high, proto = parse_port(spec)
            if proto == "tcp" and low <= BRIDGE_PORT <= high:
                return True
    return False


def _inside(node: Node, peer: str | None) -> bool:
    """Whether the peer is an address in one of the node's own zones (a relay on site:
    reached without crossing a gateway)."""
    try:
        address = ipaddress.IPv4Address(peer or "")
    except ValueError:
        return False
    return any(address in ipaddress.IPv4Network(z.cidr) for z in node.network.zones)


def check_uplink(node: Node, report: Report, skipped: Skipped) -> None:
    if skipped.hosts or skipped.zones or skipped.software:
        return  # references are reported already
    uplink = node.network.uplink
    active = uplink is not None and uplink.type in ("vpn", "direct")
    on_site = uplink is not None and _inside(node, uplink.peer)
    gateways = list(node.gateways())
    if active and node.site.target == "local" and not gateways and not on_site:
        report.error(
            ("network", "uplink"),
            "on the local target a node meets the WAN through its gateway, and this node has "
            "none: add a compute host with role gateway, or remove the uplink",
        )
    hosts = {h.name: h for h in node.compute}
    for index, item in enumerate(node.software):
        if item.package != "mosquitto" or item.host not in hosts:
            continue
        try:
            settings = MosquittoSettings.model_validate(item.settings)
        except ValidationError:
            continue  # reported with the settings
        zones = list(node.addresses_of(hosts[item.host]))
        loc: Loc = ("software", index, "settings")
        if settings.accept_bridges:
            if hosts[item.host].role == "gateway" and node.site.target == "local":
                report.error(
                    (*loc, "accept_bridges"),
                    "sites reach a hub's broker through its gateway, which passes the bridge port "
                    "on to a host of the zone: place this broker on a host that is not the "
                    "gateway",
                )
            elif not active:
                report.error(
                    (*loc, "accept_bridges"),
                    "sites bridge to this broker through the uplink, but the network has none: "
                    "set network.uplink (type direct) so its gateway meets theirs",
                )
            elif not any(_allows(node, "uplink", zone) for zone in zones):
                report.error(
                    (*loc, "accept_bridges"),
                    f"sites reach this broker on {BRIDGE_PORT}/tcp through the uplink, but no "
                    f"flow lets them: add to network.flows {{from: uplink, to: {zones[0]}, "
                    f"ports: [{BRIDGE_PORT}/tcp], purpose: site bridges}}",
                )
        bridged = settings.bridge_topics and active and uplink is not None and uplink.peer
        on_gateway = hosts[item.host].role == "gateway"  # its own traffic goes straight out
        way_out = on_site or any(_allows(node, zone, "uplink") for zone in zones)
        if bridged and gateways and not on_gateway and not way_out:
            report.error(
                (*loc, "bridge_topics"),
                f"the bridge leaves through the uplink on {BRIDGE_PORT}/tcp (TLS), but no flow "
                f"lets it out: add to network.flows {{from: {zones[0]}, to: uplink, "
                f"ports: [{BRIDGE_PORT}/tcp], purpose: MQTT bridge to the hub}}",
            )
