"""`affected` on a real git repository: keys, roles, comments, adds, removals, errors."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from nodekit.cli.main import main
from nodekit.errors import BlueprintError
from nodekit.gitops.affected import affected

SITE = """\
apiVersion: nodekit/v1
kind: Node
metadata:
  name: {name}
site:
  region: eu-west
  timezone: UTC
  target: local
network:
  zones:
    - name: cell
      cidr: 10.60.{i}.0/24
compute:
  - name: solo
    role: edge
    zone: cell
    address: 10.60.{i}.10
"""


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    _git(tmp_path, "init", "-q", "-b", "main")
    _git(tmp_path, "config", "user.email", "t@example.invalid")
    _git(tmp_path, "config", "user.name", "t")
    (tmp_path / "sites").mkdir()
    for i, name in enumerate(("one", "two"), start=1):
        (tmp_path / "sites" / f"{name}.yaml").write_text(SITE.format(name=name, i=i))
    role = tmp_path / "playbooks" / "roles" / "base" / "tasks"
    role.mkdir(parents=True)
    (role / "main.yml").write_text("- name: Something\n  ansible.builtin.ping:\n")
    (tmp_path / "playbooks" / "site.yml").write_text("- hosts: all\n")
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "commit", "-qm", "v1")
    return tmp_path


def _commit(repo: Path, message: str) -> None:
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", message)


def test_a_role_change_reaches_the_nodes_using_it(repo: Path) -> None:
    (repo / "playbooks" / "roles" / "base" / "tasks" / "main.yml").write_text("- name: Other\n")
    _commit(repo, "role")
    found = affected(repo, "HEAD~1", "HEAD", ["sites"])
    assert [(n.node, n.reasons) for n in found.nodes] == [
        ("one", ("role changed: playbooks/roles/base/tasks/main.yml",)),
        ("two", ("role changed: playbooks/roles/base/tasks/main.yml",)),
    ]


def test_comments_reach_nothing_added_and_removed_are_named(repo: Path) -> None:
    one = repo / "sites" / "one.yaml"
    one.write_text(
        "# a comment\n" + one.read_text().replace("timezone: UTC", "timezone:  UTC  # x")
    )
    _commit(repo, "comment")
    assert affected(repo, "HEAD~1", "HEAD", ["sites"]).nodes == ()
    (repo / "sites" / "two.yaml").unlink()
    (repo / "sites" / "three.yaml").write_text(SITE.format(name="three", i=3))
    _commit(repo, "two out, three in")
    found = affected(repo, "HEAD~1", "HEAD", ["sites"])
    assert [(n.node, n.status, n.blueprint) for n in found.nodes] == [
        ("three", "added", "sites/three.yaml"),
        ("two", "removed", "sites/two.yaml"),
    ]
    assert found.unchanged == 1
    assert found.matrix() == {"include": [{"node": "three", "blueprint": "sites/three.yaml"}]}


def test_invalid_at_head_is_fatal_and_located_at_base_only_reported(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    one = repo / "sites" / "one.yaml"
    good = one.read_text()
    one.write_text(good.replace("timezone: UTC", "timezone: Mars/Olympus"))
    _commit(repo, "broken")
    with pytest.raises(BlueprintError) as caught:
        affected(repo, "HEAD~1", "HEAD", ["sites"])
    assert str(caught.value).startswith("sites/one.yaml:7:")
    monkeypatch.chdir(repo)
    assert main(["affected", "--base", "HEAD~1", "sites"]) == 2
    assert "sites/one.yaml:7:" in capsys.readouterr().err
    one.write_text(good.replace("timezone: UTC", "timezone: Europe/Paris"))
    _commit(repo, "fixed")
    assert main(["affected", "--base", "HEAD~1", "sites", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["base_problems"] and data["base_problems"][0].startswith("sites/one.yaml:7:")
    assert [(n["node"], n["status"]) for n in data["nodes"]] == [("one", "added")]  # was invalid
    assert main(["affected", "--base", "no-such-ref", "sites"]) == 2


def test_deployed_compares_with_the_last_deploy_ignoring_nodekit_version(
    repo: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nodekit import __version__
    from nodekit.backends.local import LocalBackend
    from nodekit.blueprint import load
    from nodekit.render import render
    from nodekit.run.history import pack
    from nodekit.run.state import NodeState

    state = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("NODEKIT_STATE", str(state))
    backend = LocalBackend()
    rendered = state / "r"
    render(load(repo / "sites" / "one.yaml"), rendered)
    for path in rendered.rglob("*"):  # as an older nodekit rendered it
        if path.is_file():
            text = path.read_bytes().replace(f"nodekit {__version__}".encode(), b"nodekit 0.0.1")
            path.write_bytes(
                text.replace(f'"nodekit": "{__version__}"'.encode(), b'"nodekit": "0.0.1"')
            )
    assert b"nodekit 0.0.1" in (rendered / "ansible" / "ansible.cfg").read_bytes()
    backend.add_run(
        NodeState.of("one"),
        {"id": "20260101T000000-deploy", "command": "deploy", "started": "2026-01-01T00:00:00Z"},
        pack(rendered),
    )
    found = affected(repo, None, "HEAD", ["sites"], deployed=backend)
    assert [(n.node, n.status) for n in found.nodes] == [("two", "added")]  # one: same
    assert found.unchanged == 1
    one = repo / "sites" / "one.yaml"
    one.write_text(one.read_text().replace("timezone: UTC", "timezone: Europe/Paris"))
    _commit(repo, "Paris")
    found = affected(repo, None, "HEAD", ["sites"], deployed=backend)
    assert found.nodes[0].node == "one" and found.nodes[0].status == "changed"
    assert (
        "rendering changed since run 20260101T000000-deploy: blueprint.json"
        in found.nodes[0].reasons
    )
