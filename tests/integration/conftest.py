"""Shared fixtures of the integration tests: real Docker, real image, cleanup.

These tests never skip: a missing engine or image is a failed setup, and
`make test` installs both before pytest runs.

`make test` runs them on two pytest-xdist workers, a test file (or a few that
share something machine-wide) per worker at a time: see tests/conftest.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import docker
import pytest

from nodekit.pulumi.docker_provider import SYSTEMD_CAPS, SYSTEMD_MOUNTS, SYSTEMD_TMPFS
from nodekit.toolchain import node_image_ref


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
