"""The per-node lock and the node's state folder (secrets, run folders)."""

from __future__ import annotations

import fcntl
import json
import os
import stat
import threading
import time
from pathlib import Path

import pytest
import yaml

from nodekit.errors import InputError, LockTimeout
from nodekit.run.lock import node_lock
from nodekit.run.state import NodeState


def test_second_holder_waits_then_times_out_naming_the_holder(tmp_path: Path) -> None:
    lock = tmp_path / "lock"
    held = threading.Event()
    release = threading.Event()

    def holder() -> None:
        with node_lock(lock, node="n1", command="nodekit deploy", timeout_s=1):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait(5)
    start = time.monotonic()
    with (
        pytest.raises(LockTimeout) as caught,
        node_lock(lock, node="n1", command="nodekit deploy", timeout_s=0.6),
    ):
        pass  # pragma: no cover - must not get here
    waited = time.monotonic() - start
    release.set()
    thread.join()
    assert 0.5 <= waited < 3
    message = str(caught.value)
    assert "node n1 is locked by nodekit deploy (pid" in message
    assert "--lock-timeout" in message


def test_waiting_holder_gets_the_lock_when_released(tmp_path: Path) -> None:
    lock = tmp_path / "lock"
    order: list[str] = []
    held = threading.Event()

    def first() -> None:
        with node_lock(lock, node="n1", command="a", timeout_s=1):
            held.set()
            time.sleep(0.5)
            order.append("first done")

    thread = threading.Thread(target=first)
    thread.start()
    held.wait(5)
    with node_lock(lock, node="n1", command="b", timeout_s=5):
        order.append("second in")
    thread.join()
    assert order == ["first done", "second in"]


def test_locks_of_different_nodes_do_not_wait(tmp_path: Path) -> None:
    """Holding node a's lock, node b's is taken at once (a timeout of 0.1 s
    would raise LockTimeout if b waited for a), and each names its own holder."""
    with (
        node_lock(tmp_path / "a" / "lock", node="a", command="run a", timeout_s=0.1),
        node_lock(tmp_path / "b" / "lock", node="b", command="run b", timeout_s=0.1),
    ):
        assert "run a" in (tmp_path / "a" / "lock").read_text()
        assert "run b" in (tmp_path / "b" / "lock").read_text()
        again = node_lock(tmp_path / "a" / "lock", node="a", command="again", timeout_s=0.1)
        with pytest.raises(LockTimeout), again:  # while a second run of node a must wait
            pass


def test_secrets_file_is_private_grows_and_keeps_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NODEKIT_STATE", str(tmp_path))
    state = NodeState.of("n1")
    path = state.ensure_secrets(("broker/edge",))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = yaml.safe_load(path.read_text())["nodekit_secrets"]
    state.ensure_secrets(("broker/edge", "db/historian"))
    second = yaml.safe_load(path.read_text())["nodekit_secrets"]
    assert second["broker/edge"] == first["broker/edge"]
    assert len(second["db/historian"]) >= 24
    assert sorted(state.secret_values()) == sorted(second.values())


def test_run_folders_are_unique_and_sortable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NODEKIT_STATE", str(tmp_path))
    state = NodeState.of("n1")
    a, b = state.new_run("deploy"), state.new_run("deploy")
    assert a != b and a.is_dir() and b.is_dir()
    assert a.parent == b.parent == tmp_path / "nodes" / "n1" / "runs"


def test_malformed_secrets_file_is_named_but_never_quoted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NODEKIT_STATE", str(tmp_path))
    state = NodeState.of("n1")
    state.root.mkdir(parents=True)
    state.secrets_file.write_text("nodekit_secrets:\n  broker/edge: s3cr3t-value: [\n")
    with pytest.raises(InputError) as caught:
        state.ensure_secrets(("broker/edge",))
    assert str(state.secrets_file) in str(caught.value)
    assert "s3cr3t" not in str(caught.value)
    assert state.secret_values() == []


def test_a_waiter_names_a_holder_that_has_not_written_its_name_yet(tmp_path: Path) -> None:
    # The window between a holder taking the lock and writing its name: the
    # waiter must not announce "another nodekit run" when the name follows.
    lock = tmp_path / "lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    told: list[str] = []

    def waiter() -> None:
        with node_lock(lock, node="n1", command="b", timeout_s=10, on_wait=told.append):
            pass

    thread = threading.Thread(target=waiter)
    thread.start()
    time.sleep(0.4)
    holder = {"command": "nodekit deploy", "pid": 4242, "user": "op", "host": "h", "since": "t"}
    os.pwrite(fd, json.dumps(holder).encode(), 0)
    time.sleep(1.0)
    os.ftruncate(fd, 0)
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
    thread.join(10)
    assert told == ["nodekit deploy (pid 4242, op@h, since t)"]


def test_stopped_runs_are_found_once_then_marked_looked_after(tmp_path: Path) -> None:
    state = NodeState("n1", tmp_path / "n1")
    done, killed, current = (state.new_run(op) for op in ("deploy", "plan", "deploy"))
    (done / "summary.json").write_text("{}")
    assert state.stopped_runs(current) == [killed]  # no summary: it never finished
    state.looked_after([killed], by=current)
    assert "looked after by " + current.name in (killed / "stopped").read_text()
    assert state.stopped_runs(current) == []
    assert NodeState("n2", tmp_path / "n2").stopped_runs(current) == []  # no runs yet
