"""Run reports print what operations say literally: brackets are text, not markup."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from nodekit.cli.output import Format
from nodekit.cli.run import Progress, _report
from nodekit.run.deploy import Event, RunResult, StageResult


def test_report_prints_brackets_literally(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = RunResult("n1", "deploy", tmp_path)
    result.stages.append(StageResult("configure", False, 1.0, 0, "compute[edge-01] failed"))
    result.error = "n1/edge-01: configure failed: cannot write [/etc/x]"
    with pytest.raises(typer.Exit) as done:
        _report([result], Format.table, "deploy")
    assert done.value.exit_code == 1
    captured = capsys.readouterr()
    assert "compute[edge-01]" in captured.out  # the cell may wrap after it
    assert "[/etc/x]" in captured.err


def test_progress_lines_without_terminal_are_plain(capsys: pytest.CaptureFixture[str]) -> None:
    progress = Progress(verbose=False)
    progress(Event("n1", "configure", "failed", "task [x] failed"))
    progress(Event("n1", "configure", "info", "hidden unless verbose"))
    err = capsys.readouterr().err
    assert "FAILED task [x] failed" in err
    assert "hidden" not in err
