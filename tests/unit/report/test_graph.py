"""`nodekit graph`: DOT and Mermaid text are golden; SVG and PNG come from the
real Graphviz and show every zone, host, machine and conduit."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from nodekit.blueprint import load
from nodekit.cli.main import main
from nodekit.render import PROJECT_ROOT
from nodekit.report.graph import to_dot, to_mermaid

GOLDEN = Path(__file__).resolve().parents[2] / "golden" / "graph"
SITE = PROJECT_ROOT / "blueprints/sites/lyon-additive-01.yaml"
REGEN = os.environ.get("NODEKIT_REGEN_GOLDEN") == "1"


@pytest.mark.parametrize(("name", "draw"), [("lyon.dot", to_dot), ("lyon.mmd", to_mermaid)])
def test_text_formats_match_golden(name: str, draw: object) -> None:
    text = draw(load(SITE).data)  # type: ignore[operator]
    if REGEN:
        (GOLDEN / name).write_text(text)
    assert text == (GOLDEN / name).read_text()


def test_svg_shows_every_zone_host_machine_and_conduit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "lyon.svg"
    assert main(["graph", str(SITE), "-o", str(out)]) == 0
    texts = " ".join(
        t.text or "" for t in ET.parse(out).getroot().iter("{http://www.w3.org/2000/svg}text")
    )
    data = load(SITE).data
    names = [z["name"] for z in data["network"]["zones"]]
    names += [c["name"] for c in data["compute"]] + [e["name"] for e in data["equipment"]]
    for name in names:
        assert name in texts, name
    assert "SL-T 2 · Purdue 3" in texts and "1883/tcp" in texts and "9100/tcp" in texts
    assert "eu-west-hub" in texts  # the uplink and its peer (the hub)
    assert "graph:" in capsys.readouterr().err


def test_png_is_a_png(tmp_path: Path) -> None:
    out = tmp_path / "lyon.png"
    assert main(["graph", str(SITE), "--format", "png", "-o", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_mermaid_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph", str(SITE), "--format", "mermaid"]) == 0
    assert capsys.readouterr().out.startswith("flowchart LR\n")


def test_graph_of_an_invalid_blueprint_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "bad.yaml").write_text("apiVersion: nodekit/v1\nkind: Node\n")
    assert main(["graph", str(tmp_path / "bad.yaml"), "-f", "dot"]) == 2
    assert "bad.yaml:" in capsys.readouterr().err
