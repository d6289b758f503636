"""What the loader keeps between runs: shared bases parsed once, never stale.

Also that libyaml, which reads plain text, builds the very tree (and
diagnostics) the pure-Python parser builds.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from blueprint_cases import VALID, Workspace
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nodekit.blueprint import compose, load, source
from nodekit.blueprint.source import Diagnostics, parse
from nodekit.errors import BlueprintError

BASE = """\
apiVersion: nodekit/v1
kind: NodeBase
compute:
  - name: gw-01
    role: gateway
    resources: {cpus: 1}
"""
NODE = VALID.replace("apiVersion: nodekit/v1\n", "apiVersion: nodekit/v1\nextends: [base.yaml]\n")


def _parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files compose parses from now on."""
    seen: list[str] = []
    real = compose.parse

    def spy(raw: bytes, file: str, diagnostics: Diagnostics) -> source.Located | None:
        seen.append(file)
        return real(raw, file, diagnostics)

    monkeypatch.setattr(compose, "parse", spy)
    return seen


def test_a_shared_base_is_parsed_once_across_loads(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws.write("base.yaml", BASE)
    ws.write("a.yaml", NODE)
    ws.write("b.yaml", NODE.replace("name: test-node", "name: test-node-b"))
    seen = _parses(monkeypatch)
    load("a.yaml")
    load("b.yaml")
    load("a.yaml")
    assert seen == ["a.yaml", "base.yaml", "b.yaml", "a.yaml"]


def test_a_changed_base_is_read_again_even_with_the_same_size_and_time(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = ws.write("base.yaml", BASE)
    ws.write("node.yaml", NODE)
    assert load("node.yaml").value("compute[gw-01].resources.cpus") == 1
    stat = base.stat()
    base.write_text(BASE.replace("cpus: 1", "cpus: 2"))
    os.utime(base, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert base.stat().st_size == stat.st_size
    assert base.stat().st_mtime_ns == stat.st_mtime_ns
    assert load("node.yaml").value("compute[gw-01].resources.cpus") == 2


def test_a_cached_base_names_itself_from_the_current_folder(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws.write("bases/base.yaml", BASE.replace("cpus: 1", "cpus: 0"))
    ws.write("node.yaml", NODE.replace("[base.yaml]", "[bases/base.yaml]"))
    with pytest.raises(BlueprintError) as first:
        load("node.yaml")
    assert "bases/base.yaml:6:23: error:" in str(first.value)
    monkeypatch.chdir(ws.root / "bases")
    with pytest.raises(BlueprintError) as second:
        load(ws.root / "node.yaml")
    assert "\nbase.yaml:6:23: error:" in "\n" + str(second.value)


def test_a_node_file_is_not_kept(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    ws.write("node.yaml", VALID)
    seen = _parses(monkeypatch)
    load("node.yaml")
    load("node.yaml")
    assert seen == ["node.yaml", "node.yaml"]


# -- libyaml and the pure-Python parser agree ----------------------------------


def _both(text: str, monkeypatch: pytest.MonkeyPatch) -> tuple[object, object]:
    """(tree and diagnostics as read now, the same with the pure-Python parser only)."""
    raw = text.encode()
    quick = Diagnostics()
    found = parse(raw, "f.yaml", quick)
    with monkeypatch.context() as patch:
        patch.setattr(source, "_CSafeLoader", None)
        pure = Diagnostics()
        expected = parse(raw, "f.yaml", pure)
    return (found, quick.items), (expected, pure.items)


def test_libyaml_is_used_for_plain_text() -> None:
    assert source._parse_plain(VALID, "f.yaml") is not None
    assert source._parse_plain(VALID + "a: !!str 1\n", "f.yaml") is None
    assert source._parse_plain(VALID.rstrip("\n"), "f.yaml") is None
    assert source._parse_plain(VALID + "a:\tb\n", "f.yaml") is None


def test_libyaml_and_pure_python_agree_on_the_repository(
    repo_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = sorted((repo_root / "blueprints").rglob("*.yaml"))
    files += sorted((repo_root / "tests" / "golden" / "cases").rglob("*.yaml"))
    assert files
    for path in files:
        found, expected = _both(path.read_text(), monkeypatch)
        assert found == expected, path


@pytest.mark.parametrize(
    "text",
    # Text on which the two parsers differ: libyaml takes the first five, which
    # PyYAML refuses, and reads the others differently.
    [
        "a: |#\n",
        "a: >#\n",
        "a: [b? c]\n",
        "a: 1\t\n",
        "a:\tb\n",
        "a: !\n",
        "- !\n",
        "\ufeff\ufeffa: 1\n",
    ],
)
def test_text_the_parsers_differ_on_goes_to_pure_python(
    text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    found, expected = _both(text, monkeypatch)
    assert found == expected


# Plain pieces of YAML (what libyaml gets) and a few that send text elsewhere.
TOKENS = [
    *"ab1:-  \n\n[]{}'\"#,.=~\\/",
    *["<<: ", "---", "...", " #", "- ", ": ", "    ", "0x1", "1e3", "''", "yes", "null"],
    *["{a: 1}", "[a, b]", "a,b", '"a\\\nb"', "2001-12-14", "a: a\n", "- a\n", "\n  - "],
    *["!", "&a ", "*a", "|", ">", "?", "%", "\t", "\u00e9"],
]


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    pieces=st.lists(st.sampled_from(TOKENS), max_size=50),
    start=st.integers(0, len(VALID)),
    keep=st.booleans(),
)
def test_libyaml_and_pure_python_agree_on_almost_yaml(
    pieces: list[str], start: int, keep: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    snippet = "".join(pieces)
    text = VALID[:start] + snippet + VALID[start:] if keep else snippet + "\n"
    found, expected = _both(text, monkeypatch)
    assert found == expected
