"""Usage errors of every command: a clear message, exit 2, never a traceback."""

from __future__ import annotations

import pytest

from nodekit.cli.main import main

SITES = "blueprints/sites"


@pytest.mark.parametrize(
    "argv",
    [
        ["render"],
        ["deploy", "--bogus"],
        ["no-such-command"],
        ["bundle", SITES, "-o", "/tmp/nodekit-unused"],
        ["deploy", "does-not-exist.yaml", "--yes"],
        ["plan", "blueprints/bases/additive-cell.yaml"],
        ["destroy", f"{SITES}/lyon-additive-01.yaml"],  # no terminal to confirm on
        ["render", f"{SITES}/lyon-additive-01.yaml", "-o", "README.md"],  # a file, not a folder
    ],
)
def test_usage_errors_exit_2_without_traceback(
    argv: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    assert captured.err.strip()


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("nodekit ")
    assert main(["deploy", "--help"]) == 0
    text = capsys.readouterr().out
    assert "--lock-timeout" in text and "--yes" in text
