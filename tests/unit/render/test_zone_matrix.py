"""The live segmentation proof verify runs: every ordered pair of zones a
gateway joins gets its allowed tcp ports probed (expected through) and a sample
of the others (expected blocked); every host its packages recorded."""

from __future__ import annotations

from typing import Any

from nodekit.render.checks import DENIED_SAMPLE, packages, zone_matrix
from nodekit.render.plan import plan

DATA: dict[str, Any] = {
    "metadata": {"name": "m"},
    "site": {"region": "eu", "timezone": "UTC", "target": "local"},
    "network": {
        "zones": [
            {"name": "ot", "cidr": "10.7.1.0/24"},
            {"name": "it", "cidr": "10.7.2.0/24"},
            {"name": "dmz", "cidr": "10.7.3.0/24"},
        ],
        "flows": [
            {"from": "ot", "to": "it", "ports": ["1883/tcp", "8000-8010/tcp", "514/udp"]},
            {"from": "it", "to": "dmz", "ports": ["443/tcp"]},
            {"from": "uplink", "to": "dmz", "ports": ["443/tcp"]},
        ],
    },
    "compute": [
        {"name": "gw", "role": "gateway", "zone": "it", "address": "10.7.2.1",
         "interfaces": [{"zone": "ot", "address": "10.7.1.1"},
                        {"zone": "dmz", "address": "10.7.3.1"}]},
        {"name": "edge", "role": "edge", "zone": "ot", "address": "10.7.1.10"},
        {"name": "db", "role": "controller", "zone": "it", "address": "10.7.2.9"},
        {"name": "hist", "role": "controller", "zone": "it", "address": "10.7.2.10"},
        {"name": "relay", "role": "controller", "zone": "dmz", "address": "10.7.3.10"},
    ],
    "software": [{"name": "broker", "package": "mosquitto", "host": "hist"}],
}  # fmt: skip


def test_every_ordered_pair_of_zones_is_probed() -> None:
    allowed, denied = zone_matrix(plan(DATA))
    # tcp ports of each flow, at the host that listens when one does; udp is not probed
    assert allowed == [
        ("db", "relay", "10.7.3.10", "443/tcp"),
        ("edge", "db", "10.7.2.9", "8000/tcp"),  # a range: its low end
        ("edge", "hist", "10.7.2.10", "1883/tcp"),  # the broker's host listens
    ]
    pairs = {(s, t) for s, t, _, _ in denied}
    assert pairs == {("edge", "db"), ("db", "edge"), ("db", "relay"), ("edge", "relay"),
                     ("relay", "edge"), ("relay", "db")}  # fmt: skip
    ot_to_it = {p for s, t, _, p in denied if (s, t) == ("edge", "db")}
    assert ot_to_it == set(DENIED_SAMPLE) - {"1883/tcp"}  # the flow opens 1883
    assert {p for s, t, _, p in denied if (s, t) == ("db", "edge")} == set(DENIED_SAMPLE)


def test_the_gateway_is_never_a_probe_source_or_target() -> None:
    allowed, denied = zone_matrix(plan(DATA))
    assert all("gw" not in (s, t) for s, t, _, _ in allowed + denied)


def test_packages_per_host() -> None:
    found = dict(packages(plan(DATA)))
    assert found["hist"] == ["chrony", "mosquitto", "nftables", "openssh-server"]
    assert found["gw"] == ["chrony", "nftables", "openssh-server"]
