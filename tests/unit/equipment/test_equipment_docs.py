"""The operator docs (docs/equipment.md) describe what the code does: registers, OPC UA
nodes, metrics, SQL, default ports, the twins' files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from nodekit.blueprint.equipment import DEFAULT_PORTS as BLUEPRINT_PORTS
from nodekit.equipment.common import DEFAULT_PORTS, PROTOCOLS
from nodekit.equipment.ingest import SCHEMA
from nodekit.equipment.modbus import REGISTER_MAP
from nodekit.equipment.opcua import VARIABLES
from nodekit.equipment.readers import METRICS
from nodekit.pulumi.twin_provider import TWIN_DIR

DOC = Path(__file__).resolve().parents[3] / "docs" / "equipment.md"


@pytest.fixture(scope="module")
def text() -> str:
    return DOC.read_text(encoding="utf-8")


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


def test_default_port_table_matches_the_code(text: str) -> None:
    assert BLUEPRINT_PORTS == DEFAULT_PORTS  # validation and the agents agree
    rows = dict(re.findall(r"^\| `([a-z-]+)` \| (\d+|none[^|]*) \|$", text, re.M))
    assert set(rows) == set(PROTOCOLS)
    for protocol in PROTOCOLS:
        expected = DEFAULT_PORTS.get(protocol)
        assert rows[protocol].startswith(str(expected) if expected else "none"), protocol


def test_twin_files_are_where_the_twins_keep_them(text: str) -> None:
    assert f"{TWIN_DIR}/state" in text and f"{TWIN_DIR}/secrets.json" in text
    assert "/run/nodekit-twin" not in text
