"""network.zones[].vlan on the local target: the zone's Docker network carries it as
the label io.nodekit.vlan (the provider against a stand-in for the Docker SDK)."""

from __future__ import annotations

from typing import Any

import pytest

from nodekit.pulumi import docker_parts
from nodekit.pulumi import docker_provider as dp


class FakeNetwork:
    def __init__(self, name: str, labels: dict[str, str]) -> None:
        self.id = "net-" + name
        self.attrs = {
            "Name": name, "Id": self.id, "Internal": True, "Labels": labels,
            "IPAM": {"Config": [{"Subnet": "10.41.1.0/24", "Gateway": "10.41.1.254"}]},
        }  # fmt: skip

    def reload(self) -> None:
        return


class FakeNetworks:
    def __init__(self) -> None:
        self.made: dict[str, FakeNetwork] = {}

    def create(self, name: str, **kwargs: Any) -> FakeNetwork:
        self.made[name] = FakeNetwork(name, dict(kwargs["labels"]))
        return self.made[name]

    def get(self, id_: str) -> FakeNetwork:
        return next(n for n in self.made.values() if n.id == id_)


class FakeClient:
    def __init__(self) -> None:
        self.networks = FakeNetworks()


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> FakeClient:
    fake = FakeClient()
    monkeypatch.setattr(dp, "_client", lambda: fake)
    # the host rule is there
    monkeypatch.setattr(docker_parts, "_iptables", lambda action, rule: True)
    return fake


def _props(vlan: str) -> dict[str, Any]:
    labels = {dp.NODE_LABEL: "lyon"}
    return {"name": "nk-lyon-ot", "subnet": "10.41.1.0/24", "gateway": "10.41.1.254",
            "internal": True, "ip_range": "", "labels": labels, "vlan": vlan}  # fmt: skip


def test_a_zone_network_is_made_with_its_vlan_label(client: FakeClient) -> None:
    made = dp.NetworkProvider().create(_props("41"))
    labels = client.networks.made["nk-lyon-ot"].attrs["Labels"]
    assert labels == {dp.NODE_LABEL: "lyon", dp.VLAN_LABEL: "41", dp.MANAGED_LABEL: "true"}
    assert made.outs["vlan"] == "41" and made.outs["labels"] == {dp.NODE_LABEL: "lyon"}
    none = dp.NetworkProvider().create({**_props("none"), "name": "nk-lyon-it"})
    assert client.networks.made["nk-lyon-it"].attrs["Labels"][dp.VLAN_LABEL] == "none"
    assert none.outs["vlan"] == "none"


def test_a_network_that_is_no_zones_has_no_vlan_label(client: FakeClient) -> None:
    dp.NetworkProvider().create({**_props(""), "name": "nk-wan"})
    assert dp.VLAN_LABEL not in client.networks.made["nk-wan"].attrs["Labels"]


def test_read_reports_the_label_as_the_vlan_not_among_the_labels(client: FakeClient) -> None:
    provider = dp.NetworkProvider()
    made = provider.create(_props("41"))
    read = provider.read(made.id, _props("41"))
    assert read.outs["vlan"] == "41" and read.outs["labels"] == {dp.NODE_LABEL: "lyon"}
    assert not provider.diff(made.id, read.outs, _props("41")).changes


def test_a_network_made_before_the_label_is_left_as_it_is() -> None:
    provider = dp.NetworkProvider()
    older = {**_props("41"), "vlan": "", "bridged": True}  # no label on it, or an older state
    diff = provider.diff("net-1", older, _props("41"))
    assert not diff.changes and not diff.replaces
    older.pop("vlan")
    assert not provider.diff("net-1", older, _props("41")).changes


def test_a_changed_vlan_is_refused_naming_the_network_and_both_ids(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(docker_parts, "_iptables", lambda action, rule: True)
    provider = dp.NetworkProvider()
    made = {**_props("41"), "bridged": True}
    diff = provider.diff("net-1", made, _props("43"))
    assert diff.changes and not diff.replaces  # never a replacement: it has containers
    with pytest.raises(RuntimeError) as refused:
        provider.update("net-1", made, _props("43"))
    assert str(refused.value) == (
        "network nk-lyon-ot was made for VLAN 41, its zone's vlan is now 43; Docker cannot "
        "relabel a network: nodekit destroy the node, then deploy it again"
    )
    kept = provider.update("net-1", {**made, "vlan": ""}, _props("43"))
    assert kept.outs["vlan"] == ""  # what the network was made with, not what is wanted
