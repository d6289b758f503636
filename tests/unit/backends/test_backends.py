"""Backends by name, the local backend's records, sealed secrets, removals."""

from __future__ import annotations

from pathlib import Path

import pytest

from nodekit.backends import backend_for, masked
from nodekit.backends.local import LocalBackend
from nodekit.backends.sealed import Sealer, secrets_key
from nodekit.blueprint import load
from nodekit.errors import UsageError
from nodekit.render import PROJECT_ROOT
from nodekit.render.plan import plan
from nodekit.run.removal import describe, installed, removals
from nodekit.run.state import NodeState

SITE = PROJECT_ROOT / "blueprints" / "sites" / "lyon-additive-01.yaml"


def test_backend_by_name_and_a_clear_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NODEKIT_BACKEND", raising=False)
    assert backend_for().name == "local"
    assert backend_for("local").name == "local"
    assert backend_for("postgresql://u:p@127.0.0.1:1/db").name == "postgres"
    with pytest.raises(UsageError, match=r"unknown state backend 'mysql://u:\*\*\*\*@h/db'"):
        backend_for("mysql://u:secretpw@h/db")
    assert masked("postgres://nodekit:s3cret@db:5432/n?sslmode=require") == (
        "postgres://nodekit:****@db:5432/n?sslmode=require"
    )


def test_a_shared_backend_needs_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NODEKIT_SECRETS_KEY", raising=False)
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE", raising=False)
    with pytest.raises(UsageError, match="NODEKIT_SECRETS_KEY is not set") as caught:
        secrets_key()
    assert "export NODEKIT_SECRETS_KEY" in str(caught.value.context["fix"])
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "from-pulumi")
    assert secrets_key() == "from-pulumi"
    monkeypatch.setenv("NODEKIT_SECRETS_KEY", "from-nodekit")
    assert secrets_key() == "from-nodekit"


def test_sealed_values_open_only_with_their_key_and_name() -> None:
    sealer = Sealer("key-one", b"0123456789abcdef")
    sealed = sealer.seal("hunter2-password", "node/broker/edge")
    assert b"hunter2" not in sealed
    assert sealer.seal("hunter2-password", "node/broker/edge") != sealed  # fresh nonce
    assert sealer.open(sealed, "node/broker/edge") == "hunter2-password"
    with pytest.raises(UsageError, match="does not open"):
        sealer.open(sealed, "node/broker/other")  # moved to another name
    other = Sealer("key-two", b"0123456789abcdef")
    assert not other.matches(sealer.check_value()) and sealer.matches(sealer.check_value())


def test_local_backend_keeps_records_newest_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NODEKIT_STATE", str(tmp_path))
    backend = LocalBackend()
    state = NodeState.of("n1")
    for run_id, started in (
        ("a-deploy", "2026-01-01T00:00:00Z"),
        ("b-plan", "2026-01-02T00:00:00Z"),
    ):
        backend.add_run(state, {"id": run_id, "started": started}, b"tar" + run_id.encode())
    assert [r["id"] for r in backend.runs("n1")] == ["b-plan", "a-deploy"]
    assert [r["id"] for r in backend.runs("n1", limit=1)] == ["b-plan"]
    assert backend.rendering("n1", "a-deploy") == b"tara-deploy"
    assert backend.rendering("n1", "nope") is None
    assert backend.runs("other") == []


def test_removals_are_what_the_record_has_and_the_plan_lost() -> None:
    node = plan(load(SITE).data)
    record = {"hosts": {h.name: "x" for h in node.hosts}, "installed": installed(node)}
    assert removals(record, node) == ({}, [])  # nothing lost
    host = next(h.name for h in node.hosts if "postgresql" not in {s.package for s in h.services})
    record["installed"][host].append(
        {
            "software": "old-db",
            "package": "postgresql",
            "service": "postgresql",
            "apt": ["postgresql", "postgresql-15"],
            "paths": [],
        }
    )
    record["installed"]["gone-01"] = []
    record["hosts"]["gone-01"] = "x"
    remove, gone = removals(record, node)
    assert [e["software"] for e in remove[host]] == ["old-db"]
    assert gone == ["gone-01"]
    lines = describe(remove, gone, destroyed=True, record=record)
    assert lines[0].startswith(f"{host}: software old-db (postgresql): service postgresql")
    assert "container is destroyed" in lines[1]
    kept = describe({}, gone, destroyed=False, record=record)  # ssh: the machine stays
    assert kept == [
        "gone-01: host removed from the blueprint: no software of nodekit's was on it; the "
        "machine, its admin user, SSH and firewall settings stay (nodekit no longer manages it)"
    ]
    assert removals({}, node) == ({}, [])  # first deploy: nothing to remove
