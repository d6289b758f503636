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

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import docker
import pytest
from _faults_support import HOST, Env, result_of, started

from nodekit.pulumi.docker_provider import NODE_LABEL
from nodekit.run.pulumi_stack import stop_leftovers

pytestmark = pytest.mark.integration

NODE = "nktest-fault-a"
CONTAINER = f"nk-{NODE}-{HOST}"


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
    environment = Env(tmp_path_factory.mktemp("faults"), NODE, "10.214.1")
    yield environment
    environment.destroy()
    label = f"{NODE_LABEL}={NODE}"
    assert not docker_client.containers.list(
        all=True, filters={"label": label}, ignore_removed=True
    )
    assert not docker_client.networks.list(filters={"label": label})


def test_host_killed_during_configure(env: Env, docker_client: docker.DockerClient) -> None:
    before = len(env.runs())
    proc = env.start(*env.deploy_args())
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
    proc = env.start(*env.deploy_args("--full"))
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
    env.destroy()
    before = len(env.runs())
    proc = env.start(*env.deploy_args())
    env.wait_for(before, started("infrastructure"), proc)
    # Killed while Pulumi creates the node's container (its name appears first).
    # The engine's own list (no inspect of each: a container may go while we look).
    deadline = time.monotonic() + 120
    while not docker_client.api.containers(all=True, filters={"name": CONTAINER}):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "Pulumi made no container in 120 s"
        time.sleep(0.05)
    killpg(proc)
    result = assert_converged(env, "--lock-timeout", "20")
    # The create the killed run began is dropped, the container it made removed; said so.
    assert any("pending Pulumi operation" in n for n in result["notes"]), result["notes"]
    # The provider plugin Pulumi had started (its own process group: killpg missed it)
    # was stopped by the re-run; nothing works in the node's program folder now.
    assert any("Pulumi process(es) a stopped run left" in n for n in result["notes"]), result
    assert stop_leftovers(env.state / "nodes" / NODE / "program", grace_s=0) == 0
    containers = docker_client.containers.list(
        all=True, filters={"label": f"{NODE_LABEL}={NODE}"}, ignore_removed=True
    )
    assert [c.name for c in containers] == [CONTAINER]


def test_read_only_state_folder(env: Env) -> None:
    # As root, file modes stop nothing: the folder is made immutable instead.
    made = subprocess.run(
        ["chattr", "-R", "+i", str(env.state)], capture_output=True, text=True, check=False
    )
    assert made.returncode == 0, f"chattr +i does not work here: {made.stderr}"
    try:
        code, out, err = env.run(*env.deploy_args())
    finally:
        subprocess.run(["chattr", "-R", "-i", str(env.state)], check=True)
    assert code == 1, (code, out, err)
    text = out + err
    assert "Traceback" not in text and "internal error" not in text, text
    assert f"the state folder {env.state} is read-only" in text, text
    assert f"fix: make {env.state} writable" in text, text
    assert_converged(env)
