"""nodekit's own Pulumi dynamic provider for local-target Docker resources.

No Docker provider plugin can be downloaded or built here (nor at an
air-gapped site), so local-target networks and containers are managed by
this dynamic provider, written against the docker SDK. It implements
create, read, diff, update and delete, so that preview, refresh and drift
detection work for real: ``read`` reports what the engine sees now (running
state, networks and addresses, limits), and ``diff`` compares that with what
the program asks for.

The engine runs the provider in its own process (``pulumi-resource-pulumi-
python``), so nothing here may hold a client at import time.
"""

from __future__ import annotations

import contextlib
from typing import Any

import docker
from docker.errors import APIError, NotFound
from docker.types import EndpointConfig, IPAMConfig, IPAMPool
from pulumi import Input, Output, ResourceOptions
from pulumi.dynamic import (
    CheckResult,
    CreateResult,
    DiffResult,
    ReadResult,
    Resource,
    ResourceProvider,
    UpdateResult,
)

from nodekit.pulumi.docker_parts import (
    CPU_PERIOD,
    MANAGED_LABEL,
    NODE_LABEL,
    VLAN_LABEL,
    _boot,
    _container_state,
    _ensure_bridged,
    _network_state,
    _norm,
    _relabel,
    _sorted_networks,
    _unbridge,
    _vlan_label,
    bridge_name,
)

# The labels and the bridge name are defined with the helpers, and imported from here.
__all__ = [
    "DNS_OPTIONS",
    "MANAGED_LABEL",
    "NODE_LABEL",
    "SYSTEMD_CAPS",
    "SYSTEMD_MOUNTS",
    "SYSTEMD_TMPFS",
    "VLAN_LABEL",
    "Container",
    "ContainerProvider",
    "Network",
    "NetworkProvider",
    "bridge_name",
]

# The flags systemd needs as PID 1 in a container on these machines
# (--privileged fails here; the node never gets the right to set the clock).
SYSTEMD_CAPS = ["SYS_ADMIN", "NET_ADMIN"]
SYSTEMD_MOUNTS = {"/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "rw"}}
SYSTEMD_TMPFS = {"/run": "", "/run/lock": ""}
# A node's networks have no route off this machine, so a name Docker's resolver
# does not know never resolves: give up in 1 s, not glibc's 2 x 5 s (a broker
# bridged to a hub that is not deployed here waited 10 s at every restart).
DNS_OPTIONS = ["timeout:1", "attempts:1"]


def _client() -> docker.DockerClient:
    return docker.from_env(timeout=120)


# --------------------------------------------------------------------------- networks


class NetworkProvider(ResourceProvider):
    """An internal bridge network with a fixed subnet (one per zone)."""

    REPLACE_KEYS = ("name", "subnet", "gateway", "internal", "labels", "ip_range")
    serialize_as_secret_always = False  # it captures no secret

    def create(self, props: dict[str, Any]) -> CreateResult:
        client = _client()
        if props.get("adopt"):  # one per machine, whichever state made it (the WAN)
            for net in client.networks.list(names=[props["name"]]):
                net.reload()
                state = _network_state(net)
                same = state["name"] == props["name"] and state["subnet"] == props["subnet"]
                if same and state["labels"].get(MANAGED_LABEL):
                    _ensure_bridged(bridge_name(props["name"]))
                    return CreateResult(net.id, {**props, **state, "labels": props["labels"]})
        pool = IPAMPool(
            subnet=props["subnet"], gateway=props["gateway"], iprange=props.get("ip_range") or None
        )
        ipam = IPAMConfig(pool_configs=[pool])
        try:
            net = client.networks.create(
                props["name"],
                driver="bridge",
                internal=bool(props.get("internal", True)),
                ipam=ipam,
                labels={**props.get("labels", {}), **_vlan_label(props), MANAGED_LABEL: "true"},
                options={"com.docker.network.bridge.name": bridge_name(props["name"])},
                check_duplicate=True,
            )
        except APIError as error:
            raise RuntimeError(f"network {props['name']}: {error.explanation}") from None
        try:
            _ensure_bridged(bridge_name(props["name"]))
        except RuntimeError:
            net.remove()
            raise
        net.reload()
        return CreateResult(net.id, {**props, **_network_state(net), "labels": props["labels"]})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        try:
            net = _client().networks.get(id_)
        except NotFound:
            return ReadResult(None, {})  # gone: refresh drops it, the next up recreates it
        state = _network_state(net)
        own = (MANAGED_LABEL, VLAN_LABEL)
        state["labels"] = {k: v for k, v in state["labels"].items() if k not in own}
        return ReadResult(id_, {**props, **state})

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        # (a key absent from an older state is its empty value: no change)
        changed = [k for k in self.REPLACE_KEYS if (olds.get(k) or "") != (news.get(k) or "")]
        rebridge = olds.get("bridged") is False  # the host rule vanished (a reboot)
        return DiffResult(
            changes=bool(changed) or rebridge or _relabel(olds, news) is not None,
            replaces=changed,
            delete_before_replace=True,
        )

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        relabel = _relabel(olds, news)
        if relabel:  # replacing the network would cut its containers off: say so instead
            raise RuntimeError(relabel)
        _ensure_bridged(bridge_name(news["name"]))
        # (the vlan recorded is the label the network was made with)
        return UpdateResult({**olds, **news, "bridged": True, "vlan": olds.get("vlan") or ""})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        with contextlib.suppress(NotFound):
            _client().networks.get(id_).remove()
        _unbridge(bridge_name(props["name"]))


class Network(Resource, module="nodekit", name="Network"):
    """A Docker network managed by :class:`NetworkProvider`."""

    name: Output[str]
    subnet: Output[str]
    gateway: Output[str]
    network_id: Output[str]

    def __init__(
        self,
        resource_name: str,
        *,
        name: Input[str],
        subnet: Input[str],
        gateway: Input[str],
        internal: bool = True,
        ip_range: str = "",
        labels: dict[str, str] | None = None,
        vlan: int | None = None,  # a zone network's VLAN (0: none); None: not a zone's
        adopt: bool = False,
        opts: ResourceOptions | None = None,
    ) -> None:
        super().__init__(
            NetworkProvider(),
            resource_name,
            {
                "adopt": adopt,
                "vlan": "" if vlan is None else str(vlan or "none"),
                "name": name,
                "subnet": subnet,
                "gateway": gateway,
                "internal": internal,
                "ip_range": ip_range,
                "labels": labels or {},
                "network_id": None,
                "bridged": True,
            },
            opts,
        )


# --------------------------------------------------------------------------- containers


class ContainerProvider(ResourceProvider):
    """A node host: a systemd container from the node image."""

    REPLACE_KEYS = ("name", "image", "hostname", "sysctls", "mounts", "labels")
    serialize_as_secret_always = False  # it captures no secret
    UPDATE_KEYS = ("running", "networks", "memory_mb", "cpus")

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        news = dict(news)
        news["networks"] = _sorted_networks(news.get("networks") or [])
        return CheckResult(news, [])

    def create(self, props: dict[str, Any]) -> CreateResult:
        client = _client()
        networks = _sorted_networks(props["networks"])
        first = networks[0]
        mounts = dict(SYSTEMD_MOUNTS)
        for source, target in sorted((props.get("mounts") or {}).items()):
            mounts[source] = {"bind": target, "mode": "ro"}
        try:
            container = client.containers.create(
                props["image"],
                name=props["name"],
                hostname=props["hostname"],
                detach=True,
                cap_add=SYSTEMD_CAPS,
                cgroupns="host",
                volumes=mounts,
                tmpfs=SYSTEMD_TMPFS,
                dns_opt=DNS_OPTIONS,
                stop_signal="SIGRTMIN+3",
                sysctls=props.get("sysctls") or None,
                mem_limit=f"{props['memory_mb']}m" if props.get("memory_mb") else None,
                cpu_period=CPU_PERIOD if props.get("cpus") else None,
                cpu_quota=int(float(props["cpus"]) * CPU_PERIOD) if props.get("cpus") else None,
                labels={**props.get("labels", {}), MANAGED_LABEL: "true"},
                network=first["network"],
                networking_config={
                    first["network"]: EndpointConfig("1.41", ipv4_address=first["address"] or None)
                },
            )
        except APIError as error:
            raise RuntimeError(f"container {props['name']}: {error.explanation}") from None
        try:
            for extra in networks[1:]:
                client.networks.get(extra["network"]).connect(
                    container,
                    ipv4_address=extra["address"] or None,  # "": the engine picks
                )
            if props.get("running", True):
                _boot(container)
        except Exception as error:
            # Not recorded in the state when create fails: leave nothing behind.
            container.remove(force=True, v=True)
            detail = error.explanation if isinstance(error, APIError) else str(error)
            raise RuntimeError(f"container {props['name']}: {detail}") from None
        container.reload()
        return CreateResult(container.id, {**props, **_container_state(container)})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        try:
            container = _client().containers.get(id_)
        except NotFound:
            return ReadResult(None, {})
        return ReadResult(id_, {**props, **_container_state(container)})

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [k for k in self.REPLACE_KEYS if olds.get(k) != news.get(k)]
        updates = [k for k in self.UPDATE_KEYS if _norm(k, olds.get(k)) != _norm(k, news.get(k))]
        if "memory_mb" in updates and not news.get("memory_mb"):
            replaces.append("memory_mb")  # Docker cannot lift a memory limit in place
        return DiffResult(
            changes=bool(replaces or updates),
            replaces=replaces,
            delete_before_replace=True,
        )

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        client = _client()
        container = client.containers.get(id_)
        limits: dict[str, Any] = {}
        if _norm("memory_mb", olds.get("memory_mb")) != _norm("memory_mb", news.get("memory_mb")):
            limits["mem_limit"] = f"{news['memory_mb']}m" if news.get("memory_mb") else 0
            limits["memswap_limit"] = -1
        if _norm("cpus", olds.get("cpus")) != _norm("cpus", news.get("cpus")):
            cpus = float(news.get("cpus") or 0)
            limits["cpu_period"] = CPU_PERIOD
            limits["cpu_quota"] = int(cpus * CPU_PERIOD) if cpus else -1
        if limits:
            container.update(**limits)
        wanted = {n["network"]: n["address"] for n in news["networks"]}
        current = {n["network"]: n["address"] for n in olds.get("networks") or []}
        for name, address in current.items():
            if wanted.get(name) != address:
                client.networks.get(name).disconnect(container, force=True)
        for name, address in wanted.items():
            if current.get(name) != address:
                client.networks.get(name).connect(container, ipv4_address=address or None)
        container.reload()
        running = bool(container.attrs["State"]["Running"])
        if news.get("running", True) and not running:
            _boot(container)
        elif not news.get("running", True) and running:
            container.stop(timeout=20)
        container.reload()
        return UpdateResult({**news, **_container_state(container)})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        try:
            container = _client().containers.get(id_)
        except NotFound:
            return
        container.remove(force=True, v=True)


class Container(Resource, module="nodekit", name="Container"):
    """A systemd node container managed by :class:`ContainerProvider`."""

    name: Output[str]
    container_id: Output[str]
    running: Output[bool]
    networks: Output[list[dict[str, str]]]

    def __init__(
        self,
        resource_name: str,
        *,
        name: Input[str],
        image: Input[str],
        hostname: Input[str],
        networks: Input[list[dict[str, Input[str]]]],
        memory_mb: int | None = None,
        cpus: float | None = None,
        sysctls: dict[str, str] | None = None,
        mounts: dict[str, str] | None = None,
        labels: dict[str, str] | None = None,
        running: bool = True,
        opts: ResourceOptions | None = None,
    ) -> None:
        super().__init__(
            ContainerProvider(),
            resource_name,
            {
                "name": name,
                "image": image,
                "hostname": hostname,
                "networks": networks,
                "memory_mb": memory_mb or 0,
                "cpus": cpus or 0,
                "sysctls": sysctls or {},
                "mounts": mounts or {},
                "labels": labels or {},
                "running": running,
                "container_id": None,
            },
            opts,
        )
