"""The operator docs describe what the code does: registers, OPC UA nodes, metrics, SQL."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from nodekit.equipment.ingest import SCHEMA
from nodekit.equipment.modbus import REGISTER_MAP
from nodekit.equipment.opcua import VARIABLES
from nodekit.equipment.readers import METRICS

DOCS = Path(__file__).resolve().parents[3] / "docs"


@pytest.fixture(scope="module")
def text() -> str:
    # docs/equipment-protocols.md is to be merged into docs/equipment.md
    for name in ("equipment-protocols.md", "equipment.md"):
        path = DOCS / name
        if path.exists() and "REGISTER_MAP" in path.read_text():
            return path.read_text()
    pytest.fail("no equipment protocol docs under docs/")


def test_register_table_matches_the_register_map(text: str) -> None:
    rows = {
        m.group(1): m.group(0) for m in re.finditer(r"^\| (HR\d+)(?:-HR\d+)? \|.*$", text, re.M)
    }
    assert len(rows) == len(REGISTER_MAP)
    for reg in REGISTER_MAP:
        row = rows[f"HR{reg.address}"]
        assert f"`{reg.metric}`" in row
        assert ("int16" if reg.words == 1 else "int32") in row
        assert (reg.signed and "| int" in row) or (not reg.signed and "| uint" in row)
        assert f"| {reg.scale:g} |" in row


def test_opcua_nodes_and_metrics_are_documented(text: str) -> None:
    for var in VARIABLES:
        assert re.search(
            rf"\| `\.\.\./{var.browse_name}` \| Variable \| {var.variant.name} \|", text
        )
    for protocol, names in METRICS.items():
        assert f"`{protocol}`" in text
        for name in names:
            assert f"`{name}`" in text


def test_sql_matches_the_schema(text: str) -> None:
    def words(sql: str) -> list[str]:
        return re.sub(r"[(),;]", " ", sql).split()

    documented = " ".join(words(text))
    for statement in SCHEMA:
        assert " ".join(words(statement)) in documented
