"""The scrubber, shown at work: a canary planted in the secrets store and leaked
into real tool output (an Ansible run's log, an event, an error message) is
gone from every file of the run folder when the run ends, and the run says
how many files it had to clean (a leak path to close, not to hide)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nodekit.errors import StageError
from nodekit.run.operation import Run, RunOptions, operate
from nodekit.run.state import NodeState

CANARY = "canary-Zq8vW3xYp2Lk9Rt"  # looks like a generated password


def test_a_planted_secret_leaked_by_real_output_is_scrubbed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NODEKIT_STATE", str(tmp_path / "state"))
    monkeypatch.delenv("NODEKIT_BACKEND", raising=False)
    state = NodeState.of("canary-node")
    secrets = state.ensure_secrets(("broker/edge",))
    planted = yaml.safe_load(secrets.read_text())
    planted["nodekit_secrets"]["broker/edge"] = CANARY
    secrets.write_text(yaml.safe_dump(planted))
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600

    def body(run: Run) -> None:
        # A real tool that prints the secret (as a careless task would): ansible's output.
        ansible = Path(sys.executable).with_name("ansible")
        with (run.result.run_dir / "configure.log").open("w") as log:
            subprocess.run(
                [str(ansible), "localhost", "-c", "local", "-m", "debug", "-a", f"msg={CANARY}"],
                stdout=log,
                stderr=subprocess.STDOUT,
                check=True,
                env={**os.environ, "ANSIBLE_LOCALHOST_WARNING": "false"},
            )
        run.emit("configure", "info", f"the tool said {CANARY}")
        raise StageError(f"failed with password {CANARY}", node=run.node, stage="configure")

    result = operate("canary-node", "deploy", RunOptions(lock_timeout_s=5), None, body)

    log = (result.run_dir / "configure.log").read_text()
    assert "********" in log and '"msg": "' in log  # the real output is there, masked
    for file in result.run_dir.rglob("*"):
        if file.is_file():
            assert CANARY.encode() not in file.read_bytes(), file
    assert result.scrubbed >= 2  # the log and the events (the summary is written clean)
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary["scrubbed"] == result.scrubbed
    assert CANARY not in json.dumps(summary)
    assert result.error is not None and CANARY not in result.error  # printed and recorded masked
    assert "failed with password ********" in result.error
