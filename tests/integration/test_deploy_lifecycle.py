"""The main job, for real: deploy a whole node on the local target, verify it,
break it, watch verify and drift name the fault, repair it with deploy, prove
a further deploy changes nothing, and destroy it leaving nothing behind.

Real Pulumi engine, real containers, real Ansible, real testinfra. The node
is the example additive cell under its own name and networks, so it never
collides with `make demo`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import docker
import pytest

from nodekit.blueprint import Blueprint, load
from nodekit.cli.main import main
from nodekit.pulumi.docker_provider import NODE_LABEL
from nodekit.render import PROJECT_ROOT
from nodekit.run import deploy as runs
from nodekit.run.deploy import RunOptions
from nodekit.run.lock import node_lock
from nodekit.run.state import NodeState

pytestmark = pytest.mark.integration

NODE = "nktest-lifecycle"
BLUEPRINT = f"""\
apiVersion: nodekit/v1
kind: Node
metadata:
  name: {NODE}
extends:
  - {PROJECT_ROOT}/blueprints/bases/additive-cell.yaml
  - {PROJECT_ROOT}/blueprints/overlays/eu-west.yaml
network:
  zones:
    - name: ot
      cidr: 10.211.1.0/24
    - name: it
      cidr: 10.211.2.0/24
compute:
  - name: gw-01
    address: 10.211.2.1
    interfaces:
      - zone: ot
        address: 10.211.1.1
  - name: edge-01
    address: 10.211.1.10
  - name: hist-01
    address: 10.211.2.10
equipment:
  - name: printer-01
    address: 10.211.1.101
  - name: printer-02
    address: 10.211.1.102
"""


def _leftovers(client: docker.DockerClient) -> list[str]:
    label = f"{NODE_LABEL}={NODE}"
    return [
        c.name
        for c in client.containers.list(all=True, filters={"label": label}, ignore_removed=True)
    ] + [n.name for n in client.networks.list(filters={"label": label})]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Blueprint]]:
    root = tmp_path_factory.mktemp("lifecycle")
    path = root / f"{NODE}.yaml"
    path.write_text(BLUEPRINT)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NODEKIT_STATE", str(root / "state"))
        blueprint = load(path)
        yield path, blueprint
        runs.destroy(blueprint)  # whatever happened, leave nothing behind


@contextmanager
def step(name: str) -> Iterator[None]:
    """One named step of the lifecycle: a failure says which step it was in."""
    try:
        yield
    except AssertionError as error:
        raise AssertionError(f"lifecycle step '{name}': {error}") from error


def _exec(client: docker.DockerClient, host: str, *command: str) -> tuple[int, str]:
    result = client.containers.get(f"nk-{NODE}-{host}").exec_run(list(command))
    return result.exit_code, result.output.decode(errors="replace")


def test_lifecycle(
    site: tuple[Path, Blueprint],
    docker_client: docker.DockerClient,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path, blueprint = site
    options = RunOptions(lock_timeout_s=5)

    with step("1. First deploy: every stage runs and the node verifies"):
        first = runs.deploy(blueprint, options=options)
        assert first.ok, first.error
        assert [s.stage for s in first.stages] == list(runs.STAGES)
        stage = {s.stage: s for s in first.stages}
        assert stage["infrastructure"].changed >= 5  # 2 networks, 3 containers
        assert stage["configure"].changed > 0
        assert (first.run_dir / "verify.xml").is_file()
        assert json.loads((first.run_dir / "summary.json").read_text())["ok"] is True

        # Firewall flows are enforced for real between the zone containers.
        assert _exec(docker_client, "edge-01", "nc", "-z", "-w", "3", "10.211.2.10", "1883")[0] == 0
        assert _exec(docker_client, "edge-01", "nc", "-z", "-w", "2", "10.211.2.10", "22")[0] != 0
        assert _exec(docker_client, "edge-01", "nc", "-z", "-w", "2", "10.211.2.10", "5432")[0] != 0
        # ...and no node container has a route off this machine.
        code, routes = _exec(docker_client, "edge-01", "ip", "route")
        assert code == 0 and "default" not in routes

    with step("2. Verify alone passes on the fresh node, and a plan finds nothing to do"):
        assert main(["verify", str(path), "--format", "json"]) == 0
        capsys.readouterr()
        assert main(["plan", str(path), "--format", "json"]) == 0
        (planned,) = json.loads(capsys.readouterr().out)["nodes"]
        assert planned["drift"] == []
        #    The report shows what that verify proved live: the zone matrix, the
        #    firewall as rendered, the package versions.
        report_file = path.parent / "report.html"
        assert main(["report", str(path), "-o", str(report_file)]) == 0
        html = report_file.read_text()
        assert "1883/tcp reachable" in html and "5432/tcp blocked" in html
        assert ">matches<" in html and "differs" not in html
        assert ">mosquitto<" in html and "not recorded in this run" not in html

    with step("3. A fault: a service stopped and a configuration file changed by hand"):
        _exec(docker_client, "hist-01", "systemctl", "stop", "mosquitto")
        # (the hardening drop-in nodekit manages, edited by hand)
        _exec(
            docker_client,
            "edge-01",
            "sed",
            "-i",
            "s/^PermitRootLogin no/PermitRootLogin yes/",
            "/etc/ssh/sshd_config.d/00-nodekit.conf",
        )
        # (and a firewall rule added by hand on the gateway: ot may reach PostgreSQL)
        hand_rule = "ip saddr 10.211.1.0/24 tcp dport 5432 accept"
        nft = ("nft", "insert", "rule", "inet", "nodekit", "forward", *hand_rule.split())
        assert _exec(docker_client, "gw-01", *nft)[0] == 0
        assert main(["verify", str(path)]) == 1
        report = capsys.readouterr()
        assert "hist-01: service broker" in report.out
        assert "edge-01: ssh hardened" in report.out
        assert "gw-01: firewall ruleset" in report.out and hand_rule in report.out

    with step("4. Drift names all three, and exits 1"):
        assert main(["drift", str(path), "--format", "json"]) == 1
        (drift,) = json.loads(capsys.readouterr().out)["nodes"]
        assert any(line.startswith("configure: hist-01:") for line in drift["drift"])
        assert any("hist-01: service broker" in line for line in drift["drift"])
        assert any("edge-01: ssh hardened" in line for line in drift["drift"])
        assert any(line.startswith("configure: gw-01:") for line in drift["drift"])
        assert any("gw-01: firewall ruleset" in line for line in drift["drift"])

    # The deploy after the first, with nothing changed since, compares the live node
    # with what the first left; the hand-made faults differ, so every stage runs.
    with step("5. Deploy repairs it, saying what differed"):
        repaired = runs.deploy(blueprint, options=options)
        assert repaired.ok, repaired.error
        stage = {s.stage: s for s in repaired.stages}
        assert stage["configure"].changed > 0
        assert "Ansible skipped" not in stage["configure"].detail
        assert "checks passed" in stage["verify"].detail
        assert any("hist-01: unit mosquitto was 'active" in n for n in repaired.notes)
        assert any(
            "edge-01: file /etc/ssh/sshd_config.d/00-nodekit.conf" in n for n in repaired.notes
        )
        assert any("gw-01: firewall was" in n for n in repaired.notes)
        assert hand_rule not in _exec(docker_client, "gw-01", "nft", "list", "ruleset")[1]
        assert _exec(docker_client, "hist-01", "systemctl", "is-active", "mosquitto")[0] == 0

    with step("6. A further deploy changes nothing, anywhere, and skips what it may"):
        again = runs.deploy(blueprint, options=options)
        assert again.ok, again.error
        assert {s.stage: s.changed for s in again.stages} == dict.fromkeys(runs.STAGES, 0)
        stage = {s.stage: s for s in again.stages}
        assert "Pulumi skipped" in stage["infrastructure"].detail
        assert "Ansible skipped" in stage["configure"].detail
        assert stage["verify"].detail.startswith("skipped: nothing changed since")
        assert again.notes == []
        #  --full runs every stage; the roles are idempotent: nothing changes.
        assert main(["deploy", str(path), "--yes", "--full", "--format", "json"]) == 0
        (full,) = json.loads(capsys.readouterr().out)["nodes"]
        stage_of = {s["stage"]: s for s in full["stages"]}
        assert stage_of["configure"]["detail"] == "0 tasks changed"
        assert "skipped" not in stage_of["infrastructure"]["detail"]
        assert "checks passed" in stage_of["verify"]["detail"]
        assert full["changed"] == 0
        #  A hand-edited file nodekit owns is found by the next quick deploy and repaired.
        users = "/etc/mosquitto/nodekit.users.sha256"
        _exec(docker_client, "hist-01", "sh", "-c", f"echo tampered >> {users}")
        fixed = runs.deploy(blueprint, options=options)
        assert fixed.ok, fixed.error
        assert any(f"hist-01: owned {users}" in n for n in fixed.notes), fixed.notes
        assert {s.stage: s for s in fixed.stages}["configure"].changed > 0
        assert "tampered" not in _exec(docker_client, "hist-01", "cat", users)[1]

    with step("7. A second run on the node waits for the lock, then says who holds it"):
        state = NodeState.of(NODE)
        with node_lock(state.lock_file, node=NODE, command="test holder", timeout_s=1):
            assert main(["deploy", str(path), "--yes", "--lock-timeout", "1"]) == 1
        assert "is locked by test holder" in capsys.readouterr().err

    # A failed deployment names host and stage, exits 1, keeps its state, and the
    # same deploy continues once the cause is gone.
    with step("8. a failed deploy, then the same deploy continues"):
        conf = "/etc/mosquitto/conf.d/nodekit.conf"
        _exec(docker_client, "hist-01", "sh", "-c", f"rm -f {conf} && mkdir {conf}")
        assert main(["deploy", str(path), "--yes", "--format", "json"]) == 1
        (failed,) = json.loads(capsys.readouterr().out)["nodes"]
        assert "hist-01" in failed["error"] and "configure failed" in failed["error"]
        assert [s["stage"] for s in failed["stages"]][-1] == "configure"
        assert (state.root / "deployed.json").is_file()
        _exec(docker_client, "hist-01", "rm", "-rf", conf)
        resumed = runs.deploy(blueprint, options=options)
        assert resumed.ok, resumed.error
        assert {s.stage: s for s in resumed.stages}["infrastructure"].changed == 0

    # A task whose output is hidden (no_log) fails: the run still says why, naming
    # node, host, task and stage, with every secret value removed (mosquitto_passwd
    # is swapped for one that fails quoting the clear file).
    with step("9. a no_log task fails and says why, secrets removed"):
        fake = '#!/bin/sh\necho "cannot hash: $(head -n 1 "$2")" >&2\nexit 3\n'
        tool = "/usr/bin/mosquitto_passwd"
        swap = f"mv {tool} {tool}.real && printf '{fake}' > {tool} && chmod 755 {tool}"
        _exec(docker_client, "hist-01", "sh", "-c", swap)
        _exec(docker_client, "hist-01", "rm", "/etc/mosquitto/nodekit.users.sha256")
        assert main(["deploy", str(path), "--yes", "--format", "json"]) == 1
        (hidden,) = json.loads(capsys.readouterr().out)["nodes"]
        assert hidden["error"] == (
            f"{NODE}/hist-01: configure failed: task 'Hash the passwords': "
            "non-zero return code: cannot hash: collector:********"
        )
        assert not any(value in hidden["error"] for value in state.secret_values())
        _exec(docker_client, "hist-01", "mv", f"{tool}.real", tool)
        assert runs.deploy(blueprint, options=options).ok

    # No secret value landed in a run folder or a rendered file, and none had to be
    # scrubbed from one: no run wrote a secret anywhere.
    with step("10. no secret in any run folder or rendering"):
        secrets = state.secret_values()
        assert secrets
        summaries = list((state.root / "runs").glob("*/summary.json"))
        assert len(summaries) >= 8
        for summary in summaries:
            assert json.loads(summary.read_text())["scrubbed"] == 0, summary
        for folder in (state.root / "runs", state.rendered):
            for file in folder.rglob("*"):
                if file.is_file():
                    data = file.read_bytes()
                    assert not any(s.encode() in data for s in secrets), file

    with step("11. Destroy leaves nothing, and is idempotent"):
        assert main(["destroy", str(path), "--yes"]) == 0
        assert _leftovers(docker_client) == []
        assert not state.pulumi.exists()
        assert main(["destroy", str(path), "--yes"]) == 0
