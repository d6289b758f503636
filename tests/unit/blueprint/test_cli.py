"""The blueprint commands through `nodekit.cli.main.main`: exit codes and output."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from blueprint_cases import VALID, Workspace, at

from nodekit.cli.main import main

LINE = re.compile(r"^.+:\d+:\d+: (error|warning): ")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    return code, captured.out, captured.err


def test_validate_a_valid_node(ws: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    ws.write("node.yaml", VALID)
    code, out, err = run(capsys, "validate", "node.yaml")
    assert (code, out, err) == (0, "ok  test-node  (node.yaml)\n", "")


def test_validate_an_invalid_node(ws: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    long_name = "a-" * 30 + "z"  # long messages stay on one line
    text = VALID.replace("vlan: 42", "vlan: 41").replace("host: hist-01", f"host: {long_name}", 1)
    ws.write("node.yaml", text)
    code, out, err = run(capsys, "validate", "node.yaml")
    assert code == 2
    assert out == ""
    lines = err.splitlines()
    assert lines[-1] == "2 error(s)"
    assert all(LINE.match(line) for line in lines[:-1])
    assert lines[0] == (
        f"node.yaml:{at(text, 'vlan: 41', after='name: it', value=True)}: error: "
        "network.zones[it].vlan: vlan 41 is already used by zone 'ot'"
    )
    assert lines[1].endswith(f"unknown host '{long_name}'; known: edge-01, gw-01, hist-01")


def test_validate_prints_warnings_but_succeeds(
    ws: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    ws.write("node.yaml", VALID.replace("    role: gateway\n", "    role: controller\n"))
    code, out, err = run(capsys, "validate", "node.yaml")
    assert code == 0
    assert out == "ok  test-node  (node.yaml)\n"
    assert re.match(r"node\.yaml:18:7: warning: network\.flows\[0\]: no gateway", err)


def test_validate_json(ws: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    ws.write("a.yaml", VALID)
    ws.write("b.yaml", VALID.replace("test-node", "b-node").replace("vlan: 42", "vlan: 41"))
    code, out, _ = run(capsys, "validate", "a.yaml", "b.yaml", "--format", "json")
    report = json.loads(out)
    assert code == 2
    assert report["ok"] is False
    assert [n["name"] for n in report["nodes"]] == ["test-node"]
    assert report["nodes"][0]["file"] == "a.yaml"
    assert len(report["nodes"][0]["digest"]) == 64
    assert [(d["file"], d["severity"], d["path"]) for d in report["diagnostics"]] == [
        ("b.yaml", "error", "network.zones[it].vlan")
    ]


def test_validate_a_missing_path(ws: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "validate", "nope.yaml")
    assert code == 2
    assert err.splitlines()[0] == "nope.yaml:1:1: error: no such file or folder"


def test_validate_the_examples(repo_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "validate", str(repo_root / "blueprints"))
    assert code == 0, err
    assert [line.split()[1] for line in out.splitlines()] == [
        "eu-west-hub",
        "austin-additive-01",
        "bremen-additive-01",
        "lyon-additive-01",
        "porto-additive-01",
    ]


def test_explain_a_key(ws: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    ws.write("node.yaml", VALID)
    code, out, _ = run(capsys, "explain", "node.yaml", "compute[edge-01].address")
    line = at(VALID, "10.41.1.10").split(":")[0]
    assert (code, out) == (0, f"compute[edge-01].address = 10.41.1.10\n  set by node.yaml:{line}\n")
    code, out, _ = run(capsys, "explain", "node.yaml", "software[broker].ports")
    assert (code, out) == (
        0,
        "software[broker].ports:\n  - 1883/tcp\n  default (no file sets it)\n",
    )


def test_explain_a_key_as_json(ws: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    ws.write("node.yaml", VALID)
    code, out, _ = run(capsys, "explain", "node.yaml", "compute[1].zone", "-f", "json")
    line, column = at(VALID, "zone: ot", after="name: edge-01", value=True).split(":")
    assert code == 0
    assert json.loads(out) == {
        "key": "compute[edge-01].zone",
        "value": "ot",
        "origin": {"file": "node.yaml", "line": int(line), "column": int(column)},
    }


def test_explain_an_unknown_key(ws: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    ws.write("node.yaml", VALID)
    code, out, err = run(capsys, "explain", "node.yaml", "compute[edge-1].address")
    assert (code, out) == (2, "")
    assert "did you mean 'compute[edge-01].address'?" in err


def test_explain_the_whole_blueprint(ws: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    ws.write("node.yaml", VALID)
    code, out, _ = run(capsys, "explain", "node.yaml")
    assert code == 0
    assert out.startswith("# test-node, merged from:\n#   node.yaml\napiVersion: nodekit/v1\n")
    code, out, _ = run(capsys, "explain", "node.yaml", "--format", "json")
    assert json.loads(out)["blueprint"]["software"][0]["ports"] == ["1883/tcp"]


def test_explain_an_invalid_blueprint(ws: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    ws.write("node.yaml", "apiVersion: [")
    code, out, err = run(capsys, "explain", "node.yaml")
    assert (code, out) == (2, "")
    assert LINE.match(err.splitlines()[0])


def test_schema_prints_the_committed_schema(
    repo_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "schema")
    assert code == 0
    # Regenerate with: .venv/bin/nodekit schema > blueprints/nodekit-blueprint-v1.schema.json
    assert out == (repo_root / "blueprints/nodekit-blueprint-v1.schema.json").read_text()


def test_packages(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "packages", "--format", "json")
    assert code == 0
    listed = {p["name"]: p for p in json.loads(out)}
    assert sorted(listed) == [
        "edge-collector", "mosquitto", "node-exporter", "postgresql", "prometheus",
        "telemetry-ingest",
    ]  # fmt: skip
    assert listed["edge-collector"]["default_ports"] == []
    assert listed["mosquitto"]["default_ports"] == ["1883/tcp"]
    assert listed["node-exporter"]["service"] == "prometheus-node-exporter"
    assert listed["postgresql"]["settings"] == ["databases", "users", "allowed_zones"]
    code, out, _ = run(capsys, "packages")
    assert code == 0
    assert "mosquitto" in out
    assert "9090/tcp" in out


@pytest.mark.parametrize("command", ["validate", "explain", "schema", "packages"])
def test_help_has_examples(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, command, "--help")
    assert code == 0
    assert "nodekit " + command in out
