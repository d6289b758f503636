"""The Docker engine stopped in the middle of a deploy (local target).

The test runs an engine of its own (its own socket, data and exec folders, no
iptables of its own), so that stopping it stops nothing else on this machine;
nodekit reaches it through ``DOCKER_HOST`` like any operator's engine. The node
is deployed, then the engine is stopped while Ansible configures the host: the
run ends with exit 1 naming node, host and stage, blaming the engine with the
fix; the engine comes back and the next deploy converges; destroy leaves
nothing behind on that engine.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from nodekit.pulumi.docker_provider import NODE_LABEL
from nodekit.render import PROJECT_ROOT
from nodekit.toolchain import node_image_ref

pytestmark = pytest.mark.integration

NODE = "nktest-fault-eng"
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
      cidr: 10.214.9.0/24
compute:
  - name: {HOST}
    role: edge
    zone: ot
    address: 10.214.9.10
software:
  - name: exporter
    package: node-exporter
    host: {HOST}
"""


class Engine:
    """A dockerd of the test's own: started, stopped and started again at will."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.host = f"unix://{root}/docker.sock"
        self.proc: subprocess.Popen[bytes] | None = None
        (root / "daemon.json").write_text("{}\n")

    def start(self) -> None:
        log = (self.root / "dockerd.log").open("ab")
        self.proc = subprocess.Popen(
            [
                "dockerd", "--host", self.host, "--config-file", str(self.root / "daemon.json"),
                "--data-root", str(self.root / "data"), "--exec-root", str(self.root / "exec"),
                "--pidfile", str(self.root / "dockerd.pid"), "--bridge", "none",
                "--iptables=false", "--ip-masq=false", "--cgroup-parent", "nktest-engine",
            ],
            stdout=log, stderr=log, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self._answers():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.3)
        pytest.fail(f"the test's dockerd did not start: {self.log_tail()}")

    def _answers(self) -> bool:
        try:
            return bool(self.client(timeout=2).ping())
        except docker.errors.DockerException:
            return False

    def stop(self) -> None:
        """As an operator's `systemctl stop docker`: SIGTERM, the containers stop."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=90)

    def client(self, timeout: int = 60) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.host, timeout=timeout)

    def log_tail(self) -> str:
        return (self.root / "dockerd.log").read_text(errors="replace")[-2000:]


@pytest.fixture(scope="module")
def engine(docker_client: docker.DockerClient) -> Iterator[Engine]:
    root = Path(tempfile.mkdtemp(prefix="nkeng-", dir="/var/tmp"))
    own = Engine(root)
    own.start()
    image = node_image_ref()
    save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
    load = subprocess.run(
        ["docker", "load"], stdin=save.stdout, capture_output=True, text=True, check=False,
        env={**os.environ, "DOCKER_HOST": own.host},
    )  # fmt: skip
    assert save.wait() == 0 and load.returncode == 0, load.stderr
    try:
        yield own
    finally:
        if own.proc is not None and own.proc.poll() is None:
            own.stop()
        shutil.rmtree(root, ignore_errors=True)


def nodekit(engine: Engine, state: Path, *args: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "DOCKER_HOST": engine.host,
        "NODEKIT_STATE": str(state),
        "PYTHONPATH": str(PROJECT_ROOT),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "nodekit.cli.main", *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def result_of(proc: subprocess.Popen[str], timeout: float = 600) -> tuple[int, dict[str, Any]]:
    out, err = proc.communicate(timeout=timeout)
    try:
        document = json.loads(out)
    except ValueError:
        pytest.fail(f"no JSON result: stdout={out!r} stderr={err[-3000:]!r}")
    nodes = document.get("nodes", [document])
    return proc.returncode, nodes[0]


def configure_started(state: Path, before: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        runs = sorted((state / "nodes" / NODE / "runs").glob("*/events.jsonl"))
        if len(runs) > before:
            for line in runs[-1].read_text().splitlines():
                if '"stage": "configure"' in line and '"kind": "start"' in line:
                    return
        assert proc.poll() is None, "nodekit ended before configure started"
        time.sleep(0.1)
    pytest.fail("configure did not start")


def test_engine_stopped_during_configure(engine: Engine, tmp_path: Path) -> None:
    state = tmp_path / "state"
    blueprint = tmp_path / f"{NODE}.yaml"
    blueprint.write_text(BLUEPRINT)
    deploy = ("deploy", str(blueprint), "--yes", "--format", "json")
    label = f"{NODE_LABEL}={NODE}"
    code, first = result_of(nodekit(engine, state, *deploy))
    assert code == 0 and first["ok"], first.get("error")
    try:
        before = len(list((state / "nodes" / NODE / "runs").glob("*/events.jsonl")))
        proc = nodekit(engine, state, *deploy, "--full")
        configure_started(state, before, proc)
        time.sleep(3)  # Ansible is at work on the host
        engine.stop()
        code, failed = result_of(proc)
        assert code == 1, failed
        assert failed["failed_stage"] == "configure", failed
        assert failed["failed_host"] == HOST, failed
        error = failed["error"]
        assert error.startswith(f"{NODE}/{HOST}: configure failed: the Docker engine"), error
        assert f"at {engine.host} stopped answering" in error, error
        assert "start the engine again" in failed["fix"], failed["fix"]
        assert (state / "nodes" / NODE / "deployed.json").is_file()  # the record is kept

        engine.start()
        code, again = result_of(nodekit(engine, state, *deploy))
        assert code == 0 and again["ok"], again.get("error")
        assert [s["stage"] for s in again["stages"]][-2:] == ["verify", "record"]
        containers = engine.client().containers.list(all=True, filters={"label": label})
        assert [c.name for c in containers] == [CONTAINER]
    finally:
        if engine.proc is not None and engine.proc.poll() is None:
            gone = nodekit(engine, state, "destroy", str(blueprint), "--yes")
            out, err = gone.communicate(timeout=600)
            assert gone.returncode == 0, out + err
            client = engine.client()
            assert not client.containers.list(all=True, filters={"label": label})
            assert not client.networks.list(filters={"label": label})
