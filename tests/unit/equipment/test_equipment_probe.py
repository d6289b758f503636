"""The probe verify runs: exit codes and the one line it prints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from equipment_helpers import RunningTwin, start_twin

from nodekit.equipment.probe import main

REPO = Path(__file__).resolve().parents[3]
KEY = "probe-key"


@pytest.fixture
def octo(tmp_path: Path) -> Iterator[RunningTwin]:
    twin = start_twin(
        tmp_path, "octoprint", "printer", "octo-01", secrets={"octo-01": {"api_key": KEY}}
    )
    yield twin
    twin.thread.stop()


def write_config(tmp_path: Path, twin: RunningTwin, secrets: dict[str, object]) -> Path:
    secrets_file = tmp_path / "probe-secrets.json"
    secrets_file.write_text(json.dumps(secrets))
    mqtt_dev = {"name": "env-01", "kind": "sensor", "protocol": "mqtt", "address": "10.0.0.9"}
    config = {"equipment": [twin.equipment, mqtt_dev], "secrets_file": str(secrets_file)}
    path = tmp_path / "probe.json"
    path.write_text(json.dumps(config))
    return path


def test_probe_answers_one_json_line(
    tmp_path: Path, octo: RunningTwin, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, octo, {"octo-01": {"api_key": KEY}})
    assert main(["--config", str(config), "--name", "octo-01"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    answer = json.loads(out[0])
    assert answer["equipment"] == "octo-01" and answer["protocol"] == "octoprint"
    assert answer["state"] == "printing" and "extruder_temp" in answer["metrics"]


def test_probe_failure_is_one_line_on_stderr(
    tmp_path: Path, octo: RunningTwin, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, octo, {"octo-01": {"api_key": "stale"}})
    assert main(["--config", str(config), "--name", "octo-01"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    port = octo.thread.port
    assert (
        captured.err
        == f"octo-01 (octoprint at 127.0.0.1:{port}): API key refused (HTTP 403 on /api/printer)\n"
    )
    assert "stale" not in captured.err  # never the secret


def test_probe_mqtt_device_and_unknown_name(
    tmp_path: Path, octo: RunningTwin, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, octo, {})
    assert main(["--config", str(config), "--name", "env-01"]) == 0
    assert json.loads(capsys.readouterr().out)["state"] == "publishes"
    assert main(["--config", str(config), "--name", "nope"]) == 2
    assert "nope: no such equipment" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    assert main(["--config", str(bad), "--name", "octo-01"]) == 2


def test_probe_runs_as_a_module(tmp_path: Path, octo: RunningTwin) -> None:
    config = write_config(tmp_path, octo, {"octo-01": {"api_key": KEY}})
    octo.set_state("offline")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    args = ["--config", str(config), "--name", "octo-01", "--timeout", "1"]
    proc = subprocess.run(
        [sys.executable, "-m", "nodekit.equipment.probe", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 1
    assert (
        proc.stderr.startswith("octo-01 (octoprint at 127.0.0.1:") and proc.stderr.count("\n") == 1
    )
