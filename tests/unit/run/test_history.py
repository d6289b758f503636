"""Run records: provenance from git, render digests, the rollback target."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from nodekit.blueprint import load
from nodekit.errors import UsageError
from nodekit.render import PROJECT_ROOT, load_rendered, render
from nodekit.run.history import (
    Provenance,
    git_revision,
    last_verified,
    pack,
    render_digest,
    rollback_target,
    unpack,
)

SITE = PROJECT_ROOT / "blueprints" / "sites" / "lyon-additive-01.yaml"


def _run(run_id: str, command: str, status: str = "ok", verified: bool | None = True) -> Any:
    return {"id": run_id, "command": command, "status": status, "verified": verified}


def test_rollback_goes_to_the_last_verified_deploy_before_the_current_one() -> None:
    runs = [  # newest first
        _run("5-deploy", "deploy", "failed", False),
        _run("4-verify", "verify"),
        _run("3-deploy", "deploy"),
        _run("2-deploy", "deploy", "failed", False),
        _run("1-deploy", "deploy"),
    ]
    assert rollback_target(runs, None)["id"] == "3-deploy"  # the bad deploy is current
    assert rollback_target(runs[1:], None)["id"] == "1-deploy"  # 3 is current: before it
    assert rollback_target(runs, "2-deploy")["id"] == "2-deploy"  # named: as asked
    assert last_verified(runs) == "3-deploy"


def test_rollback_refuses_with_the_fix_when_there_is_nothing_to_go_back_to() -> None:
    with pytest.raises(UsageError, match="no deploy"):
        rollback_target([_run("1-plan", "plan")], None)
    with pytest.raises(UsageError, match="no verified deploy before 1-deploy") as caught:
        rollback_target([_run("1-deploy", "deploy")], None)
    assert "--to RUN" in str(caught.value.context["fix"])
    with pytest.raises(UsageError, match="run 1-plan is a plan: it applied nothing"):
        rollback_target([_run("1-plan", "plan")], "1-plan")
    with pytest.raises(UsageError, match="no run 9-deploy"):
        rollback_target([_run("1-deploy", "deploy")], "9-deploy")


def test_render_digest_follows_the_rendered_files_and_survives_pack(tmp_path: Path) -> None:
    blueprint = load(SITE)
    render(blueprint, tmp_path / "a")
    digest = render_digest(tmp_path / "a")
    assert digest and len(digest) == 64
    packed = pack(tmp_path / "a")
    assert packed is not None and packed == pack(tmp_path / "a")  # reproducible
    unpack(packed, tmp_path / "b")
    assert render_digest(tmp_path / "b") == digest
    assert load_rendered(tmp_path / "b").secrets == load_rendered(tmp_path / "a").secrets
    (tmp_path / "a" / "ansible" / "site.yml").write_text("changed")  # the manifest says what
    assert render_digest(tmp_path / "a") == digest  # ... was rendered, not what is on disk
    assert pack(tmp_path / "nothing") is None and render_digest(tmp_path / "nothing") is None


def test_provenance_names_the_commit_and_whether_the_blueprint_differs(tmp_path: Path) -> None:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(tmp_path), *args], capture_output=True, text=True, check=True
        ).stdout.strip()

    site = tmp_path / "node.yaml"
    assert git_revision([site]) == (None, None)  # not in a work tree
    git("init", "-q")
    git("config", "user.email", "ci@example.invalid")
    git("config", "user.name", "ci")
    site.write_text(SITE.read_text())
    git("add", ".")
    git("commit", "-qm", "v1")
    head = git("rev-parse", "HEAD")
    assert git_revision([site]) == (head, False)
    (tmp_path / "other.txt").write_text("not the blueprint")
    assert git_revision([site]) == (head, False)  # other files do not make it dirty
    site.write_text(site.read_text() + "\n# edited\n")
    assert git_revision([site]) == (head, True)
    assert Provenance().commit is None
