"""Processes a stopped run left in a node's program folder are stopped by the next
run (it holds the node's lock); processes working anywhere else are left alone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from nodekit.run.pulumi_stack import stop_leftovers

# Stands in for a Pulumi provider plugin: its own session, like the plugins Pulumi
# starts in their own process groups; it says when it is ready.
SLEEPER = "import time; print('ready', flush=True); time.sleep(120)"
STUBBORN = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('ready', flush=True); time.sleep(120)"
)


def start(code: str, cwd: Path) -> subprocess.Popen[str]:
    cwd.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-c", code], cwd=cwd, stdout=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    return proc


def test_processes_in_the_program_folder_are_stopped_others_left(tmp_path: Path) -> None:
    program = tmp_path / "nodes" / "n1" / "program"
    plugin = start(SLEEPER, program / "pulumi")
    stubborn = start(STUBBORN, program)
    elsewhere = start(SLEEPER, tmp_path / "nodes" / "n2" / "program")
    try:
        assert stop_leftovers(program, grace_s=1.0) == 2
        assert plugin.wait(timeout=10) == -15  # SIGTERM was enough
        assert stubborn.wait(timeout=10) == -9  # ignored SIGTERM: killed after the grace
        assert elsewhere.poll() is None
        assert stop_leftovers(program) == 0
    finally:
        for proc in (plugin, stubborn, elsewhere):
            proc.kill()
            proc.wait()


def test_no_program_folder_no_processes(tmp_path: Path) -> None:
    assert stop_leftovers(tmp_path / "never-deployed") == 0
