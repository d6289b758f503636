"""Faults said plainly: a host gone mid-configure and a state folder that cannot be
written give errors naming where and what to do (tests/integration/test_faults.py
makes the faults for real)."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from nodekit.blueprint import load
from nodekit.errors import StageError, StateFolderError
from nodekit.render import PROJECT_ROOT
from nodekit.render.plan import plan
from nodekit.run.ansible_stage import AnsibleResult, HostFailure
from nodekit.run.operation import _state_error
from nodekit.run.stages import fail_ansible
from nodekit.targets import target_for
from nodekit.targets.base import Target, outage_named


def _failed(message: str) -> AnsibleResult:
    failure = HostFailure("edge-01", "Create nodekit's apt folders", message)
    return AnsibleResult(False, {}, (), (failure,), 1.0)


def test_an_unreachable_host_is_named_with_a_fix() -> None:
    error = fail_ansible("n1", "configure", _failed("unreachable: connection lost"))
    assert (error.node, error.stage, error.host) == ("n1", "configure", "edge-01")
    assert "host edge-01 stopped answering" in str(error.context["fix"])
    other = fail_ansible("n1", "configure", _failed("No package matching 'x'"))
    assert "run folder" in str(other.context["fix"])


def test_a_read_only_state_folder_is_said_with_a_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NODEKIT_STATE", str(tmp_path))
    denied = PermissionError(errno.EPERM, "Operation not permitted", str(tmp_path / "nodes"))
    error = _state_error("n1", denied)
    assert isinstance(error, StateFolderError)
    assert f"the state folder {tmp_path} is read-only" in str(error)
    assert f"make {tmp_path} writable" in str(error.context["fix"])
    full = _state_error("n1", OSError(errno.ENOSPC, "No space left", str(tmp_path / "x")))
    assert "is full" in str(full)


def test_an_error_elsewhere_is_not_blamed_on_the_state_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NODEKIT_STATE", str(tmp_path / "state"))
    with pytest.raises(PermissionError):
        _state_error("n1", PermissionError(errno.EACCES, "denied", "/etc/elsewhere"))


def test_a_stopped_docker_engine_is_blamed_with_its_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/nodekit-test.sock")
    lyon = PROJECT_ROOT / "blueprints" / "sites" / "lyon-additive-01.yaml"
    target = target_for(plan(load(lyon).data))
    with pytest.raises(StageError) as caught, outage_named(target):
        raise StageError("unreachable: lost", node="n1", stage="configure", host="edge-01")
    error = caught.value
    assert (error.node, error.stage, error.host) == ("n1", "configure", "edge-01")
    assert str(error).startswith("n1/edge-01: configure failed: the Docker engine at unix:///")
    assert str(error).endswith("stopped answering during the run: unreachable: lost")
    assert "start the engine again" in str(error.context["fix"])


def test_a_failure_with_the_engine_up_is_left_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    original = StageError("boom", node="n1", stage="verify")
    with pytest.raises(StageError) as caught, outage_named(Target.__new__(Target)):
        raise original
    assert caught.value is original
