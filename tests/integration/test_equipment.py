"""Machines that do something: a node with a Moonraker printer, a Modbus PLC and
an OPC UA sensor, deployed on the local target with their twins, an edge
collector and a telemetry ingest. Verify checks each machine over its
protocol and finds fresh rows of each in the historian; a twin put offline
fails verify naming it, back to ok passes; a value outside its QC band
raises an alarm that reaches the historian.

Real Pulumi, containers, Ansible, testinfra, mosquitto and PostgreSQL.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from nodekit.blueprint import Blueprint, load
from nodekit.cli.main import main
from nodekit.run import deploy as runs
from nodekit.run.deploy import RunOptions
from nodekit.run.state import NodeState

pytestmark = pytest.mark.integration

NODE = "nktest-equipment"
BLUEPRINT = f"""\
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
    - {{name: ot, cidr: 10.219.1.0/24}}
    - {{name: it, cidr: 10.219.2.0/24}}
  flows:
    - {{from: ot, to: it, ports: [1883/tcp]}}
compute:
  - name: gw-01
    role: gateway
    zone: it
    address: 10.219.2.1
    interfaces: [{{zone: ot, address: 10.219.1.1}}]
  - {{name: edge-01, role: edge, zone: ot, address: 10.219.1.10}}
  - {{name: hist-01, role: controller, zone: it, address: 10.219.2.10}}
equipment:
  - name: printer-01
    kind: printer
    host: edge-01
    zone: ot
    address: 10.219.1.101
    protocol: moonraker
  - {{name: plc-01, kind: plc, zone: ot, address: 10.219.1.102, protocol: modbus-tcp}}
  - {{name: sensor-01, kind: sensor, zone: ot, address: 10.219.1.103, protocol: opcua}}
software:
  - {{name: broker, package: mosquitto, host: hist-01}}
  - name: historian-db
    package: postgresql
    host: hist-01
    settings: {{databases: [historian]}}
  - name: collector
    package: edge-collector
    host: edge-01
    settings: {{interval_s: 2, max: {{temperature: 30}}}}
  - {{name: ingest, package: telemetry-ingest, host: hist-01}}
"""
EQUIPMENT = ("printer-01", "plc-01", "sensor-01")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Blueprint]]:
    root = tmp_path_factory.mktemp("equipment")
    path = root / f"{NODE}.yaml"
    path.write_text(BLUEPRINT)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NODEKIT_STATE", str(root / "state"))
        blueprint = load(path)
        yield path, blueprint
        runs.destroy(blueprint)


def _sql(client: docker.DockerClient, query: str) -> list[list[str]]:
    result = client.containers.get(f"nk-{NODE}-hist-01").exec_run(
        ["runuser", "-u", "postgres", "--", "psql", "-d", "historian", "-tAF", "\t", "-c", query]
    )
    assert result.exit_code == 0, result.output.decode(errors="replace")
    lines = result.output.decode().strip().splitlines()
    return [line.split("\t") for line in lines if line]


def test_machines_checked_polled_and_in_the_historian(
    site: tuple[Path, Blueprint],
    docker_client: docker.DockerClient,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path, blueprint = site

    # 1. One deploy: twins, agents, broker, historian; verify checks each machine
    #    over its protocol and finds fresh telemetry of each.
    result = runs.deploy(blueprint, options=RunOptions(lock_timeout_s=5))
    assert result.ok, result.error
    report = (result.run_dir / "verify.xml").read_text()
    for name, checked_from in zip(EQUIPMENT, ("edge-01", "edge-01", "edge-01"), strict=True):
        assert f'name="test_equipment[{checked_from}:{name}]"' in report
        assert f'name="test_telemetry[hist-01:{name}]"' in report

    # The deploy says how to look at the rows; the command it gives works.
    (hint,) = result.next
    label, command = hint.split(": ", 1)
    assert (label, command.split()[:3]) == (
        "telemetry (ingest)",
        ["docker", "exec", f"nk-{NODE}-hist-01"],
    )
    shown = subprocess.run(command, shell=True, capture_output=True, text=True, check=True)
    assert "equipment" in shown.stdout and "(10 rows)" in shown.stdout, shown.stdout

    # 2. Rows of every machine, with values, measured within the last minute.
    rows = _sql(
        docker_client,
        "SELECT equipment, count(*), count(value) FROM telemetry "
        "WHERE time > now() - interval '1 minute' GROUP BY equipment ORDER BY equipment",
    )
    counts = {row[0]: (int(row[1]), int(row[2])) for row in rows}
    assert sorted(counts) == sorted(EQUIPMENT)
    assert all(total > 0 and numeric > 0 for total, numeric in counts.values()), counts
    metrics = {
        tuple(r) for r in _sql(docker_client, "SELECT DISTINCT equipment, metric FROM telemetry")
    }
    assert ("printer-01", "extruder_temp") in metrics
    assert ("plc-01", "cycle_count") in metrics
    assert ("sensor-01", "temperature") in metrics

    # 3. The PLC runs hotter than its QC band (max 30): an alarm was published,
    #    and the ingest stored it.
    alarms = _sql(
        docker_client,
        "SELECT equipment, metric, bound, \"limit\", value FROM alarms WHERE equipment = 'plc-01'",
    )
    assert alarms, "no alarm for plc-01"
    equipment, metric, bound, limit, value = alarms[0]
    assert (equipment, metric, bound, float(limit)) == ("plc-01", "temperature", "max", 30.0)
    assert float(value) > 30.0

    # 4. A twin stands behind the gateway's firewall like the machine: the
    #    historian's zone has no flow to the printer's port.
    hist = docker_client.containers.get(f"nk-{NODE}-hist-01")
    assert hist.exec_run(["nc", "-z", "-w", "2", "10.219.1.101", "7125"]).exit_code != 0
    edge = docker_client.containers.get(f"nk-{NODE}-edge-01")
    assert edge.exec_run(["nc", "-z", "-w", "2", "10.219.1.101", "7125"]).exit_code == 0

    # 5. A machine that stops answering fails verify, by name; back to ok passes.
    assert main(["twin", str(path), "plc-01", "--state", "offline"]) == 0
    assert main(["verify", str(path), "--format", "json"]) == 1
    (failed,) = json.loads(capsys.readouterr().out)["nodes"]
    failures = " ".join(failed["failures"])
    assert "plc-01" in failures and "printer-01" not in failures, failures
    assert main(["twin", str(path), "plc-01", "--state", "ok"]) == 0
    assert main(["verify", str(path)]) == 0
    capsys.readouterr()

    # 6. The equipment's credentials never landed in a run folder or a rendering.
    state = NodeState.of(NODE)
    secrets = state.secret_values()
    assert any(True for _ in secrets)
    for folder in (state.root / "runs", state.rendered):
        for file in folder.rglob("*"):
            if file.is_file():
                assert not any(s.encode() in file.read_bytes() for s in secrets), file


def test_twin_usage_errors(
    site: tuple[Path, Blueprint], capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = site
    assert main(["twin", str(path), "nope", "--state", "ok"]) == 2
    assert (
        "has no equipment 'nope'; known: printer-01, plc-01, sensor-01" in capsys.readouterr().err
    )
    assert main(["twin", str(path), "plc-01", "--state", "broken"]) == 2
