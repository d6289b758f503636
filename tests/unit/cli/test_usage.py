"""Usage errors of every command: a clear message, exit 2, never a traceback."""

from __future__ import annotations

import pytest

from nodekit.cli.main import main

SITES = "blueprints/sites"


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["render"], "Missing argument"),
        (["deploy", "--bogus"], "No such option: --bogus"),
        (["no-such-command"], "No such command"),
        (["bundle", SITES, "-o", "/tmp/nodekit-unused"], "bundle takes one Node blueprint"),
        (
            ["deploy", "does-not-exist.yaml", "--yes"],
            "does-not-exist.yaml:1:1: error: no such file",
        ),
        (
            ["plan", "blueprints/bases/additive-cell.yaml"],
            "a NodeBase is only used through extends",
        ),
        (["destroy", f"{SITES}/lyon-additive-01.yaml"], "confirm with --yes"),
        (["render", f"{SITES}/lyon-additive-01.yaml", "-o", "README.md"], "cannot write into"),
        (["render", f"{SITES}/lyon-additive-01.yaml", "-o", ""], "give -o DIR"),
    ],
)
def test_usage_errors_exit_2_without_traceback(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    assert says in captured.err, captured.err


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("nodekit ")
    assert main(["deploy", "--help"]) == 0
    text = capsys.readouterr().out
    assert "--lock-timeout" in text and "--yes" in text
