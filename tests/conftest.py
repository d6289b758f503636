"""How `make test` spreads the integration tests over two pytest-xdist workers.

With ``--dist loadscope`` nodekit's scheduler (below) makes each test file one
unit of work, kept on one worker, so a module's fixtures (its node, its lab) are
made once and never twice at the same time. Files that share something
machine-wide form one unit and run one after another (SHARED). The longest units
are handed out first (LONGEST_FIRST, with ``--no-loadscope-reorder``), so that
neither worker is left alone with a long tail.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from xdist.scheduler import LoadScopeScheduling

# Files that share a machine-wide resource: the one WAN network of this machine
# (nodes with an uplink), and the test database of `make backend` (whose tables
# the tests drop).
SHARED = {
    "test_fleet_hub": "wan",
    "test_gitops": "wan",
    "test_settings_matrix": "wan",
    "test_backend_postgres": "backend",
    "test_shared_state": "backend",
}
# The longest units (each 4 to 13 minutes in CI); the others follow in file order.
LONGEST_FIRST = ("test_deploy_lifecycle", "wan", "test_ssh_target", "backend")


def unit_of(path: str) -> str:
    """The unit of work of a test file (its stem, or the name of what it shares)."""
    stem = Path(path).stem
    return SHARED.get(stem, stem)


class FileUnits(LoadScopeScheduling):
    """LoadScopeScheduling with a test file, or a SHARED group of files, as the scope."""

    def _split_scope(self, nodeid: str) -> str:
        return unit_of(nodeid.split("::", 1)[0])


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getvalue("dist") == "loadscope":
        return FileUnits(config, log)
    return None  # xdist's own for the other modes (`-n 2` alone: load)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        unit = unit_of(str(item.path))
        return LONGEST_FIRST.index(unit) if unit in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: within a unit, and among the rest, file order
