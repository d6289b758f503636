"""Shared state for real: many runners, one PostgreSQL, one truth.

Real PostgreSQL (the cluster `make backend` starts, database nodekit_test),
Pulumi's own postgres:// backend, real containers, Ansible and testinfra.
Runners are separate processes with separate NODEKIT_STATE folders, as CI
runners would be; they share nothing but the backend.

One node, deployed once, serves every assertion:
1. two runners deploy it at the same time: one waits, both succeed, the node
   is created once and the second changes nothing;
2. a third runner's drift and deploy see the same stack and secrets;
3. a runner killed with SIGKILL mid-deploy (v2) releases its lock; a stale
   Pulumi lock is cleared and said so; the re-run converges on v2;
4. plan of v1 shows the removals; a runner with no local state rolls back to
   v1: the added software is purged, the setting and the flow are back,
   verify passes, and history shows every run.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import psycopg
import pytest
from backend_support import backend_url as _backend_url

from nodekit.pulumi.docker_provider import NODE_LABEL

pytestmark = pytest.mark.integration

NODE = "nktest-shared"
KEY = "shared-state-test-key-0123456789"

V1 = f"""\
apiVersion: nodekit/v1
kind: Node
metadata:
  name: {NODE}
site:
  region: eu-west
  timezone: UTC
  target: local
network:
  zones:
    - name: ot
      cidr: 10.216.1.0/24
    - name: it
      cidr: 10.216.2.0/24
  flows:
    - from: ot
      to: it
      ports: [1883/tcp, 9090/tcp]
compute:
  - name: gw
    role: gateway
    zone: it
    address: 10.216.2.1
    interfaces:
      - zone: ot
        address: 10.216.1.1
  - name: edge
    role: edge
    zone: ot
    address: 10.216.1.10
  - name: hist
    role: controller
    zone: it
    address: 10.216.2.10
software:
  - name: broker
    package: mosquitto
    host: hist
    settings:
      users: [edge]
  - name: metrics
    package: prometheus
    host: hist
"""

# v2: a software entry added, a setting changed, a flow (9090) removed.
V2 = (
    V1.replace("ports: [1883/tcp, 9090/tcp]", "ports: [1883/tcp]").replace(
        "users: [edge]", "users: [edge, mes]"
    )
    + """\
  - name: exporter
    package: node-exporter
    host: edge
"""
)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("shared")
    url = _backend_url()
    with psycopg.connect(url, autocommit=True) as conn:  # a clean backend
        for table in ("nodekit_meta", "nodekit_locks", "nodekit_files", "nodekit_secrets",
                      "nodekit_runs", "pulumi_state"):  # fmt: skip
            conn.execute(f"DROP TABLE IF EXISTS {table}")
    (root / "v1").mkdir()
    (root / "v2").mkdir()
    (root / "v1" / f"{NODE}.yaml").write_text(V1)
    (root / "v2" / f"{NODE}.yaml").write_text(V2)
    ctx = {"root": root, "url": url, "v1": root / "v1" / f"{NODE}.yaml",
           "v2": root / "v2" / f"{NODE}.yaml"}  # fmt: skip
    yield ctx
    nodekit(ctx, "cleanup", "destroy", str(ctx["v1"]), "--yes")


def _env(ctx: dict[str, Any], runner: str) -> dict[str, str]:
    return {
        **os.environ,
        "NODEKIT_STATE": str(ctx["root"] / f"runner-{runner}"),
        "NODEKIT_BACKEND": ctx["url"],
        "NODEKIT_SECRETS_KEY": KEY,
    }


def nodekit(ctx: dict[str, Any], runner: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nodekit.cli.main", *args],
        env=_env(ctx, runner), capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip


def _json(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert done.stdout.strip(), done.stderr[-3000:]
    return dict(json.loads(done.stdout))


def _stages(node: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["stage"]: s for s in node["stages"]}


def _began(run_dir: str) -> float:
    """When the run's first stage started (after any wait for the lock)."""
    return float(next(e["at"] for e in _events(run_dir) if e["stage"] != "lock"))


def _events(run_dir: str) -> list[dict[str, Any]]:
    lines = (Path(run_dir) / "events.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def _exec(client: docker.DockerClient, host: str, *command: str) -> tuple[int, str]:
    result = client.containers.get(f"nk-{NODE}-{host}").exec_run(list(command))
    return result.exit_code, result.output.decode(errors="replace")


def test_runners_share_one_truth(
    shared: dict[str, Any], docker_client: docker.DockerClient
) -> None:
    v1, v2 = str(shared["v1"]), str(shared["v2"])
    deploy = ["deploy", "--yes", "--format", "json", "--lock-timeout", "600"]

    # 1. Two runners deploy the same node at the same time.
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-m", "nodekit.cli.main", *deploy, v1],
            env=_env(shared, name),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b")
    }
    outputs = {name: p.communicate(timeout=900) for name, p in procs.items()}
    results = {}
    for name, (stdout, stderr) in outputs.items():
        assert procs[name].returncode == 0, stderr[-3000:]
        (results[name],) = json.loads(stdout)["nodes"]
    first, second = sorted(results.values(), key=lambda r: _began(r["run_dir"]))
    # one waited, and said for whom; its first stage began after the other's last event
    waited = [e for e in _events(second["run_dir"]) if e["kind"] == "wait"]
    assert waited and "waiting for nodekit deploy (pid" in waited[0]["message"]
    assert _began(second["run_dir"]) >= _events(first["run_dir"])[-1]["at"]
    assert _stages(first)["infrastructure"]["changed"] >= 5  # 2 networks, 3 containers
    assert _stages(second)["infrastructure"]["changed"] == 0  # created once
    assert _stages(second)["configure"]["changed"] == 0  # same secrets, same settings
    label = f"{NODE_LABEL}={NODE}"
    assert len(docker_client.containers.list(filters={"label": label}, ignore_removed=True)) == 3

    # The secrets are only ciphertext in the backend.
    with psycopg.connect(shared["url"]) as conn:
        sealed = conn.execute("SELECT sealed FROM nodekit_secrets WHERE node = %s", (NODE,))
        rows = [bytes(r[0]) for r in sealed.fetchall()]
    assert rows and all(b"edge" not in r for r in rows)
    # (digests of user:password, as the broker's role keeps them)
    code, users = _exec(docker_client, "hist", "cat", "/etc/mosquitto/nodekit.users.sha256")
    assert code == 0 and users.startswith("users:edge ")

    # 2. A third runner (empty state folder) sees the same stack and secrets.
    drift = nodekit(shared, "c", "drift", v1, "--format", "json")
    assert drift.returncode == 0, drift.stdout[-3000:] + drift.stderr[-3000:]
    assert _json(drift)["nodes"][0]["drift"] == []
    again = nodekit(shared, "c", *deploy, v1)
    assert again.returncode == 0, again.stderr[-3000:]
    (node,) = _json(again)["nodes"]
    assert _stages(node)["infrastructure"]["changed"] == 0
    assert _stages(node)["configure"]["changed"] == 0

    # 3. A runner killed with SIGKILL mid-deploy of v2 releases its lock.
    killed = subprocess.Popen(
        [sys.executable, "-m", "nodekit.cli.main", *deploy, v2],
        env=_env(shared, "a"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    runs = shared["root"] / "runner-a" / "nodes" / NODE / "runs"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        newest = max(runs.glob("*-deploy"), key=lambda p: p.name)
        text = (newest / "events.jsonl").read_text() if (newest / "events.jsonl").exists() else ""
        if '"stage": "configure", "kind": "start"' in text:
            break
        time.sleep(0.5)
    time.sleep(3)  # Ansible is at work on the hosts
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait()
    # ...and say it died holding Pulumi's lock too (as it does when killed in `up`).
    with psycopg.connect(shared["url"], autocommit=True) as conn:
        db = conn.execute("SELECT current_database()").fetchone()[0]  # type: ignore[index]
        content = {"pid": killed.pid, "username": "ci", "hostname": "gone", "timestamp": "x"}
        conn.execute(
            "INSERT INTO pulumi_state (key, data) VALUES (%s, %s)",
            (f"{db}/.pulumi/locks/organization/nodekit-{NODE}/{NODE}/{uuid.uuid4()}.json",
             json.dumps({"data": base64.b64encode(json.dumps(content).encode()).decode()})),
        )  # fmt: skip
    rerun = nodekit(shared, "b", *deploy, "--lock-timeout", "30", v2)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    (node,) = _json(rerun)["nodes"]
    assert any("stale Pulumi lock" in n for n in node["notes"])
    assert (
        _exec(docker_client, "edge", "systemctl", "is-active", "prometheus-node-exporter")[0] == 0
    )
    assert _exec(docker_client, "edge", "nc", "-z", "-w", "2", "10.216.2.10", "9090")[0] != 0
    assert "mes:" in _exec(docker_client, "hist", "cat", "/etc/mosquitto/nodekit.passwd")[1]

    # 4. plan of v1 names what a return to v1 removes, before it happens.
    planned = nodekit(shared, "c", "plan", v1, "--format", "json")
    removals = [d for d in _json(planned)["nodes"][0]["drift"] if d.startswith("remove:")]
    assert removals and "edge: software exporter (node-exporter)" in removals[0]

    # ...and a runner with no local state at all rolls back to the last verified run.
    rolled = nodekit(shared, "fresh", "rollback", NODE, "--yes", "--format", "json")
    assert rolled.returncode == 0, rolled.stdout[-3000:] + rolled.stderr[-3000:]
    (node,) = _json(rolled)["nodes"]
    assert _stages(node)["verify"]["ok"] is True
    assert any("exporter" in line for line in node["removals"])
    code, _ = _exec(docker_client, "edge", "dpkg-query", "-W", "-f=${Status}",
                    "prometheus-node-exporter")  # fmt: skip
    assert code != 0 or "not-installed" in _  # purged
    assert _exec(docker_client, "edge", "nc", "-z", "-w", "2", "127.0.0.1", "9100")[0] != 0
    assert _exec(docker_client, "edge", "nc", "-z", "-w", "3", "10.216.2.10", "9090")[0] == 0
    assert "mes:" not in _exec(docker_client, "hist", "cat", "/etc/mosquitto/nodekit.passwd")[1]
    # The secrets did not change on the way: the v1 users have their v1 passwords.
    assert _exec(docker_client, "hist", "cat", "/etc/mosquitto/nodekit.users.sha256")[1] == users

    # History (from yet another runner) shows every run, the rollback marked good.
    history = nodekit(shared, "d", "history", NODE, "--format", "json")
    assert history.returncode == 0, history.stderr
    recorded = _json(history)
    commands = [r["command"] for r in recorded["runs"]]
    assert commands[0] == "rollback" and commands.count("deploy") >= 4
    assert recorded["last_verified"] == recorded["runs"][0]["id"]
    first_deploy = recorded["runs"][-1]
    assert recorded["runs"][0]["render_digest"] == first_deploy["render_digest"]
    assert recorded["runs"][0]["replays"] is not None
    fields = {"id", "command", "started", "finished", "status", "verified", "commit", "dirty",
              "blueprint_digest", "render_digest", "by", "stages"}  # fmt: skip
    assert all(fields <= run.keys() for run in recorded["runs"])
