"""Shared fixtures of the integration tests: real Docker, real image, cleanup.

These tests never skip: a missing engine or image is a failed setup, and
`make test` installs both before pytest runs.

`make test` runs them on two pytest-xdist workers (``--dist loadgroup``): each
test file is one unit of work, kept on one worker, so a module's fixtures (its
node, its lab) are made once. Files that share something machine-wide run as
one unit, one after another (see SHARED), and the longest units go first so
neither worker is left with a long tail.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import docker
import pytest

from nodekit.pulumi.docker_provider import SYSTEMD_CAPS, SYSTEMD_MOUNTS, SYSTEMD_TMPFS
from nodekit.toolchain import node_image_ref

# Files that share a machine-wide resource: the one WAN network of this machine
# (nodes with an uplink), and the test database of `make backend` (whose tables
# the tests drop).
SHARED = {
    "test_fleet_hub": "wan",
    "test_gitops": "wan",
    "test_settings_matrix": "wan",
    "test_backend_postgres": "backend",
    "test_shared_state": "backend",
}
# Units longest first (minutes in CI, one worker): the scheduler hands them out
# in this order, so the short ones fill in at the end.
LONGEST_FIRST = ("test_deploy_lifecycle", "wan", "test_ssh_target", "backend")


def _unit(item: pytest.Item) -> str:
    module = item.path.stem
    return SHARED.get(module, module)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        unit = _unit(item)
        return LONGEST_FIRST.index(unit) if unit in LONGEST_FIRST else len(LONGEST_FIRST)

    for item in items:
        if item.get_closest_marker("integration"):
            item.add_marker(pytest.mark.xdist_group(_unit(item)))
    items.sort(key=rank)  # stable: within a unit, and among the rest, file order


@pytest.fixture(scope="session")
def docker_client() -> docker.DockerClient:
    client = docker.from_env(timeout=120)
    client.ping()  # fails loudly when the engine is not running: run `make setup`
    return client


@pytest.fixture(scope="session")
def node_image(docker_client: docker.DockerClient) -> str:
    ref = node_image_ref()
    docker_client.images.get(ref)  # ImageNotFound: run `make setup`
    return ref


@pytest.fixture
def unique() -> str:
    """A short unique suffix for names of containers, networks and stacks."""
    return uuid.uuid4().hex[:8]


@pytest.fixture
def node_container(
    docker_client: docker.DockerClient, node_image: str, unique: str
) -> Iterator[Callable[..., Any]]:
    """Start systemd node containers (no network at all); removed afterwards."""
    made: list[Any] = []

    def start(name: str = "node") -> Any:
        container = docker_client.containers.run(
            node_image,
            name=f"nktest-{name}-{unique}",
            hostname=name,
            detach=True,
            cap_add=SYSTEMD_CAPS,
            cgroupns="host",
            volumes=SYSTEMD_MOUNTS,
            tmpfs=SYSTEMD_TMPFS,
            stop_signal="SIGRTMIN+3",
            network_mode="none",
            labels={"io.nodekit.test": "true"},
        )
        made.append(container)
        result = container.exec_run(
            ["sh", "-c", "until systemctl is-system-running --wait; do sleep 0.2; done"]
        )
        assert result.output.decode().split()[-1] in ("running", "degraded")
        return container

    yield start
    for container in made:
        container.remove(force=True, v=True)
