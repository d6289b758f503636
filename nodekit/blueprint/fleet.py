"""What only a fleet can get wrong: checks over the Node blueprints validated together.

Two kinds of check live here, both returning located diagnostics:

* :func:`node_diagnostics`, per node, run on every blueprint (also when one
  file is validated alone): on the local target, zones clear of the local WAN
  and a WAN address in its lower half; no node is its own uplink peer.
* :func:`fleet_diagnostics`, across nodes, run when several are validated
  together: unique names, uplink peers that exist, no overlapping zones
  between two nodes that meet on a WAN, no WAN address used twice on the
  local WAN.

Two nodes *meet* when one names the other as its uplink peer, or both name
the same peer; every local-target node with a vpn or direct uplink is also on
the one local WAN (:data:`LOCAL_WAN`), so all of them meet.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from nodekit.blueprint.compose import display
from nodekit.blueprint.fields import NAME_PATTERN
from nodekit.blueprint.source import Origin, did_you_mean
from nodekit.errors import Diagnostic

if TYPE_CHECKING:
    from nodekit.blueprint.loader import Blueprint

__all__ = ["LOCAL_WAN", "LOCAL_WAN_STATIC", "fleet_diagnostics", "node_diagnostics"]

LOCAL_WAN = "100.64.0.0/24"
"""The WAN of the local target: one network on this machine that every local
node with a vpn or direct uplink joins (and the hubs they name)."""
LOCAL_WAN_STATIC = "100.64.0.0/25"
"""The lower half of :data:`LOCAL_WAN`, for addresses set in blueprints
(`network.uplink.address`); Docker allocates from the upper half."""
WAN_TYPES = ("vpn", "direct")
_NAME = re.compile(NAME_PATTERN)


def node_diagnostics(blueprint: Blueprint) -> list[Diagnostic]:
    """The checks of one node that concern the WAN (run on every blueprint)."""
    found: list[Diagnostic] = []
    node = blueprint.node
    uplink = node.network.uplink
    if uplink is None:
        return found
    if uplink.peer is not None and uplink.peer == node.name:
        found.append(
            _error(
                blueprint,
                "network.uplink.peer",
                f"'{uplink.peer}' is this node itself: an uplink leads to another node "
                "(a hub) or to an external address",
            )
        )
    if node.site.target != "local":
        return found
    wan = ipaddress.IPv4Network(LOCAL_WAN)
    if uplink.type in WAN_TYPES:
        for zone in node.network.zones:
            if ipaddress.IPv4Network(zone.cidr).overlaps(wan):
                found.append(
                    _error(
                        blueprint,
                        f"network.zones[{zone.name}].cidr",
                        f"{zone.cidr} overlaps the local WAN {LOCAL_WAN} that the uplink "
                        "joins on the local target: choose another network",
                    )
                )
    if uplink.address is not None:
        static = ipaddress.IPv4Network(LOCAL_WAN_STATIC)
        address = ipaddress.IPv4Address(uplink.address)
        if address not in static or address == static.network_address:
            found.append(
                _error(
                    blueprint,
                    "network.uplink.address",
                    f"{uplink.address} is not in {LOCAL_WAN_STATIC}: on the local target a WAN "
                    f"address lies in the lower half of the local WAN {LOCAL_WAN} (from "
                    f"{static.network_address + 1}; the upper half is Docker's to allocate)",
                )
            )
    return found


def fleet_diagnostics(
    blueprints: Sequence[Blueprint], *, other_names: Iterable[str] = (), peers: bool = True
) -> list[Diagnostic]:
    """The checks across nodes; nothing when fewer than two nodes are loaded.

    ``other_names`` are the names of Node files that did not validate: a peer
    naming one of them is not reported as unknown on top of that file's errors.
    ``peers``: whether every peer must be among them (a folder is the fleet; a
    few files given by name, e.g. the sites a deploy applies, need not hold their hub).
    """
    if len(blueprints) < 2:
        return []
    return [
        *_unique_names(blueprints),
        *(_peers_exist(blueprints, set(other_names)) if peers else []),
        *_zones_apart(blueprints),
        *_wan_addresses(blueprints),
    ]


def _error(blueprint: Blueprint, path: str, message: str) -> Diagnostic:
    where = blueprint.origin(path) or Origin(display(blueprint.file), 1, 1)
    key = blueprint.canonical(path) or path
    return Diagnostic(where.file, where.line, where.column, "error", f"{key}: {message}", key)


def _wan_peer(blueprint: Blueprint) -> str | None:
    """The peer of a vpn or direct uplink, if any."""
    uplink = blueprint.node.network.uplink
    if uplink is None or uplink.type not in WAN_TYPES:
        return None
    return uplink.peer


def _on_local_wan(blueprint: Blueprint) -> bool:
    uplink = blueprint.node.network.uplink
    return blueprint.node.site.target == "local" and uplink is not None and uplink.type in WAN_TYPES


def is_node_name(peer: str) -> bool:
    """A peer that names a node (a DNS label: no dot, so no FQDN and no IP address)."""
    return _NAME.match(peer) is not None


def _unique_names(blueprints: Sequence[Blueprint]) -> list[Diagnostic]:
    found = []
    first: dict[str, Blueprint] = {}
    for blueprint in blueprints:
        other = first.setdefault(blueprint.name, blueprint)
        if other is not blueprint:
            found.append(
                _error(
                    blueprint,
                    "metadata.name",
                    f"node name '{blueprint.name}' is also used by {display(other.file)}",
                )
            )
    return found


def _peers_exist(blueprints: Sequence[Blueprint], other_names: set[str]) -> list[Diagnostic]:
    names = {b.name for b in blueprints}
    found = []
    for blueprint in blueprints:
        uplink = blueprint.node.network.uplink
        peer = uplink.peer if uplink is not None else None
        if peer is None or not is_node_name(peer) or peer == blueprint.name:
            continue  # no peer, an external address, or reported per node
        if peer in names or peer in other_names:
            continue
        hint = did_you_mean(peer, names - {blueprint.name})
        found.append(
            _error(
                blueprint,
                "network.uplink.peer",
                f"unknown node '{peer}'{hint}: a peer without a dot names a node of the fleet "
                "(the folder validated), or write its host name or address",
            )
        )
    return found


def _meeting(earlier: Blueprint, later: Blueprint) -> str | None:
    """Why ``later`` shares a WAN with ``earlier`` (words for its message), or None."""
    first, second = _wan_peer(earlier), _wan_peer(later)
    if second is not None and second == earlier.name:
        return f"this node's uplink peer is '{earlier.name}'"
    if first is not None and first == later.name:
        return f"'{earlier.name}' names this node as its uplink peer"
    if first is not None and first == second:
        return f"both uplink to '{first}'"
    if _on_local_wan(earlier) and _on_local_wan(later):
        return f"both are on the local WAN {LOCAL_WAN}"
    return None


def _zones_apart(blueprints: Sequence[Blueprint]) -> list[Diagnostic]:
    found = []
    for index, later in enumerate(blueprints):
        for earlier in blueprints[:index]:
            if earlier.name == later.name:
                continue  # one node twice: reported as a duplicate name
            meeting = _meeting(earlier, later)
            if meeting is None:
                continue
            found.extend(_overlaps(earlier, later, meeting))
    return found


def _overlaps(earlier: Blueprint, later: Blueprint, meeting: str) -> list[Diagnostic]:
    found = []
    for zone in later.node.network.zones:
        network = ipaddress.IPv4Network(zone.cidr)
        for other in earlier.node.network.zones:
            if network.overlaps(ipaddress.IPv4Network(other.cidr)):
                found.append(
                    _error(
                        later,
                        f"network.zones[{zone.name}].cidr",
                        f"{zone.cidr} overlaps zone '{other.name}' ({other.cidr}) of node "
                        f"'{earlier.name}' ({display(earlier.file)}), which this node meets "
                        f"on a WAN ({meeting}): choose a free network",
                    )
                )
                break
    return found


def _wan_addresses(blueprints: Sequence[Blueprint]) -> list[Diagnostic]:
    found = []
    first: dict[str, Blueprint] = {}
    for blueprint in blueprints:
        uplink = blueprint.node.network.uplink
        if blueprint.node.site.target != "local" or uplink is None or uplink.address is None:
            continue
        other = first.setdefault(uplink.address, blueprint)
        if other is not blueprint:
            found.append(
                _error(
                    blueprint,
                    "network.uplink.address",
                    f"{uplink.address} is also the local WAN address of node '{other.name}' "
                    f"({display(other.file)})",
                )
            )
    return found
