"""Every blueprint that validates renders to files the real tools accept.

A property over generated valid blueprints (see blueprint_strategy.py):
validate ok => render ok => every role's variables, role vars and templates
evaluate with Ansible's own templating and pass the roles' argument specs
(nodekit.render.rolecheck) => `ansible-playbook --syntax-check` ok =>
ansible-lint clean => the generated testinfra modules collect. The tools run
once each, over the whole batch of renderings.

`make test` runs a few hundred examples; `make stress` thousands
(NODEKIT_PROPERTY_EXAMPLES).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from blueprint_strategy import blueprints
from hypothesis import HealthCheck, given, settings

from nodekit.blueprint import validate
from nodekit.render import PROJECT_ROOT, render
from nodekit.render.rolecheck import check_rendering

EXAMPLES = int(os.environ.get("NODEKIT_PROPERTY_EXAMPLES", "300"))
ROLES = PROJECT_ROOT / "playbooks" / "roles"
BIN = Path(sys.executable).parent


def _tool(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ANSIBLE_ROLES_PATH": str(ROLES), "ANSIBLE_NOCOLOR": "1"}
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)


def test_valid_blueprints_render_to_files_the_tools_accept(tmp_path: Path) -> None:
    renderings: list[Path] = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(blueprints())
    def one(data: dict[str, Any]) -> None:
        folder = tmp_path / f"case-{len(renderings):05d}"
        folder.mkdir()
        source = folder / "node.yaml"
        source.write_text(yaml.safe_dump(data, sort_keys=False))
        result = validate([source])
        errors = [str(d) for d in result.diagnostics if d.severity == "error"]
        assert not errors, (errors, source.read_text())
        (blueprint,) = result.blueprints
        render(blueprint, folder / "out")
        problems = [str(p) for p in check_rendering(folder / "out", ROLES)]
        assert not problems, (problems, source.read_text())
        renderings.append(folder / "out")

    one()
    assert len(renderings) >= min(EXAMPLES, 50)

    # The real tools, once each over the batch.
    playbooks = [str(r / "ansible" / "site.yml") for r in renderings]
    inventories = [arg for r in renderings for arg in ("-i", str(r / "ansible" / "inventory.yml"))]
    syntax = _tool(
        str(BIN / "ansible-playbook"), "--syntax-check", *inventories[:2], *playbooks, cwd=tmp_path
    )
    assert syntax.returncode == 0, syntax.stdout[-3000:] + syntax.stderr[-3000:]
    assert syntax.stdout.count("playbook: ") == len(renderings)

    lint = _tool(
        str(BIN / "ansible-lint"), "--offline", "-q", "-c", str(PROJECT_ROOT / ".ansible-lint"),
        *[str(r / "ansible") for r in renderings], cwd=tmp_path,
    )  # fmt: skip
    assert lint.returncode == 0, lint.stdout[-3000:] + lint.stderr[-3000:]

    collect = _tool(
        str(BIN / "pytest"), "--collect-only", "-q", "-p", "no:cacheprovider",
        "--import-mode=importlib", "--rootdir", str(tmp_path),
        *[str(r / "tests") for r in renderings], cwd=tmp_path,
    )  # fmt: skip
    assert collect.returncode == 0, collect.stdout[-3000:] + collect.stderr[-3000:]
    assert "error" not in collect.stdout.lower().split("collected")[-1]
