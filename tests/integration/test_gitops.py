"""GitOps for real: a fleet repository made here, its commits applied.

A real git repository with two shared bases and five one-host nodes on the
local target (real Pulumi, containers, Ansible, testinfra):
1. the first apply deploys every node, in waves (canary first);
2. a commit changing one site deploys only it, recorded with the commit;
3. a commit changing a base deploys exactly the nodes that extend it;
4. a comment-only commit deploys nothing;
5. a removed site is destroyed only with --allow-destroy;
6. a rollout whose canary fails touches no other node;
7. a failing node in the second wave stops the rollout, later waves skipped.
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from nodekit.cli.main import main
from nodekit.pulumi.docker_provider import NODE_LABEL

pytestmark = pytest.mark.integration

NODES = [f"nktest-fleet-{i}" for i in range(1, 6)]
BASE_A = """\
# The cell most sites run.
apiVersion: nodekit/v1
kind: NodeBase
site:
  region: eu-west
  timezone: UTC
  target: local
compute:
  - name: solo
    role: edge
    zone: cell
"""
BASE_B = BASE_A.replace("# The cell most sites run.", "# The other cell.")
SITE = """\
apiVersion: nodekit/v1
kind: Node
metadata:
  name: nktest-fleet-{i}
  labels:
    fleet: test
extends:
  - ../bases/{base}.yaml
network:
  zones:
    - name: cell
      cidr: 10.218.{i}.0/24
compute:
  - name: solo
    address: 10.218.{i}.10
"""
SSH_FROM_UPLINK = """\
  flows:
    - from: uplink
      to: cell
      ports: [22/tcp]
      purpose: remote support
"""
WAIVER = """\
waivers:
  - rule: ssh-from-management
    node: nktest-fleet-1
    reason: remote support until the site bastion exists
    expires: 2999-01-01
"""
BROKEN = """\
checks:
  - name: nothing-listens-here
    host: solo
    port: 9999/tcp
"""


def _site(i: int) -> str:
    return SITE.format(i=i, base="a" if i <= 3 else "b")


class Fleet:
    def __init__(self, root: Path) -> None:
        self.root = root

    def git(self, *args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(self.root), *args], capture_output=True, text=True, check=True
        ).stdout.strip()

    def write(self, rel: str, text: str) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def commit(self, message: str) -> str:
        self.git("add", "-A")
        self.git("commit", "-qm", message)
        return self.git("rev-parse", "HEAD")

    def nodekit(self, *argv: str) -> tuple[int, Any, str]:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(argv))
        text = out.getvalue()
        return code, json.loads(text) if text.strip().startswith("{") else text, err.getvalue()

    def runs(self, node: str) -> list[dict[str, Any]]:
        code, data, _ = self.nodekit("history", node, "--format", "json", "--limit", "100")
        assert code == 0
        return list(data["runs"])


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    root = tmp_path_factory.mktemp("fleet")
    repo = Fleet(root / "repo")
    repo.root.mkdir()
    repo.git("init", "-q", "-b", "main")
    repo.git("config", "user.email", "ci@example.invalid")
    repo.git("config", "user.name", "ci")
    repo.git("commit", "-q", "--allow-empty", "-m", "empty fleet")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NODEKIT_STATE", str(root / "state"))
        patch.delenv("NODEKIT_BACKEND", raising=False)
        patch.chdir(repo.root)
        yield repo
        for i in range(1, 6):  # whatever happened, leave nothing behind
            repo.write(f"blueprints/sites/n{i}.yaml", _site(i))
            repo.nodekit("destroy", f"blueprints/sites/n{i}.yaml", "--yes")


def _statuses(result: dict[str, Any]) -> dict[str, str]:
    return {n["node"]: n["status"] for n in result["nodes"]}


def test_fleet_changes_reach_exactly_their_nodes(
    fleet: Fleet, docker_client: docker.DockerClient
) -> None:
    apply = ["gitops", "apply", "blueprints/", "--yes", "--format", "json", "--parallel", "4"]

    # 1. The first commit: every node is added and deployed, canary first.
    fleet.write("blueprints/bases/a.yaml", BASE_A)
    fleet.write("blueprints/bases/b.yaml", BASE_B)
    for i in range(1, 6):
        fleet.write(f"blueprints/sites/n{i}.yaml", _site(i))
    first = fleet.commit("five nodes")
    code, result, err = fleet.nodekit(*apply, "--base", "HEAD~1", "--batch", "100%")
    assert code == 0, (result, err[-3000:])
    assert result["status"] == "completed" and result["head"] == first
    assert result["waves"] == [[NODES[0]], NODES[1:]]
    assert set(_statuses(result).values()) == {"deployed"}
    label = {"label": f"{NODE_LABEL}"}
    assert len(docker_client.containers.list(filters=label, ignore_removed=True)) >= 5

    # 2. One site changed: only it is deployed, and its run names the commit. (An
    #    uncommitted edit is not seen: revisions are read from git objects.)
    fleet.write("blueprints/sites/n2.yaml", _site(2) + "site:\n  timezone: Asia/Tokyo\n")
    code, affected, _ = fleet.nodekit(
        "affected", "--base", "HEAD", "--head", "HEAD", "--format", "json"
    )
    assert code == 0 and affected["nodes"] == []
    second = fleet.commit("n2: a second host")
    code, affected, _ = fleet.nodekit(
        "affected", "--base", "HEAD~1", "blueprints/", "--format", "json"
    )
    (change,) = affected["nodes"]
    assert change["node"] == NODES[1] and change["status"] == "changed"
    assert "site.timezone (blueprints/sites/n2.yaml:17)" in change["reasons"]
    code, result, err = fleet.nodekit(*apply, "--base", "HEAD~1")
    assert code == 0, (result, err[-3000:])
    assert _statuses(result) == {NODES[1]: "deployed"}
    assert fleet.runs(NODES[1])[0]["commit"] == second

    # 3. A base changed: exactly the nodes whose result it changes: those that
    #    extend it, but not n2, which sets its own timezone.
    fleet.write(
        "blueprints/bases/a.yaml", BASE_A.replace("timezone: UTC", "timezone: Europe/Paris")
    )
    fleet.commit("base a: Paris time")
    code, result, err = fleet.nodekit(*apply, "--base", "HEAD~1", "--batch", "100%")
    assert code == 0, (result, err[-3000:])
    assert _statuses(result) == {NODES[0]: "deployed", NODES[2]: "deployed"}

    # 4. Comments only: nothing is deployed.
    before = {n: len(fleet.runs(n)) for n in NODES}
    fleet.write(
        "blueprints/bases/b.yaml",
        "# reviewed 2026-11\n" + BASE_B.replace("zone: cell", "zone: cell  # one zone"),
    )
    fleet.commit("comments")
    code, result, _ = fleet.nodekit(*apply, "--base", "HEAD~1")
    assert code == 0 and result["nodes"] == [] and result["removed"] == []
    assert {n: len(fleet.runs(n)) for n in NODES} == before
    #    ...and every node runs what head renders (compared with its last deploy).
    code, affected, _ = fleet.nodekit("affected", "--deployed", "blueprints/", "--format", "json")
    assert code == 0 and affected["nodes"] == [] and affected["unchanged"] == 5

    # 5. A site removed: kept without --allow-destroy, destroyed with it.
    fleet.git("rm", "-q", "blueprints/sites/n5.yaml")
    fleet.commit("n5 decommissioned")
    code, result, _ = fleet.nodekit(*apply, "--base", "HEAD~1")
    assert code == 0 and result["removed"][0]["node"] == NODES[4]
    assert result["removed"][0]["status"] == "kept"
    n5 = {"label": f"{NODE_LABEL}={NODES[4]}"}
    assert docker_client.containers.list(filters=n5, ignore_removed=True)
    code, result, err = fleet.nodekit(*apply, "--base", "HEAD~1", "--allow-destroy")
    assert code == 0, (result, err[-3000:])
    assert result["removed"][0]["status"] == "destroyed"
    assert not docker_client.containers.list(all=True, filters=n5, ignore_removed=True)

    # 6. The canary fails: no other node is touched.
    fleet.write("blueprints/sites/n4.yaml", _site(4) + BROKEN)
    before = {n: len(fleet.runs(n)) for n in NODES[:3]}
    rollout = ["rollout", "--yes", "--format", "json", "--canary", "1", "--batch", "1"]
    code, result, _ = fleet.nodekit(
        *rollout, "blueprints/sites/n4.yaml", "blueprints/sites/n1.yaml", "blueprints/sites/n2.yaml"
    )
    assert code == 1 and result["status"] == "stopped"
    assert _statuses(result) == {NODES[3]: "failed", NODES[0]: "skipped", NODES[1]: "skipped"}
    assert {n: len(fleet.runs(n)) for n in NODES[:3]} == before

    # 7. A node of the second wave fails: the later waves are skipped.
    code, result, _ = fleet.nodekit(
        *rollout, "blueprints/sites/n1.yaml", "blueprints/sites/n4.yaml",
        "blueprints/sites/n2.yaml", "blueprints/sites/n3.yaml",
    )  # fmt: skip
    assert code == 1 and result["status"] == "stopped"
    assert result["waves"] == [[NODES[0]], [NODES[3]], [NODES[1]], [NODES[2]]]
    assert [(n["node"], n["wave"], n["status"]) for n in result["nodes"]] == [
        (NODES[0], 1, "deployed"), (NODES[3], 2, "failed"),
        (NODES[1], 3, "skipped"), (NODES[2], 4, "skipped"),
    ]  # fmt: skip

    # 8. A pull request's plan runs the OT security policy at head: SSH opened to
    #    the cell from the uplink fails the plan, until the policy file waives it.
    fleet.write("blueprints/sites/n4.yaml", _site(4))
    fleet.write(
        "blueprints/sites/n1.yaml", _site(1).replace("compute:", SSH_FROM_UPLINK + "compute:")
    )
    fleet.commit("n1: remote support over SSH")
    plan = ["gitops", "plan", "blueprints/", "--format", "json"]
    code, result, err = fleet.nodekit(*plan, "--base", "HEAD~1")
    assert code == 1, err[-3000:]
    assert [n["node"] for n in result["nodes"]] == [NODES[0]]
    assert result["nodes"][0]["plan"]["status"] in ("ok", "drift"), result["nodes"][0]["plan"]
    errors = [f for f in result["policy"]["findings"] if f["severity"] == "error"]
    assert [(f["rule"], f["node"], f["waived"]) for f in errors] == [
        ("ssh-from-management", NODES[0], False)
    ]
    assert errors[0]["file"].endswith("blueprints/sites/n1.yaml")
    fleet.write("blueprints/nodekit-policy.yaml", WAIVER)
    fleet.commit("waive remote support until the bastion exists")
    code, result, err = fleet.nodekit(*plan, "--base", "HEAD~2", "--format", "markdown")
    assert code == 0, err[-3000:]
    assert "#### nodekit policy check passes" in result
    assert "| `ssh-from-management` | nktest-fleet-1 |" in result  # listed as waived
