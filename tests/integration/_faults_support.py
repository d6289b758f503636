"""What the fault tests share: a one-host node of their own, nodekit run on it as
a subprocess (in its own session, so it can be killed with Pulumi and Ansible),
its JSON result, and the run folder's events telling when a stage is under way."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from nodekit.render import PROJECT_ROOT

HOST = "edge-01"


def small_node(name: str, net: str) -> str:
    """One edge host with the node exporter, in zone ot (``net``: the first three
    octets of its /24)."""
    return f"""\
apiVersion: nodekit/v1
kind: Node
metadata:
  name: {name}
site:
  region: eu-west
  timezone: Europe/Lisbon
  target: local
network:
  zones:
    - name: ot
      cidr: {net}.0/24
compute:
  - name: {HOST}
    role: edge
    zone: ot
    address: {net}.10
software:
  - name: exporter
    package: node-exporter
    host: {HOST}
"""


class Env:
    """A node's blueprint, its own state folder and how to run nodekit on it."""

    def __init__(self, root: Path, node: str, net: str, **env: str) -> None:
        self.node = node
        self.container = f"nk-{node}-{HOST}"
        self.state = root / "state"
        self.blueprint = root / f"{node}.yaml"
        self.blueprint.write_text(small_node(node, net))
        self.env = {
            **os.environ, "NODEKIT_STATE": str(self.state), "PYTHONPATH": str(PROJECT_ROOT), **env
        }  # fmt: skip

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

    def deploy_args(self, *extra: str) -> tuple[str, ...]:
        return ("deploy", str(self.blueprint), "--yes", "--format", "json", *extra)

    def deploy(self, *extra: str) -> tuple[int, dict[str, Any], str]:
        code, out, err = self.run(*self.deploy_args(*extra))
        return code, result_of(out, err), err

    def destroy(self) -> None:
        code, out, err = self.run("destroy", str(self.blueprint), "--yes")
        assert code == 0, out + err

    def runs(self) -> list[Path]:
        return sorted((self.state / "nodes" / self.node / "runs").glob("*/events.jsonl"))

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
                        event: dict[str, Any] = json.loads(line)
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
    """The one node's result in a JSON run output."""
    try:
        document = json.loads(out)
    except ValueError:
        pytest.fail(f"no JSON result: stdout={out!r} stderr={err[-3000:]!r}")
    nodes = document.get("nodes", [document])
    assert len(nodes) == 1, nodes
    result: dict[str, Any] = nodes[0]
    return result


def started(stage: str) -> Any:
    """An events.jsonl predicate: ``stage`` has started."""
    return lambda e: e.get("stage") == stage and e.get("kind") == "start"
