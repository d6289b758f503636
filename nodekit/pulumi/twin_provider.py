"""Equipment twins on the local target: one small container per machine.

A twin stands at the machine's address in its zone's network, behind the
gateway's firewall like the real machine, and speaks its protocol
(:mod:`nodekit.equipment.twin`). It runs the node image with a plain
process, not systemd: at start it unpacks the agents' wheels from the
read-only site bundle, routes the other zones through the gateway (it keeps
NET_ADMIN for that, nothing more: never the right to set the clock) and
execs the twin. Secrets reach it after creation, through ``docker exec``
(:func:`nodekit.targets.twins.push_secrets`), never through its
configuration, so Pulumi's state holds none.
"""

from __future__ import annotations

import json
import time
from typing import Any

from docker.errors import APIError, NotFound
from docker.types import EndpointConfig
from pulumi import Input, Output, ResourceOptions
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider

from nodekit.pulumi.docker_parts import MANAGED_LABEL, _container_state
from nodekit.pulumi.docker_provider import _client
from nodekit.render.plan import BUNDLE_MOUNT

TWIN_DIR = "/var/lib/nodekit-twin"  # state and secrets files (kept across restarts)
LIB = "/opt/nodekit-twin"
SCRIPT = f"""set -eu
if [ ! -e {LIB}/.installed ]; then
  python3 -c 'import glob, sys, zipfile
for wheel in sorted(glob.glob(sys.argv[1] + "/*.whl")):
    zipfile.ZipFile(wheel).extractall(sys.argv[2])' {BUNDLE_MOUNT}/wheels {LIB}
  touch {LIB}/.installed
fi
ip route del default 2>/dev/null || true
for route in $NODEKIT_TWIN_ROUTES; do ip route replace "${{route%@*}}" via "${{route#*@}}"; done
mkdir -p {TWIN_DIR}
printf '%s' "$NODEKIT_TWIN_CONFIG" > {TWIN_DIR}/twin.json
exec env PYTHONPATH={LIB} python3 -u -m nodekit_equipment.twin --config {TWIN_DIR}/twin.json
"""


class TwinProvider(ResourceProvider):
    """Creates, reads and deletes twin containers; any change re-creates one."""

    REPLACE_KEYS = ("name", "image", "network", "address", "config", "routes", "bundle", "labels")
    serialize_as_secret_always = False  # it captures no secret

    def create(self, props: dict[str, Any]) -> CreateResult:
        client = _client()
        routes = " ".join(f"{cidr}@{via}" for cidr, via in props.get("routes") or [])
        try:
            container = client.containers.create(
                props["image"],
                command=["/bin/sh", "-c", SCRIPT],
                name=props["name"],
                hostname=props["name"],
                detach=True,
                cap_add=["NET_ADMIN"],
                environment={"NODEKIT_TWIN_CONFIG": props["config"], "NODEKIT_TWIN_ROUTES": routes},
                volumes={props["bundle"]: {"bind": BUNDLE_MOUNT, "mode": "ro"}},
                mem_limit="192m",
                restart_policy={"Name": "unless-stopped"},
                labels={**props.get("labels", {}), MANAGED_LABEL: "true"},
                network=props["network"],
                networking_config={
                    props["network"]: EndpointConfig("1.41", ipv4_address=props["address"])
                },
            )
        except APIError as error:
            raise RuntimeError(f"twin {props['name']}: {error.explanation}") from None
        try:
            container.start()
            port = props.get("port")
            _wait_ready(container, int(port) if port else None)
        except Exception as error:
            container.remove(force=True, v=True)
            raise RuntimeError(f"twin {props['name']}: {error}") from None
        container.reload()
        return CreateResult(container.id, {**props, **_state(container)})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        try:
            container = _client().containers.get(id_)
        except NotFound:
            return ReadResult(None, {})
        return ReadResult(id_, {**props, **_state(container)})

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [k for k in self.REPLACE_KEYS if olds.get(k) != news.get(k)]
        if not olds.get("running", True):
            replaces.append("running")  # a stopped twin comes back as new
        return DiffResult(changes=bool(replaces), replaces=replaces, delete_before_replace=True)

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        try:
            _client().containers.get(id_).remove(force=True, v=True)
        except NotFound:
            return


def _state(container: Any) -> dict[str, Any]:
    state = _container_state(container)
    return {"running": state["running"], "container_id": state["container_id"]}


def _wait_ready(container: Any, port: int | None, timeout_s: float = 90) -> None:
    """Until the twin listens on its port (or, without one, runs)."""
    probe = "import socket, sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 1)"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        container.reload()
        if container.status == "exited":
            logs = container.logs(tail=5).decode(errors="replace").strip()
            raise RuntimeError(f"exited at start: {logs[-400:]}")
        if port is None and container.status == "running":
            return
        if port is not None:
            result = container.exec_run(["python3", "-c", probe, str(port)])
            if result.exit_code == 0:
                return
        time.sleep(0.3)
    raise RuntimeError(f"not listening on port {port} after {timeout_s:.0f} s")


class Twin(Resource, module="nodekit", name="Twin"):
    """An equipment twin managed by :class:`TwinProvider`."""

    name: Output[str]
    container_id: Output[str]
    running: Output[bool]

    def __init__(
        self,
        resource_name: str,
        *,
        name: str,
        image: Input[str],
        network: Input[str],
        address: str,
        port: int | None,
        config: dict[str, Any],
        routes: list[tuple[str, str]],
        bundle: str,
        labels: dict[str, str],
        opts: ResourceOptions | None = None,
    ) -> None:
        super().__init__(
            TwinProvider(),
            resource_name,
            {
                "name": name,
                "image": image,
                "network": network,
                "address": address,
                "port": port,
                "config": json.dumps(config, sort_keys=True),
                "routes": [list(r) for r in routes],
                "bundle": bundle,
                "labels": labels,
                "running": True,
                "container_id": None,
            },
            opts,
        )
