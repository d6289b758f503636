"""The local target's WAN: one Docker network where the nodes' gateways meet.

Its own small Pulumi stack (project ``nodekit-wan``, stack ``wan``) in the
fleet scope of the state backend, brought up before the infrastructure of
any local node with an uplink and never removed by a node's destroy. Like a
zone's network it is internal (no route off this machine). Addresses below
the middle of the subnet are for gateways that name theirs
(``network.uplink.address``); Docker gives out the upper half.
"""

from __future__ import annotations

import ipaddress

import pulumi

from nodekit.pulumi.docker_provider import Network

FLEET_LABEL = "io.nodekit.fleet"


def layout(cidr: str) -> dict[str, str]:
    """Subnet, bridge address (the last) and the dynamic range (upper half)."""
    net = ipaddress.IPv4Network(cidr)
    upper = list(net.subnets(prefixlen_diff=1))[1]
    return {"subnet": str(net), "gateway": str(net[-2]), "ip_range": str(upper)}


def program() -> None:
    config = pulumi.Config("nodekit")
    name = config.require("network")
    parts = layout(config.require("cidr"))
    wan = Network(
        "wan",
        name=name,
        subnet=parts["subnet"],
        gateway=parts["gateway"],
        ip_range=parts["ip_range"],
        internal=True,
        labels={FLEET_LABEL: "wan"},
        adopt=True,  # made by another state on this machine: the same WAN
    )
    pulumi.export("network", wan.name)
    pulumi.export("subnet", wan.subnet)
