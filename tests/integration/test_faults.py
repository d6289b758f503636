"""Faults in the middle of a run on the local target, as named steps on one small node:
a host container killed during configure, nodekit killed (SIGKILL) during configure
and during infrastructure, a bundle missing a package, a read-only state folder.
Each fault gives exit 1 naming node, stage (and host) with a fix, or is repaired by
the next run; every re-run converges; nothing of the node is left after destroy.

``nodekit deploy`` runs as a subprocess in its own session so it can be killed with
its whole process group (Pulumi, Ansible); the run folder's events.jsonl tells when
a stage is under way.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from nodekit.pulumi.docker_provider import NODE_LABEL
from nodekit.render import PROJECT_ROOT

pytestmark = pytest.mark.integration

NODE = "nktest-fault-a"
HOST = "edge-01"
CONTAINER = f"nk-{NODE}-{HOST}"

BLUEPRINT = f"""\
apiVersion: nodekit/v1
kind: Node
metadata:
  name: {NODE}
site:
  region: eu-west
  timezone: Europe/Lisbon
  target: local
network:
  zones:
    - name: ot
      cidr: 10.214.1.0/24
compute:
  - name: {HOST}
    role: edge
    zone: ot
    address: 10.214.1.10
software:
  - name: exporter
    package: node-exporter
    host: {HOST}
"""


class Env:
    """The node's blueprint, its own state folder and how to run nodekit on it."""

    def __init__(self, root: Path) -> None:
        self.state = root / "state"
        self.blueprint = root / f"{NODE}.yaml"
        self.blueprint.write_text(BLUEPRINT)
        self.env = {**os.environ, "NODEKIT_STATE": str(self.state), "PYTHONPATH": str(PROJECT_ROOT)}

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "nodekit.cli.main", *args]

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.command(*args),
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own process group: killed with its children
        )

    def run(self, *args: str, timeout: float = 600) -> tuple[int, str, str]:
        proc = subprocess.run(
            self.command(*args),
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return proc.returncode, proc.stdout, proc.stderr

    def deploy(self, *extra: str) -> tuple[int, dict[str, Any], str]:
        args = ("deploy", str(self.blueprint), "--yes", "--format", "json", *extra)
        code, out, err = self.run(*args)
        return code, result_of(out, err), err

    def runs(self) -> list[Path]:
        return sorted((self.state / "nodes" / NODE / "runs").glob("*/events.jsonl"))

    def wait_for(
        self, before: int, predicate: Any, proc: subprocess.Popen[str], timeout: float = 300
    ) -> dict[str, Any]:
        """The first event of the new run (after ``before`` runs) that ``predicate`` accepts."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            runs = self.runs()
            if len(runs) > before:
                for line in runs[-1].read_text().splitlines():
                    try:
                        event = json.loads(line)
                    except ValueError:
                        continue  # a line being written
                    if predicate(event):
                        return event
            if proc.poll() is not None:
                out, err = proc.communicate()
                pytest.fail(f"nodekit ended ({proc.returncode}) before the event: {out} {err}")
            time.sleep(0.1)
        pytest.fail("timed out waiting for the event")


def result_of(out: str, err: str) -> dict[str, Any]:
    try:
        document = json.loads(out)
    except ValueError:
        pytest.fail(f"no JSON result: stdout={out!r} stderr={err!r}")
    nodes = document.get("nodes", [document])
    assert len(nodes) == 1, nodes
    result: dict[str, Any] = nodes[0]
    return result


def started(stage: str) -> Any:
    return lambda e: e.get("stage") == stage and e.get("kind") == "start"


def assert_converged(env: Env, *extra: str) -> dict[str, Any]:
    code, result, err = env.deploy(*extra)
    assert code == 0, (result.get("error"), err[-2000:])
    assert result["ok"], result["error"]
    stages = [s["stage"] for s in result["stages"]]
    assert stages[-2:] == ["verify", "record"], stages
    return result


def killpg(proc: subprocess.Popen[str]) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)


@pytest.fixture(scope="module")
def env(
    tmp_path_factory: pytest.TempPathFactory, docker_client: docker.DockerClient
) -> Iterator[Env]:
    environment = Env(tmp_path_factory.mktemp("faults"))
    yield environment
    code, out, err = environment.run("destroy", str(environment.blueprint), "--yes")
    assert code == 0, out + err
    label = f"{NODE_LABEL}={NODE}"
    assert not docker_client.containers.list(all=True, filters={"label": label})
    assert not docker_client.networks.list(filters={"label": label})


def test_host_killed_during_configure(env: Env, docker_client: docker.DockerClient) -> None:
    before = len(env.runs())
    proc = env.start("deploy", str(env.blueprint), "--yes", "--format", "json")
    env.wait_for(before, started("configure"), proc)
    time.sleep(3)  # Ansible is at work on the host
    docker_client.containers.get(CONTAINER).kill()
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 1, (out, err[-2000:])
    result = result_of(out, err)
    assert not result["ok"]
    assert result["failed_stage"] == "configure", result
    assert result["failed_host"] == HOST, result
    assert NODE in result["error"] and HOST in result["error"], result["error"]
    assert result["fix"], result
    assert_converged(env)


def test_nodekit_killed_during_configure(env: Env) -> None:
    before = len(env.runs())
    proc = env.start("deploy", str(env.blueprint), "--yes", "--format", "json", "--full")
    env.wait_for(before, started("configure"), proc)
    time.sleep(2)
    killpg(proc)
    # The dead run's lock does not block the next one, which converges.
    result = assert_converged(env, "--full", "--lock-timeout", "20")
    assert (env.state / "nodes" / NODE / "deployed.json").is_file()
    assert result["node"] == NODE


def test_bundle_missing_a_package(env: Env) -> None:
    from nodekit.toolchain import cache_dir

    bundle = cache_dir() / "node-bundles" / NODE
    debs = sorted(bundle.glob("*.deb"))
    assert debs
    debs[0].unlink()
    result = assert_converged(env, "--full")
    stage = next(s for s in result["stages"] if s["stage"] == "bundle")
    assert "reused" not in str(stage.get("detail")), stage
    assert debs[0].is_file()


def test_nodekit_killed_during_infrastructure(env: Env, docker_client: docker.DockerClient) -> None:
    code, out, err = env.run("destroy", str(env.blueprint), "--yes")
    assert code == 0, out + err
    before = len(env.runs())
    proc = env.start("deploy", str(env.blueprint), "--yes", "--format", "json")
    env.wait_for(before, started("infrastructure"), proc)
    # Killed while Pulumi creates the node's container (its name appears first).
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if docker_client.containers.list(all=True, filters={"name": CONTAINER}):
            break
        time.sleep(0.05)
    killpg(proc)
    result = assert_converged(env, "--lock-timeout", "20")
    # The create the killed run began is dropped, the container it made removed; said so.
    assert any("pending Pulumi operation" in n for n in result["notes"]), result["notes"]
    containers = docker_client.containers.list(all=True, filters={"label": f"{NODE_LABEL}={NODE}"})
    assert [c.name for c in containers] == [CONTAINER]


def test_read_only_state_folder(env: Env) -> None:
    # As root, file modes stop nothing: the folder is made immutable instead.
    made = subprocess.run(
        ["chattr", "-R", "+i", str(env.state)], capture_output=True, text=True, check=False
    )
    assert made.returncode == 0, f"chattr +i does not work here: {made.stderr}"
    try:
        code, out, err = env.run("deploy", str(env.blueprint), "--yes", "--format", "json")
    finally:
        subprocess.run(["chattr", "-R", "-i", str(env.state)], check=True)
    assert code == 1, (code, out, err)
    text = out + err
    assert "Traceback" not in text and "internal error" not in text, text
    assert f"the state folder {env.state} is read-only" in text, text
    assert f"fix: make {env.state} writable" in text, text
    assert_converged(env)
