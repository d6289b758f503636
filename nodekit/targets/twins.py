"""The local target's equipment twins at run time: credentials in, faults on demand.

Pulumi creates the twins (:mod:`nodekit.pulumi.twin_provider`); their
credentials (an OctoPrint API key, an OPC UA or MQTT password) come from the
node's secrets and reach each twin here, through ``docker exec`` with the
value on standard input: never in an argument, an environment variable, a
rendered file or Pulumi's state. A twin re-reads its secrets and its state
file by itself.
"""

from __future__ import annotations

import json
from typing import Any

from nodekit.errors import DockerError, InputError
from nodekit.pulumi.twin_provider import TWIN_DIR
from nodekit.render.plan import EquipmentPlan, NodePlan

STATES = ("ok", "error", "offline")


def _container(machine: EquipmentPlan) -> Any:
    import docker

    try:
        return docker.from_env(timeout=60).containers.get(machine.container)
    except docker.errors.NotFound:
        return None
    except docker.errors.DockerException as error:
        raise DockerError(f"twin {machine.name}: {error}") from None


def _write(container: Any, path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` in the container (0600, atomically), from stdin."""
    command = f"umask 077 && mkdir -p {TWIN_DIR} && cat > {path}.tmp && mv {path}.tmp {path}"
    exec_id = container.client.api.exec_create(container.id, ["sh", "-c", command], stdin=True)
    sock = container.client.api.exec_start(exec_id["Id"], socket=True)
    raw = getattr(sock, "_sock", sock)
    raw.sendall(data)
    raw.shutdown(1)  # end of input: cat finishes
    while raw.recv(4096):
        pass
    raw.close()
    code = container.client.api.exec_inspect(exec_id["Id"]).get("ExitCode")
    if code != 0:
        raise DockerError(f"twin {container.name}: cannot write {path} (exit {code})")


def push_secrets(node: NodePlan, values: dict[str, str]) -> int:
    """Give every twin the credentials its protocol needs; the twins written."""
    written = 0
    for machine in node.equipment:
        if not machine.twin:
            continue
        own = {
            key: values[f"equipment/{machine.name}/{key}"]
            for key in ("api_key", "password")
            if f"equipment/{machine.name}/{key}" in values
        }
        container = _container(machine)
        if container is None:
            continue
        payload = json.dumps({machine.name: own}, sort_keys=True).encode()
        _write(container, f"{TWIN_DIR}/secrets.json", payload)
        written += 1
    return written


def set_state(node: NodePlan, name: str, state: str) -> EquipmentPlan:
    """Put the twin of equipment ``name`` into ``state`` (ok, error, offline)."""
    if state not in STATES:
        raise InputError(f"unknown twin state '{state}': use one of {', '.join(STATES)}")
    machine = next((m for m in node.equipment if m.name == name), None)
    if machine is None:
        known = ", ".join(m.name for m in node.equipment) or "none"
        raise InputError(f"node {node.name} has no equipment '{name}'; known: {known}")
    if not machine.twin:
        raise InputError(
            f"equipment '{name}' has no address, so the local target stands in no twin for it"
        )
    container = _container(machine)
    if container is None or container.status != "running":
        raise DockerError(
            f"the twin of '{name}' ({machine.container}) is not running: deploy the node first"
        )
    _write(container, f"{TWIN_DIR}/state", (state + "\n").encode())
    return machine
