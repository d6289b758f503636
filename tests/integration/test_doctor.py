"""`nodekit doctor` against the real toolchain that `make setup` installed."""

from __future__ import annotations

import json
import subprocess

import pytest

from nodekit.cli.main import main
from nodekit.render import PROJECT_ROOT
from nodekit.toolchain import IMAGE_PACKAGES, IMAGE_SCRIPT, VERSIONS_FILE, node_image_ref

pytestmark = pytest.mark.integration


def test_doctor_passes_after_setup(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True
    parts = {c["part"] for c in report["checks"]}
    assert parts == {
        "python deps",
        "ansible collections",
        "host tools",
        "docker engine",
        "node image",
        "pulumi cli",
        "pulumi python host",
        "baseline",
        "ssh client",
        "state backend",
    }


def test_doctor_names_the_docker_engine_and_its_fix_when_unreachable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    # An engine that does not answer, as when dockerd is stopped.
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    assert main(["doctor", "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    failed = {c["part"]: c for c in report["checks"] if not c["ok"]}
    assert "docker engine" in failed
    assert "make setup" in failed["docker engine"]["fix"]
    assert "setup-docker.sh" in failed["docker engine"]["fix"]


def test_doctor_table_exit_code_and_fix_text(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    assert main(["doctor"]) == 1
    captured = capsys.readouterr()
    assert "docker engine" in captured.out
    assert "MISSING" in captured.out
    assert "some parts are missing" in captured.err


def test_doctor_reports_a_missing_pulumi_build(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.setenv("NODEKIT_CACHE", str(tmp_path))  # an empty cache: nothing built
    assert main(["doctor", "--format", "json"]) == 1
    failed = {c["part"] for c in json.loads(capsys.readouterr().out)["checks"] if not c["ok"]}
    assert failed == {"pulumi cli", "pulumi python host", "baseline"}


def test_doctor_checks_what_the_blueprints_target_needs(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An ssh node needs no Docker: with the engine gone, doctor of an ssh
    blueprint passes; of a local one it fails naming the engine."""
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    sites = PROJECT_ROOT / "blueprints" / "sites"
    assert main(["doctor", str(sites / "bremen-additive-01-ssh.yaml"), "--format", "json"]) == 0
    parts = {c["part"] for c in json.loads(capsys.readouterr().out)["checks"]}
    assert "ssh client" in parts and not parts & {"docker engine", "node image"}
    assert main(["doctor", str(sites / "lyon-additive-01.yaml"), "--format", "json"]) == 1
    failed = {c["part"] for c in json.loads(capsys.readouterr().out)["checks"] if not c["ok"]}
    assert "docker engine" in failed


def test_image_tag_agrees_with_the_build_script() -> None:
    """The Python side and build-node-image.sh hash the same recipe files."""
    digest = subprocess.run(
        f"cat {IMAGE_SCRIPT} {IMAGE_PACKAGES} {VERSIONS_FILE} | sha256sum",
        shell=True,
        capture_output=True,
        text=True,
        check=True,
    ).stdout[:12]
    assert node_image_ref().endswith(":" + digest)
