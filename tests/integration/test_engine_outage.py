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

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from _faults_support import HOST, Env, result_of, started

from nodekit.pulumi.docker_provider import NODE_LABEL
from nodekit.toolchain import node_image_ref

pytestmark = pytest.mark.integration

NODE = "nktest-fault-eng"
CONTAINER = f"nk-{NODE}-{HOST}"


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


def test_engine_stopped_during_configure(engine: Engine, tmp_path: Path) -> None:
    env = Env(tmp_path, NODE, "10.214.9", DOCKER_HOST=engine.host)
    label = f"{NODE_LABEL}={NODE}"
    code, first, _ = env.deploy()
    assert code == 0 and first["ok"], first.get("error")
    try:
        before = len(env.runs())
        proc = env.start(*env.deploy_args("--full"))
        env.wait_for(before, started("configure"), proc)
        time.sleep(3)  # Ansible is at work on the host
        engine.stop()
        out, err = proc.communicate(timeout=600)
        failed = result_of(out, err)
        assert proc.returncode == 1, failed
        assert failed["failed_stage"] == "configure", failed
        assert failed["failed_host"] == HOST, failed
        error = failed["error"]
        assert error.startswith(f"{NODE}/{HOST}: configure failed: the Docker engine"), error
        assert f"at {engine.host} stopped answering" in error, error
        assert "start the engine again" in failed["fix"], failed["fix"]
        assert (env.state / "nodes" / NODE / "deployed.json").is_file()  # the record is kept

        engine.start()
        code, again, _ = env.deploy()
        assert code == 0 and again["ok"], again.get("error")
        assert [s["stage"] for s in again["stages"]][-2:] == ["verify", "record"]
        containers = engine.client().containers.list(
            all=True, filters={"label": label}, ignore_removed=True
        )
        assert [c.name for c in containers] == [CONTAINER]
    finally:
        if engine.proc is not None and engine.proc.poll() is None:
            env.destroy()
            client = engine.client()
            assert not client.containers.list(
                all=True, filters={"label": label}, ignore_removed=True
            )
            assert not client.networks.list(filters={"label": label})
