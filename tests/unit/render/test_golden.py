"""Golden files: blueprints in, expected rendered files out.

Regenerate after an intended change with `make golden` (it sets
NODEKIT_REGEN_GOLDEN=1 for this module) and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from nodekit.agents import agent_version
from nodekit.blueprint import load
from nodekit.render import PROJECT_ROOT, render_files
from nodekit.toolchain import node_image_ref

GOLDEN = Path(__file__).resolve().parents[2] / "golden"
CASES = {
    "lyon-additive-01": PROJECT_ROOT / "blueprints/sites/lyon-additive-01.yaml",
    "austin-additive-01": PROJECT_ROOT / "blueprints/sites/austin-additive-01.yaml",
    "ssh-minimal": GOLDEN / "cases/ssh-minimal.yaml",
}
REGEN = os.environ.get("NODEKIT_REGEN_GOLDEN") == "1"


def normalized(content: bytes) -> bytes:
    """Machine-specific parts (checkout path, image and agent hashes) as placeholders."""
    text = content.decode()
    text = text.replace(str(PROJECT_ROOT), "@PROJECT@").replace(node_image_ref(), "@IMAGE@")
    text = text.replace(agent_version(), "@AGENT@")
    return text.encode()


@pytest.mark.parametrize("case", sorted(CASES))
def test_render_matches_golden(case: str) -> None:
    files = {rel: normalized(data) for rel, data in render_files(load(CASES[case])).items()}
    expected_dir = GOLDEN / "expected" / case
    if REGEN:
        for old in sorted(expected_dir.rglob("*"), reverse=True):
            old.unlink() if old.is_file() else old.rmdir()
        for rel, data in files.items():
            (expected_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            (expected_dir / rel).write_bytes(data)
    expected = {
        str(p.relative_to(expected_dir)): p.read_bytes()
        for p in expected_dir.rglob("*")
        if p.is_file()
    }
    assert sorted(files) == sorted(expected), "rendered file set differs from the golden set"
    for rel in sorted(files):
        if rel == "manifest.json":
            continue
        assert files[rel] == expected[rel], f"{case}/{rel} differs from its golden file"
    # The manifest's digests cover machine-specific bytes; all else must match.
    got, want = json.loads(files["manifest.json"]), json.loads(expected["manifest.json"])
    for key in ("nodekit", "node", "secrets"):
        assert got[key] == want[key], key
    assert sorted(got["files"]) == sorted(want["files"])
    assert [s["path"] for s in got["sources"]] == [s["path"] for s in want["sources"]]
