"""The local target: each host a systemd container on this machine's Docker engine.

Pulumi creates one internal network per zone and one container per host
(nodekit.pulumi.node.LocalNode); Ansible and testinfra reach the containers
through the engine, never over a network. The site bundle reaches them as a
read-only mount, so there is nothing to deliver.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from typing import Any, ClassVar

from nodekit.render.plan import HostPlan
from nodekit.targets.base import PreflightProblem, RunAccess, Runner, Target


class LocalTarget(Target):
    name: ClassVar[str] = "local"
    destroys_removed_hosts: ClassVar[bool] = True  # its stack owns the containers
    toolchain: ClassVar[tuple[str, ...]] = ("docker engine", "node image")
    ships_image: ClassVar[bool] = True

    def connection_vars(self, host: HostPlan) -> dict[str, Any]:
        # "docker" routes to community.docker.docker, and Mitogen recognises it.
        return {"ansible_connection": "docker", "ansible_host": host.container}

    def testinfra_spec(self, host: HostPlan) -> str:
        return f"docker://{host.container}"

    def host_command(self, host: HostPlan, command: str) -> str:
        return f"docker exec {host.container} {command}"

    def role_vars(self) -> dict[str, Any]:
        # Containers never get the right to set this machine's clock, and are
        # created with their sysctls set: the roles must not try either.
        # Gateways meet on the WAN nodekit makes: what leaves takes the gateway's address.
        from nodekit.render.uplink import active

        return {
            "nodekit_chrony_clock_control": False,
            "nodekit_manage_ip_forward": False,
            "nodekit_uplink_nat": active(self.node.uplink),
        }

    def stack_config(self) -> dict[str, str]:
        from nodekit.render import cached_image_ref

        return {"image": cached_image_ref()}

    def pulumi_hosts(self, config: Any) -> Any:
        """Inside the Pulumi program: the node's networks and containers."""
        from nodekit.pulumi.node import LocalNode

        # The bundle folder is machine-local: it comes from the environment of
        # the run (nodekit deploy sets it), never from a rendered file.
        bundle = config.get("bundle") or os.environ.get("NODEKIT_BUNDLE") or None
        return LocalNode(self.node, image=config.require("image"), bundle=bundle).hosts

    def prepare_infrastructure(self, backend: Any, on_line: Any) -> None:
        from nodekit.render.uplink import uplink_gateway
        from nodekit.targets.wan import ensure_wan

        if uplink_gateway(self.node) is not None:
            ensure_wan(backend, on_line)

    def runner(self, access: RunAccess) -> Runner:
        # A peer node deployed on this machine is reached by name on the WAN.
        from nodekit.render.uplink import active
        from nodekit.targets.wan import peer_addresses

        peer = str(self.node.uplink.get("peer") or "")
        if not (active(self.node.uplink) and peer) or "." in peer:
            return Runner()
        return Runner(extra_vars={"nodekit_uplink_hosts": peer_addresses(peer)})

    def run_script(self, host: HostPlan, script: str, access: RunAccess) -> tuple[int, str]:
        proc = subprocess.run(
            ["docker", "exec", "-i", host.container, "sh", "-s"],
            input=script, capture_output=True, text=True, check=False, timeout=120,
        )  # fmt: skip
        return proc.returncode, proc.stdout

    def infrastructure_digest(self) -> str | None:
        """The node's containers and networks as the engine has them: which exist,
        running or not, from which image, on which networks at which addresses."""
        import docker

        from nodekit.pulumi.docker_provider import NODE_LABEL

        label = f"{NODE_LABEL}={self.node.name}"
        try:
            client = docker.from_env(timeout=60)
            containers = client.api.containers(all=True, filters={"label": label})
            networks = client.api.networks(filters={"label": label})
        except docker.errors.DockerException:
            return None
        seen = {
            "containers": sorted(
                [c["Names"][0], c["State"], c["ImageID"], _addresses(c)] for c in containers
            ),
            "networks": sorted(
                [n["Name"], [c.get("Subnet") for c in (n.get("IPAM") or {}).get("Config") or []]]
                for n in networks
            ),
        }
        return hashlib.sha256(json.dumps(seen, sort_keys=True).encode()).hexdigest()

    def equip(self, secrets: dict[str, str]) -> int:
        from nodekit.targets.twins import push_secrets

        return push_secrets(self.node, secrets)

    def preflight(self, access: RunAccess) -> list[PreflightProblem]:
        from nodekit.toolchain.doctor import check_docker

        engine = check_docker()
        if engine.ok:
            return []
        return [PreflightProblem("(this machine)", "docker engine", engine.detail, engine.fix)]

    def outage(self) -> PreflightProblem | None:
        from nodekit.toolchain.doctor import check_docker

        if check_docker().ok:
            return None
        engine = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
        return PreflightProblem(
            "(this machine)",
            "the Docker engine",
            f"at {engine} stopped answering during the run",
            "start the engine again (make setup, nodekit/toolchain/setup-docker.sh or "
            "`systemctl start docker`), then run `nodekit deploy` again: the node's "
            "containers are still there, and it repeats only what is not done",
        )

    def remove_leftovers(self, keep: set[str] | None = None) -> int:
        import docker

        from nodekit.pulumi.docker_provider import NODE_LABEL

        client = docker.from_env(timeout=60)
        label = f"{NODE_LABEL}={self.node.name}"
        count = 0
        keep = keep or set()
        for container in client.containers.list(
            all=True, filters={"label": label}, ignore_removed=True
        ):
            if container.id not in keep:
                try:
                    container.remove(force=True, v=True)
                except docker.errors.NotFound:
                    continue  # gone while we looked: nothing left to remove
                count += 1
        for network in client.networks.list(filters={"label": label}):
            if network.id not in keep:
                network.remove()
                count += 1
        return count

    def destroy_note(self) -> str:
        return "containers and networks removed"


def _addresses(container: dict[str, Any]) -> list[tuple[str, str]]:
    """(network, fixed IPv4 address) of each network a container is on."""
    networks = (container.get("NetworkSettings") or {}).get("Networks") or {}
    return sorted(
        (name, (net.get("IPAMConfig") or {}).get("IPv4Address") or "")
        for name, net in networks.items()
    )
