"""Smoke test of the real Pulumi engine with nodekit's dynamic Docker provider.

A real engine (built from Go modules by `make setup`), the Automation API,
the local file backend, a real container: create, change by hand, refresh
sees the change, up repairs it, destroy removes everything.
"""

from __future__ import annotations

from pathlib import Path

import docker
import pytest
from docker.errors import NotFound

from nodekit.run.pulumi_stack import PulumiStack

pytestmark = pytest.mark.integration

PROGRAM = """\
import pulumi
from nodekit.pulumi.docker_provider import Container, Network

net = Network("zone", name="nktest-net-{u}", subnet="10.197.{b}.0/24",
              gateway="10.197.{b}.254", labels={{"io.nodekit.node": "smoke-{u}"}})
host = Container("host", name="nktest-host-{u}", image="{image}", hostname="smoke",
                 networks=[{{"network": net.name, "address": "10.197.{b}.10"}}],
                 memory_mb=256, cpus=1, labels={{"io.nodekit.node": "smoke-{u}"}})
pulumi.export("container_id", host.container_id)
"""


def test_create_refresh_repair_destroy(
    tmp_path: Path, docker_client: docker.DockerClient, node_image: str, unique: str
) -> None:
    program = tmp_path / "program"
    program.mkdir()
    (program / "Pulumi.yaml").write_text("name: smoke\nruntime: python\n")
    third_octet = int(unique[:2], 16)  # a different subnet per run
    (program / "__main__.py").write_text(PROGRAM.format(u=unique, b=third_octet, image=node_image))
    stack = PulumiStack(program, "smoke", state_dir=tmp_path / "state")
    try:
        up = stack.up()
        assert up.summary.get("create") == 3  # stack, network, container
        container = docker_client.containers.get(up.outputs["container_id"])
        assert container.attrs["State"]["Running"]
        state = container.exec_run(["systemctl", "is-system-running"]).output.decode().strip()
        assert state in ("running", "degraded")
        # No route off this machine: a name Docker's resolver does not know is
        # refused (getent: 2) in about a second, not after glibc's 2 x 5 s (124).
        lookup = container.exec_run(["timeout", "5", "getent", "ahosts", "no-such-hub"])
        assert lookup.exit_code == 2, lookup
        # Its own SSH host keys, made at first boot (ed25519, ECDSA), and sshd up.
        for kind in ("ed25519", "ecdsa"):
            key = container.exec_run(["ssh-keygen", "-lf", f"/etc/ssh/ssh_host_{kind}_key.pub"])
            assert key.exit_code == 0, key
        sshd = container.exec_run(["systemctl", "is-active", "ssh"])
        assert sshd.output.decode().strip() == "active", sshd

        # Nothing changed: a preview plans nothing.
        assert stack.preview().changed == 0

        # Changed by hand (stopped, limits changed): refresh records it and the
        # next preview plans a repair, which up carries out.
        container.update(mem_limit="128m", memswap_limit=-1, cpu_quota=50_000)
        container.stop(timeout=5)
        refreshed = stack.refresh()
        assert refreshed.summary.get("update") == 1
        assert stack.preview().summary.get("update") == 1
        repaired = stack.up()
        assert repaired.summary.get("update") == 1
        container.reload()
        assert container.attrs["State"]["Running"]
        host = container.attrs["HostConfig"]
        assert host["Memory"] == 256 * 1024 * 1024
        assert host["CpuQuota"] == 100_000 and host["CpuPeriod"] == 100_000
        assert stack.preview().changed == 0

        stack.destroy()
        with pytest.raises(NotFound):
            docker_client.containers.get(f"nktest-host-{unique}")
        with pytest.raises(NotFound):
            docker_client.networks.get(f"nktest-net-{unique}")
        # The secrets passphrase never lands in the program or the state's plain files.
        passphrase = (tmp_path / "state" / "passphrase").read_text().strip()
        for path in (tmp_path / "state" / "backend").rglob("*.json"):
            assert passphrase not in path.read_text()
    finally:
        for c in docker_client.containers.list(
            all=True, filters={"name": f"nktest-host-{unique}"}, ignore_removed=True
        ):
            c.remove(force=True)
        for n in docker_client.networks.list(names=[f"nktest-net-{unique}"]):
            n.remove()
