"""nodekit status, the engine: history-derived fields, the hub, the telemetry column.

Run records are made by the real run machinery (``operate``, the local
backend) in a temporary NODEKIT_STATE. The hub's database is a fake query
function here; the real end-to-end check (a deployed hub answering through
``docker exec``) is added by the integration test of the hub issue.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nodekit.backends import backend_for
from nodekit.blueprint import load
from nodekit.errors import VerifyFailed
from nodekit.render import PROJECT_ROOT
from nodekit.render.plan import HostPlan, plan
from nodekit.run.operation import Run, operate
from nodekit.run.status import (
    LIVE_SQL,
    NEWEST_SQL,
    Fleet,
    IngestAnswer,
    NodeStatus,
    node_sql,
    node_status,
    psql_command,
    query_ingest,
)
from nodekit.targets import Target, target_for

BLUEPRINTS = PROJECT_ROOT / "blueprints"
T1 = "1717171717"  # 2024-05-31T16:08:37Z
T1_ISO = "2024-05-31T16:08:37Z"
PLACES = """
network:
  zones:
    - {{name: ot, cidr: 10.{n}.1.0/24}}
    - {{name: it, cidr: 10.{n}.2.0/24}}
compute:
  - name: gw-01
    address: 10.{n}.2.1
    interfaces: [{{zone: ot, address: 10.{n}.1.1}}]
  - {{name: edge-01, address: 10.{n}.1.10}}
  - {{name: hist-01, address: 10.{n}.2.10}}
equipment:
  - {{name: printer-01, address: 10.{n}.1.101}}
  - {{name: printer-02, address: 10.{n}.1.102}}
"""


def write_node(path: Path, name: str, n: int, peer: str | None) -> Path:
    """A Node of the additive cell; ``peer`` its uplink peer (a hub's name); the
    hub and its sites are labelled region: eu-west."""
    uplink = f"  uplink: {{type: vpn, peer: {peer}}}\n" if peer else ""
    region = "eu-west" if peer is None or "hub" in peer else "elsewhere"
    text = (
        "apiVersion: nodekit/v1\nkind: Node\n"
        f"metadata: {{name: {name}, labels: {{region: {region}}}}}\n"
        f"extends: [{BLUEPRINTS / 'bases' / 'additive-cell.yaml'}]\n"
        "site: {region: eu-west, timezone: Europe/Paris}\n"
        + PLACES.format(n=n).replace("network:\n", "network:\n" + uplink, 1)
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """fleet/hubs/eu-west-hub.yaml, fleet/sites/{lyon,porto}.yaml naming it; own state."""
    monkeypatch.setenv("NODEKIT_STATE", str(tmp_path / "state"))
    monkeypatch.delenv("NODEKIT_BACKEND", raising=False)
    root = tmp_path / "fleet"
    write_node(root / "hubs" / "eu-west-hub.yaml", "eu-west-hub", 90, None)
    write_node(root / "sites" / "lyon.yaml", "lyon", 41, "eu-west-hub")
    write_node(root / "sites" / "porto.yaml", "porto", 42, "eu-west-hub")
    write_node(root / "sites" / "solo.yaml", "solo", 43, "vpn.example.internal")
    yield root


def record(node: str, command: str, *, verify: bool | None = None) -> str:
    """A run recorded the way every command records one; its id.

    ``verify``: the run had a verify stage that passed (True) or failed (False).
    """

    def body(run: Run) -> None:
        with run.stage("render"):
            pass
        if verify is not None:
            with run.stage("verify"):
                if not verify:
                    raise VerifyFailed(node=node, failures=["hist-01: broker-listening"])

    return operate(node, command, None, None, body).run_dir.name


class FakeHub:
    """Stands in for the hub's ingest database: answers by query, remembers calls."""

    def __init__(self, answers: dict[str, IngestAnswer]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, str, str, str]] = []

    def __call__(self, target: Target, host: HostPlan, database: str, sql: str) -> IngestAnswer:
        self.calls.append((target.name, host.name, database, sql))
        return self.answers.get(sql, IngestAnswer())


def statuses(paths: list[Path], query: Any) -> dict[str, NodeStatus]:
    given = [load(p) for p in paths]
    found = node_status(
        given, backend=backend_for(), fleet=Fleet(given, Fleet.roots_of(paths)), query=query
    )
    return {s.node: s for s in found}


def test_last_run_and_last_verify_come_from_the_run_history(fleet: Path) -> None:
    # Made in this order on purpose: runs of one second are ordered by id, and
    # deploy < plan < verify, so the order holds whether the clock ticks or not.
    sites = [fleet / "sites" / "lyon.yaml", fleet / "sites" / "porto.yaml"]
    deployed = record("lyon", "deploy", verify=True)
    planned = record("lyon", "plan")  # newest, without a verify stage: not the last verify
    lyon = statuses(sites, FakeHub({}))["lyon"]
    assert lyon.last_run is not None and lyon.last_run.id == planned
    assert (lyon.last_run.command, lyon.status) == ("plan", "ok")
    assert lyon.verify is not None and (lyon.verify.run, lyon.verify.passed) == (deployed, True)
    checked = record("lyon", "verify", verify=False)
    found = statuses(sites, FakeHub({}))
    lyon = found["lyon"]
    assert lyon.status == "failed"
    assert lyon.verify is not None and (lyon.verify.run, lyon.verify.passed) == (checked, False)
    assert lyon.verify.finished and lyon.verify.finished.endswith("Z")
    porto = found["porto"]
    assert (porto.status, porto.last_run, porto.verify) == ("never", None, None)


def test_the_hub_is_found_by_uplink_peer_in_the_folders_around_the_sites(fleet: Path) -> None:
    record("eu-west-hub", "deploy", verify=True)
    hub = FakeHub({node_sql("lyon"): IngestAnswer(rows=((T1,),))})
    lyon = statuses([fleet / "sites" / "lyon.yaml"], hub)["lyon"]  # the hub file not given
    assert (lyon.hub, lyon.last_telemetry, lyon.telemetry_note) == ("eu-west-hub", T1_ISO, None)
    # asked through the hub's target, on its ingest's host, in the ingest's database
    assert hub.calls == [("local", "hist-01", "historian", node_sql("lyon"))]
    assert "lyon" not in node_sql("lyon")  # spelled without quotes: chr(108)||...


def test_hub_problems_are_said_per_node_and_never_raised(fleet: Path) -> None:
    sites = [fleet / "sites" / "lyon.yaml", fleet / "sites" / "solo.yaml"]
    found = statuses(sites, FakeHub({}))
    assert found["lyon"].telemetry_note == "hub eu-west-hub: not deployed"
    assert found["solo"].hub is None
    assert found["solo"].telemetry_note == (
        "uplink peer vpn.example.internal is not a node of the fleet"
    )
    record("eu-west-hub", "deploy", verify=True)
    down = FakeHub({node_sql("lyon"): IngestAnswer(problem="unreachable (no answer in 20 s)")})
    lyon = statuses(sites, down)["lyon"]
    assert lyon.telemetry_note == "hub eu-west-hub: unreachable (no answer in 20 s)"
    assert lyon.last_telemetry is None
    silent = statuses(sites, FakeHub({node_sql("lyon"): IngestAnswer(rows=(("",),))}))["lyon"]
    assert silent.telemetry_note == "hub eu-west-hub: no telemetry of lyon yet"
    record("eu-west-hub", "destroy")  # destroyed after its deploy: not deployed again
    assert statuses(sites, down)["lyon"].telemetry_note == "hub eu-west-hub: not deployed"


def test_a_hub_missing_from_the_fleet_is_named(tmp_path: Path, fleet: Path) -> None:
    lone = write_node(tmp_path / "elsewhere" / "x" / "lone.yaml", "lone", 44, "us-east-hub")
    found = statuses([lone], FakeHub({}))["lone"]
    assert (found.hub, found.telemetry_note) == (
        "us-east-hub",
        "hub us-east-hub: not found among the blueprints",
    )


def test_a_hub_shows_its_newest_telemetry_and_the_sites_of_the_last_minute(fleet: Path) -> None:
    record("eu-west-hub", "deploy", verify=True)
    hub = FakeHub(
        {
            NEWEST_SQL: IngestAnswer(rows=((T1,),)),
            LIVE_SQL: IngestAnswer(rows=(("lyon", T1), ("porto", "1717171700"))),
        }
    )
    found = statuses([fleet / "hubs" / "eu-west-hub.yaml"], hub)["eu-west-hub"]
    assert found.is_hub and found.hub == "eu-west-hub" and found.last_telemetry == T1_ISO
    assert [(s.node, s.last_telemetry) for s in found.sites] == [
        ("lyon", T1_ISO),
        ("porto", "2024-05-31T16:08:20Z"),
    ]
    data = found.to_dict()
    assert data["sites"] == [
        {"node": "lyon", "last_telemetry": T1_ISO},
        {"node": "porto", "last_telemetry": "2024-05-31T16:08:20Z"},
    ]


def test_json_shape(fleet: Path) -> None:
    run = record("lyon", "deploy", verify=True)
    found = statuses([fleet / "sites" / "lyon.yaml"], FakeHub({}))["lyon"].to_dict()
    keys = "node status last_run verify hub last_telemetry telemetry_note"
    assert set(found) == set(keys.split())  # no "sites": that is for hubs
    assert found["status"] == "ok"
    assert set(found["last_run"]) == {"id", "command", "status", "started", "finished"}
    assert found["last_run"]["id"] == run
    finished = found["last_run"]["finished"]
    assert found["verify"] == {"run": run, "passed": True, "finished": finished}


def test_a_query_that_raises_is_reported_for_that_node_only(fleet: Path) -> None:
    record("eu-west-hub", "deploy")

    def broken(target: Target, host: HostPlan, database: str, sql: str) -> IngestAnswer:
        raise RuntimeError("boom")

    found = statuses([fleet / "sites" / "lyon.yaml", fleet / "sites" / "solo.yaml"], broken)
    assert found["lyon"].telemetry_note == "telemetry unknown: RuntimeError: boom"
    assert found["solo"].telemetry_note is not None and "not a node" in found["solo"].telemetry_note


# -- the query itself, through each target's shell line ---------------------------


def _done(line: str, code: int = 0, out: str = "", err: str = "") -> Any:
    return subprocess.CompletedProcess(line, code, out, err)


def test_query_ingest_runs_psql_as_postgres_through_the_target() -> None:
    node = plan(load(BLUEPRINTS / "sites" / "lyon-additive-01.yaml").data)
    target, host = target_for(node), node.host("hist-01")
    seen: list[tuple[str, float]] = []

    def shell(line: str, timeout_s: float) -> Any:
        seen.append((line, timeout_s))
        return _done(line, out=f"{T1}.25\n")

    answer = query_ingest(target, host, "historian", node_sql("lyon"), shell=shell)
    assert answer == IngestAnswer(rows=((f"{T1}.25",),))
    line, timeout = seen[0]
    assert timeout == 20
    words = shlex.split(line)  # one shell: docker exec passes the words on as they are
    assert words[:3] == ["docker", "exec", host.container]
    assert words[3:] == ["runuser", "-u", "postgres", "--", "psql", "-d", "historian", "-AtX",
                         "-c", node_sql("lyon")]  # fmt: skip


def test_the_sql_survives_the_two_shells_of_ssh() -> None:
    node = plan(load(BLUEPRINTS / "sites" / "bremen-additive-01-ssh.yaml").data)
    target = target_for(node)
    line = target.host_command(node.hosts[0], psql_command("historian", LIVE_SQL))
    remote = shlex.split(line)[-1]  # what ssh hands the host's shell
    assert shlex.split(remote)[-1] == LIVE_SQL
    with pytest.raises(ValueError, match="not safe"):
        psql_command("historian", "SELECT 'x'")


def test_query_failures_become_answers_with_a_reason() -> None:
    node = plan(load(BLUEPRINTS / "sites" / "lyon-additive-01.yaml").data)
    target, host = target_for(node), node.host("hist-01")

    def refused(line: str, timeout_s: float) -> Any:
        return _done(line, 1, err="Error response from daemon: No such container: x\n")

    def hangs(line: str, timeout_s: float) -> Any:
        raise subprocess.TimeoutExpired(line, timeout_s)

    assert query_ingest(target, host, "h", NEWEST_SQL, shell=refused).problem == (
        "query failed: Error response from daemon: No such container: x"
    )
    assert query_ingest(target, host, "h", NEWEST_SQL, shell=hangs).problem == (
        "unreachable (no answer in 20 s)"
    )


# -- the command ------------------------------------------------------------------


@pytest.fixture
def fake_hub(monkeypatch: pytest.MonkeyPatch) -> FakeHub:
    """The command, with the hub's database answering from a FakeHub."""
    import functools

    hub = FakeHub({})
    monkeypatch.setattr("nodekit.cli.status.node_status", functools.partial(node_status, query=hub))
    return hub


def test_the_command_prints_a_table(
    fleet: Path, fake_hub: FakeHub, capsys: pytest.CaptureFixture[str]
) -> None:
    from nodekit.cli.main import main

    record("eu-west-hub", "deploy", verify=True)
    run = record("lyon", "deploy", verify=True)
    fake_hub.answers[node_sql("lyon")] = IngestAnswer(rows=((f"{time.time() - 12:.3f}",),))
    assert main(["status", str(fleet / "sites"), "--selector", "region=eu-west"]) == 0
    text = capsys.readouterr().out
    for column in ("NODE", "LAST RUN", "STATUS", "VERIFIED", "HUB", "LAST TELEMETRY"):
        assert column in text
    rows = {line.split("│")[1].strip(): line for line in text.splitlines() if "│" in line}
    assert set(rows) == {"lyon", "porto"}  # solo is not in region eu-west
    cells = [c.strip() for c in rows["lyon"].split("│")[1:-1]]
    assert cells[0] == "lyon" and cells[1].startswith(f"{run} (") and cells[2] == "ok"
    assert cells[3].startswith("passed (") and cells[4] == "eu-west-hub"
    assert re.fullmatch(r"1[2-9]s ago", cells[5]), cells[5]
    assert "hub eu-west-hub: no telemetry of porto yet" in rows["porto"]
    assert "never" in rows["porto"]


def test_the_command_prints_json(
    fleet: Path, fake_hub: FakeHub, capsys: pytest.CaptureFixture[str]
) -> None:
    from nodekit.cli.main import main

    assert main(["status", str(fleet / "hubs"), str(fleet / "sites" / "lyon.yaml"),
                 "--format", "json"]) == 0  # fmt: skip
    data = json.loads(capsys.readouterr().out)
    assert [n["node"] for n in data["nodes"]] == ["eu-west-hub", "lyon"]
    hub, lyon = data["nodes"]
    assert hub["sites"] == [] and hub["telemetry_note"] == "hub eu-west-hub: not deployed"
    assert lyon["status"] == "never" and lyon["hub"] == "eu-west-hub"


def test_the_command_refuses_bad_input_with_exit_2(
    fleet: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from nodekit.cli.main import main

    assert main(["status", str(fleet / "sites"), "-l", "region=nowhere"]) == 2
    assert "no node matches region=nowhere" in capsys.readouterr().err
    (fleet / "sites" / "bad.yaml").write_text("apiVersion: nodekit/v1\nkind: Node\n")
    assert main(["status", str(fleet / "sites" / "bad.yaml")]) == 2
    assert "error" in capsys.readouterr().err
    assert main(["status", "--help"]) == 0
    assert "--selector" in capsys.readouterr().out
