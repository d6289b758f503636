"""`nodekit report`: one self-contained HTML file, checked in a real headless
browser (Debian's Chromium): no console errors, nothing fetched from outside,
the topology SVG and every node, zone, host and machine visible. The
screenshot is kept in build/test-artifacts/report.png."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser import Browser

from nodekit.blueprint import load
from nodekit.cli.main import main
from nodekit.render import PROJECT_ROOT

SITES = [PROJECT_ROOT / "blueprints/sites/lyon-additive-01.yaml",
         PROJECT_ROOT / "blueprints/sites/bremen-additive-01-ssh.yaml"]  # fmt: skip
ARTIFACTS = PROJECT_ROOT / "build" / "test-artifacts"

VISIBLE = """
(names) => names.filter((name) => {
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const el = walker.currentNode.parentElement;
    if (!walker.currentNode.textContent.includes(name)) continue;
    const box = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    if (box.width > 0 && box.height > 0 && style.visibility !== 'hidden'
        && style.display !== 'none') return false;
  }
  return true;
})
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = Browser()
    yield chromium
    chromium.close()


@pytest.fixture
def report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("NODEKIT_STATE", str(tmp_path / "state"))
    out = tmp_path / "report.html"
    assert main(["report", *map(str, SITES), "-o", str(out)]) == 0
    return out


def test_the_report_is_self_contained(report: Path) -> None:
    text = report.read_text()
    urls = set(re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)""", text))
    assert all(u.startswith("#") for u in urls), urls  # in-page links only
    assert "<script" not in text and "@import" not in text and "url(" not in text
    assert text.count("<svg") == len(SITES)


def test_the_report_renders_in_a_browser(report: Path, browser: Browser) -> None:
    browser.load(report.as_uri())
    assert browser.errors() == []
    names: list[str] = []
    for site in SITES:
        data = load(site).data
        names += [data["metadata"]["name"]]
        names += [f"zone {z['name']} · {z['cidr']}" for z in data["network"]["zones"]]
        names += [c["name"] for c in data["compute"]] + [e["name"] for e in data["equipment"]]
    missing = browser.evaluate(f"({VISIBLE})({json.dumps(names)})")
    assert missing == [], missing
    svgs = browser.evaluate(
        "[...document.querySelectorAll('svg')].map(s => s.getBoundingClientRect().width)"
    )
    assert len(svgs) == len(SITES) and all(w > 300 for w in svgs), svgs
    assert browser.evaluate("document.body.innerText").count("plaintext-across-boundary") == 2
    browser.screenshot(ARTIFACTS / "report.png")
    assert (ARTIFACTS / "report.png").read_bytes()[:4] == b"\x89PNG"


def test_report_needs_an_output_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(SITES[0]), "-o", ""]) == 2
    assert "-o needs a file name" in capsys.readouterr().err
