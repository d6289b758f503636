"""Fixtures of the blueprint tests: a scratch folder and the repository."""

from __future__ import annotations

from pathlib import Path

import pytest
from blueprint_cases import Workspace


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    monkeypatch.chdir(tmp_path)
    return Workspace(tmp_path)


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parents[3]
