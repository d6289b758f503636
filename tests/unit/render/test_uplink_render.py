"""The uplink rendered: a hub's broker accepting bridges behind its gateway's port
forward, a site's broker bridging out through its gateway's NAT, the ingests'
topics, the WAN routes of the local target, and the firewall the gateways get."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from nodekit.blueprint import load
from nodekit.render import PLAYBOOKS, PROJECT_ROOT, render
from nodekit.render.ansible import host_vars
from nodekit.render.plan import plan
from nodekit.render.uplink import forwards, wan_routes

BLUEPRINTS = PROJECT_ROOT / "blueprints"
HUB = BLUEPRINTS / "hubs" / "eu-west-hub.yaml"
LYON = BLUEPRINTS / "sites" / "lyon-additive-01.yaml"
BREMEN = BLUEPRINTS / "sites" / "bremen-additive-01-ssh.yaml"
WAN = "100.64.0.0/24"
TLS = {
    "ca": '{{ nodekit_secrets["tls/fleet-ca"] }}',
    "bundle": '{{ nodekit_secrets["tls/broker"] }}',
}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("uplink")
    folders = {}
    for name, path in (("hub", HUB), ("lyon", LYON), ("bremen", BREMEN)):
        render(load(path), out / name)
        folders[name] = out / name
    return folders


def _vars(folder: Path, host: str) -> dict[str, Any]:
    return yaml.safe_load((folder / "ansible" / "host_vars" / f"{host}.yml").read_text())


def _group(folder: Path) -> dict[str, Any]:
    return yaml.safe_load((folder / "ansible" / "group_vars" / "all.yml").read_text())


def _hosts(folder: Path) -> list[str]:
    return sorted(p.stem for p in (folder / "ansible" / "host_vars").glob("*.yml"))


# --- gateways ------------------------------------------------------------------------


def test_the_hubs_gateway_forwards_the_bridge_port_to_the_broker(
    rendered: dict[str, Path],
) -> None:
    gateway = _vars(rendered["hub"], "gw-01")
    assert gateway["nodekit_is_gateway"] is True
    assert gateway["nodekit_uplink_forwards"] == [
        {"port": 8883, "proto": "tcp", "to": "10.40.0.10"}
    ]


def test_only_the_gateway_forwards(rendered: dict[str, Path]) -> None:
    assert _vars(rendered["hub"], "hub-01")["nodekit_uplink_forwards"] == []


def test_a_site_with_no_flow_from_the_uplink_forwards_nothing(rendered: dict[str, Path]) -> None:
    for host in _hosts(rendered["lyon"]):
        assert _vars(rendered["lyon"], host)["nodekit_uplink_forwards"] == [], host


def test_a_forward_goes_only_to_ports_a_host_in_the_flows_zone_serves(tmp_path: Path) -> None:
    data = load(HUB).data
    data["network"]["flows"][0]["ports"] = ["8883/tcp", "5432/tcp", "9999/tcp"]

    node = plan(data)
    gateway = node.host("gw-01")
    assert forwards(node, gateway) == [
        {"port": 5432, "proto": "tcp", "to": "10.40.0.10"},  # the historian database
        {"port": 8883, "proto": "tcp", "to": "10.40.0.10"},
    ]  # 9999: nobody serves it, nothing to forward
    data["network"]["uplink"] = {"type": "none"}
    assert forwards(plan(data), plan(data).host("gw-01")) == []  # no uplink, no way in


# --- the hub's broker ----------------------------------------------------------------


def test_the_hubs_broker_accepts_bridges_on_8883_with_tls(rendered: dict[str, Path]) -> None:
    broker = _vars(rendered["hub"], "hub-01")
    assert broker["mosquitto_bridge_listener"] == {"port": 8883}
    assert broker["mosquitto_tls"] == TLS
    assert "mosquitto_bridge" not in broker  # a hub bridges to nobody
    # the plain listener stays; 8883 is the TLS listener's, not a second plain one
    assert broker["mosquitto_listeners"] == [{"port": 1883}]


def test_the_hubs_acl_knows_its_own_users(rendered: dict[str, Path]) -> None:
    broker = _vars(rendered["hub"], "hub-01")
    users = [u["name"] for u in broker["mosquitto_users"]]
    assert broker["mosquitto_acl"] == {"users": sorted(users), "anonymous": False}
    assert "ingest" in broker["mosquitto_acl"]["users"]


def test_no_certificate_or_key_is_rendered(rendered: dict[str, Path]) -> None:
    for name in ("hub", "lyon"):
        for path in (rendered[name]).rglob("*"):
            if path.is_file():
                text = path.read_text(errors="replace")
                assert "-----BEGIN" not in text, path


def test_the_hubs_ingest_takes_every_sites_telemetry(rendered: dict[str, Path]) -> None:
    config = _vars(rendered["hub"], "hub-01")["telemetry_ingest_config"]
    assert config["topics"] == ["nodekit/#"]
    assert config["node"] == "eu-west-hub"


# --- the site's broker ---------------------------------------------------------------


def test_the_sites_broker_bridges_to_the_hub(rendered: dict[str, Path]) -> None:
    broker = _vars(rendered["lyon"], "hist-01")
    bridge = broker["mosquitto_bridge"]
    assert bridge["address"] == "eu-west-hub"
    assert bridge["port"] == 8883
    assert bridge["topics"] == ["nodekit/#"]
    assert "lyon-additive-01" in bridge["clientid"]
    assert bridge["queue"] == 10000
    assert broker["mosquitto_tls"] == TLS
    assert "mosquitto_bridge_listener" not in broker  # a site accepts no bridges
    assert "mosquitto_acl" not in broker
    assert broker["mosquitto_listeners"] == [{"port": 1883}]


def test_each_sites_bridge_has_its_own_client_id(tmp_path: Path) -> None:
    ids = []
    for path in sorted((BLUEPRINTS / "sites").glob("*.yaml")):
        blueprint = load(path)
        render(blueprint, tmp_path / path.stem)
        for host in _hosts(tmp_path / path.stem):
            bridge = _vars(tmp_path / path.stem, host).get("mosquitto_bridge")
            if bridge:
                assert blueprint.data["metadata"]["name"] in bridge["clientid"]
                ids.append(bridge["clientid"])
    assert len(ids) >= 2
    assert len(set(ids)) == len(ids)  # the hub tells the sites apart


def test_the_sites_ingest_takes_its_own_telemetry_only(rendered: dict[str, Path]) -> None:
    config = _vars(rendered["lyon"], "hist-01")["telemetry_ingest_config"]
    assert config["topics"] == ["nodekit/lyon-additive-01/#"]


# --- the WAN of the local target -----------------------------------------------------


def test_a_local_sites_hosts_route_the_wan_through_their_gateway(
    rendered: dict[str, Path],
) -> None:
    expected = {"edge-01": "10.41.1.1", "hist-01": "10.41.2.1"}  # the gateway in each zone
    for host, via in expected.items():
        routes = _vars(rendered["lyon"], host)["nodekit_routes"]
        assert {"cidr": WAN, "via": via} in routes, host
    gateway = _vars(rendered["lyon"], "gw-01")["nodekit_routes"]
    assert not [r for r in gateway if r["cidr"] == WAN]


def test_the_hubs_broker_routes_the_wan_through_its_gateway(rendered: dict[str, Path]) -> None:
    routes = _vars(rendered["hub"], "hub-01")["nodekit_routes"]
    assert {"cidr": WAN, "via": "10.40.0.1"} in routes


def test_an_ssh_target_node_gets_no_wan_route_and_no_nat(rendered: dict[str, Path]) -> None:
    for host in _hosts(rendered["bremen"]):
        routes = _vars(rendered["bremen"], host)["nodekit_routes"]
        assert not [r for r in routes if r["cidr"] == WAN], host
    assert not _group(rendered["bremen"]).get("nodekit_uplink_nat")


def test_a_local_node_with_an_uplink_masquerades(rendered: dict[str, Path]) -> None:
    assert _group(rendered["lyon"])["nodekit_uplink_nat"] is True
    assert _group(rendered["hub"])["nodekit_uplink_nat"] is True


def test_a_local_node_without_uplink_needs_no_nat_and_no_route(tmp_path: Path) -> None:
    data = load(LYON).data
    data["network"]["uplink"] = {"type": "none"}
    for item in data["software"]:
        item.get("settings", {}).pop("bridge_topics", None)

    node = plan(data)
    assert [wan_routes(node, h) for h in node.hosts] == [[], [], []]
    assert not [s for s in node.secrets if s.startswith("tls/")]


# --- secrets -------------------------------------------------------------------------


def test_both_ends_need_the_ca_and_their_own_certificate(rendered: dict[str, Path]) -> None:
    for name in ("hub", "lyon"):
        manifest = json.loads((rendered[name] / "manifest.json").read_text())
        assert {"tls/broker", "tls/fleet-ca"} <= set(manifest["secrets"]), name


def test_a_broker_neither_bridging_nor_accepting_needs_no_certificate(tmp_path: Path) -> None:
    data = load(LYON).data
    for item in data["software"]:
        item.get("settings", {}).pop("bridge_topics", None)
    node = plan(data)
    assert not [s for s in node.secrets if s.startswith("tls/")]
    hist = node.host("hist-01")
    broker = next(s for s in hist.services if s.package == "mosquitto")
    assert "8883/tcp" not in broker.ports


# --- explicit ports ------------------------------------------------------------------


def test_an_accepting_broker_with_its_own_port_listens_there_and_on_8883(tmp_path: Path) -> None:
    data = load(HUB).data
    broker = next(s for s in data["software"] if s["package"] == "mosquitto")
    broker["ports"] = ["1884/tcp"]
    node = plan(data)
    service = next(s for s in node.host("hub-01").services if s.package == "mosquitto")
    assert set(service.ports) == {"1884/tcp", "8883/tcp"}

    result = host_vars(node, node.host("hub-01"))
    assert result["mosquitto_listeners"] == [{"port": 1884}]
    assert result["mosquitto_bridge_listener"] == {"port": 8883}
    # the ingest beside it follows the broker's plain port
    assert result["telemetry_ingest_config"]["broker"]["port"] == 1884


# --- the firewall the gateways get ---------------------------------------------------


def _nftables(folder: Path, host: str) -> str:
    """The firewall role's nftables.conf for a host, rendered by Ansible's templating
    with the variables Ansible would see (role defaults, group_vars, host_vars, role vars)."""
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar

    from nodekit.render.rolecheck import _trusted

    role = PLAYBOOKS / "roles" / "firewall"

    def read(path: Path) -> dict[str, Any]:
        return yaml.safe_load(path.read_text()) or {}

    variables = {
        **read(role / "defaults" / "main.yml"),
        **_group(folder),
        **_vars(folder, host),
        **read(role / "vars" / "main.yml"),
    }
    templar = Templar(loader=DataLoader(), variables=_trusted(variables))
    return str(templar.template(_trusted((role / "templates" / "nftables.conf.j2").read_text())))


def _chain(text: str, name: str) -> str:
    start = text.index(f"\tchain {name} {{")
    return text[start : text.index("\n\t}", start)]


def test_the_hubs_gateway_passes_8883_on_to_the_broker(rendered: dict[str, Path]) -> None:
    text = _nftables(rendered["hub"], "gw-01")
    prerouting = _chain(text, "prerouting")
    assert "type nat hook prerouting priority dstnat" in prerouting
    rules = [line.strip() for line in prerouting.splitlines() if "dnat" in line]
    assert len(rules) == 1
    assert "tcp dport 8883 dnat ip to 10.40.0.10" in rules[0]
    assert "ip saddr != @site_zones" in rules[0]  # only what comes through the uplink
    forward = _chain(text, "forward")
    assert "ip saddr != @site_zones ip daddr 10.40.0.0/24 tcp dport { 8883 } accept" in forward


def test_a_sites_gateway_masquerades_and_lets_the_bridge_out(rendered: dict[str, Path]) -> None:
    text = _nftables(rendered["lyon"], "gw-01")
    assert "chain prerouting" not in text  # nothing comes in
    postrouting = _chain(text, "postrouting")
    assert "ip saddr @site_zones ip daddr != @site_zones masquerade" in postrouting
    forward = _chain(text, "forward")
    outward = [line.strip() for line in forward.splitlines() if "it -> uplink" in line]
    assert outward == [
        "ip saddr 10.41.2.0/24 ip daddr != @site_zones tcp dport { 8883 } accept "
        'comment "flow it -> uplink"'
    ]


def test_a_non_gateway_host_gets_no_nat(rendered: dict[str, Path]) -> None:
    text = _nftables(rendered["lyon"], "hist-01")
    assert "masquerade" not in text
    assert "dnat" not in text
    assert "chain forward" not in text
