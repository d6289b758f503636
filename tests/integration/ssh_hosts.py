"""Test hardware for the ssh target: containers that look like freshly installed
Debian 12 machines (the baseline image: systemd, openssh-server, sudo, python3)
with a login user holding one authorized key and passwordless sudo, nothing
else. nodekit reaches them over SSH only, at the blueprint's addresses, on a
Docker network of their own with no route off this machine; it gets no access
to the Docker socket of theirs.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker

from nodekit.pulumi.docker_provider import SYSTEMD_CAPS, SYSTEMD_MOUNTS, SYSTEMD_TMPFS

SUBNET = "10.215.0.0/16"
GATEWAY = "10.215.200.1"  # this machine on that network: outside the node's zone
ZONE = "10.215.1.0/24"


@dataclass
class SshHosts:
    client: docker.DockerClient
    network: Any
    key: Path  # the operator's private key
    containers: dict[str, Any] = field(default_factory=dict)  # host name -> container

    def start(self, name: str, address: str, user: str = "nodekit") -> None:
        container = self.client.containers.run(
            _baseline_image(),
            name=f"nktest-ssh-{name}",
            hostname=name,
            detach=True,
            cap_add=SYSTEMD_CAPS,
            cgroupns="host",
            volumes=SYSTEMD_MOUNTS,
            tmpfs=SYSTEMD_TMPFS,
            stop_signal="SIGRTMIN+3",
            network=self.network.name,
            labels={"io.nodekit.test": "ssh-host"},
        )
        self.network.disconnect(container)
        self.network.connect(container, ipv4_address=address)
        self.containers[name] = container
        self.run(name, "until systemctl is-system-running --wait; do sleep 0.2; done; true")
        public = Path(f"{self.key}.pub").read_text().strip()
        # What an installer leaves: a login user with a key and sudo.
        self.run(
            name,
            f"useradd -m -s /bin/bash {user} && install -d -m 700 -o {user} -g {user} "
            f"/home/{user}/.ssh && echo '{public}' > /home/{user}/.ssh/authorized_keys && "
            f"chown {user}: /home/{user}/.ssh/authorized_keys && "
            f"echo '{user} ALL=(ALL:ALL) NOPASSWD: ALL' > /etc/sudoers.d/{user}",
        )

    def run(self, name: str, command: str) -> str:
        result = self.containers[name].exec_run(["sh", "-c", command])
        output = str(result.output.decode(errors="replace"))
        assert result.exit_code == 0, f"{name}: {command}: {output}"
        return output

    def remove(self) -> None:
        for container in self.containers.values():
            container.remove(force=True, v=True)
        self.network.remove()


def _baseline_image() -> str:
    from nodekit.toolchain import baseline_image_ref

    return baseline_image_ref()


def make_hosts(client: docker.DockerClient, scratch: Path) -> SshHosts:
    # Leftovers of a run that was killed: removed, so names and addresses are free.
    label = {"label": "io.nodekit.test=ssh-host"}
    for container in client.containers.list(all=True, filters=label, ignore_removed=True):
        container.remove(force=True, v=True)
    for stale in client.networks.list(filters=label):
        stale.remove()
    key = scratch / "id_ed25519"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "operator", "-f", str(key)],
        check=True,
    )
    ipam = docker.types.IPAMConfig(
        pool_configs=[docker.types.IPAMPool(subnet=SUBNET, gateway=GATEWAY)]
    )
    network = client.networks.create(
        "nktest-ssh-net", driver="bridge", internal=True, ipam=ipam,
        labels={"io.nodekit.test": "ssh-host"},
    )  # fmt: skip
    return SshHosts(client, network, key)


def login(hosts: SshHosts, address: str, user: str = "nodekit") -> int:
    """A fresh SSH login as the operator (host keys not checked: a test probe)."""
    return subprocess.run(
        [
            "ssh", "-i", str(hosts.key), "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            f"{user}@{address}", "true",
        ],
        capture_output=True, check=False,
    ).returncode  # fmt: skip
