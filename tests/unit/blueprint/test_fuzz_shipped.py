"""Fuzzing the shipped blueprints: whatever is done to them, a located verdict.

Structure-aware mutations of the files in blueprints/ (a site, the base and
the overlay it extends, the hub): junk values and types, removed and renamed
keys, text edits that break YAML, alias bombs, deep nesting, other encodings,
huge files. Every case ends in exit 0, or exit 2 with one-line
``FILE:LINE:COL: error:`` diagnostics and no traceback, within
:data:`CASE_LIMIT_S`. ``make test`` runs a sample (``NODEKIT_FUZZ_EXAMPLES``,
default 60 per test); ``make stress`` runs 2,500 per test (10,000 cases).
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import re
import shutil
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_properties import VALUES, YAMLISH, _get, _paths

from nodekit.cli.main import main

REPO = Path(__file__).resolve().parents[3]
LINE = re.compile(r"^.+:\d+:\d+: (error|warning): [^\n]+$")
CASE_LIMIT_S = 20.0  # generous: a loaded CI machine; typical cases take milliseconds
EXAMPLES = int(os.environ.get("NODEKIT_FUZZ_EXAMPLES", "60"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# file mutated -> the Node file validated (a base or an overlay is checked through a site)
TARGETS = {
    "sites/lyon-additive-01.yaml": "sites/lyon-additive-01.yaml",
    "sites/bremen-additive-01-ssh.yaml": "sites/bremen-additive-01-ssh.yaml",
    "bases/additive-cell.yaml": "sites/lyon-additive-01.yaml",
    "overlays/eu-west.yaml": "sites/porto-additive-01.yaml",
    "hubs/eu-west-hub.yaml": "hubs/eu-west-hub.yaml",
}
KEYS = ["name", "zone", "host", "cidr", "address", "package", "settings", "ports", "role"]


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fuzz") / "blueprints"
    shutil.copytree(REPO / "blueprints", root)
    return root


def verdict(tree: Path, mutated: str, content: bytes) -> None:
    """Write one mutated file, validate the node through it, restore the file."""
    path = tree / mutated
    original = (REPO / "blueprints" / mutated).read_bytes()
    path.write_bytes(content)
    try:
        out, err = io.StringIO(), io.StringIO()
        start = time.monotonic()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["validate", str(tree / TARGETS[mutated]), "--format", "json"])
        seconds = time.monotonic() - start
    finally:
        path.write_bytes(original)
    assert seconds < CASE_LIMIT_S, f"{seconds:.1f} s"
    assert "Traceback" not in err.getvalue(), err.getvalue()[-2000:]
    assert code in (0, 2), (code, err.getvalue()[-2000:])
    report = json.loads(out.getvalue())
    assert report["ok"] is (code == 0)
    for diagnostic in report["diagnostics"]:
        text = f"{diagnostic['file']}:{diagnostic['line']}:{diagnostic['column']}: "
        text += f"{diagnostic['severity']}: {diagnostic['message']}"
        assert LINE.match(text), text
    if code == 2:
        assert any(d["severity"] == "error" for d in report["diagnostics"]), report


FILES = st.sampled_from(sorted(TARGETS))


@st.composite
def data_mutations(draw: st.DrawFn) -> tuple[str, bytes]:
    """Junk values and types, dropped keys, renamed keys, duplicated items."""
    name = draw(FILES)
    data = yaml.safe_load((REPO / "blueprints" / name).read_text())
    for _ in range(draw(st.integers(1, 4))):
        paths = list(_paths(data))
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, key = _get(data, path[:-1]), path[-1]
        action = draw(st.sampled_from(["drop", "set", "rename", "unknown", "duplicate"]))
        if action == "drop":
            del parent[key]
        elif action == "set":
            parent[key] = draw(VALUES)
        elif action == "rename" and isinstance(parent, dict):
            parent[draw(st.sampled_from(KEYS) | st.text(min_size=1, max_size=8))] = parent.pop(key)
        elif action == "unknown" and isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=10))] = draw(VALUES)
        elif action == "duplicate" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[key]))
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    return name, text.encode()


@st.composite
def text_mutations(draw: st.DrawFn) -> tuple[str, bytes]:
    """Edits of the real text that often break YAML (tabs, brackets, quotes, anchors)."""
    name = draw(FILES)
    text = (REPO / "blueprints" / name).read_text()
    for _ in range(draw(st.integers(1, 3))):
        start = draw(st.integers(0, len(text)))
        end = draw(st.integers(start, min(len(text), start + 40)))
        text = text[:start] + draw(YAMLISH) + text[end:]
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "utf-16", "latin-1"]))
    return name, text.encode(encoding, errors="replace")


@st.composite
def attacks(draw: st.DrawFn) -> tuple[str, bytes]:
    """Alias bombs, deep nesting, huge files: bounded work, a limit named."""
    name = draw(FILES)
    text = (REPO / "blueprints" / name).read_text()
    kind = draw(st.sampled_from(["bomb", "nesting", "huge", "long-list", "long-line"]))
    if kind == "bomb":
        width, depth = draw(st.integers(2, 12)), draw(st.integers(2, 9))
        lines = [f"x0: &x0 [{', '.join(['v'] * width)}]"]
        lines += [f"x{i}: &x{i} [{', '.join([f'*x{i - 1}'] * width)}]" for i in range(1, depth)]
        text = "\n".join(lines) + "\n" + text
    elif kind == "nesting":
        depth = draw(st.integers(50, 5000))
        opener = draw(st.sampled_from(["[", "{a: ", "- "]))
        text += "junk: " + opener * depth + "\n"
    elif kind == "huge":
        text += "# " + "x" * draw(st.integers(900_000, 1_500_000)) + "\n"
    elif kind == "long-list":
        count = draw(st.integers(1000, 60_000))
        text += "labels_junk:\n" + "".join(f"  - item{i}\n" for i in range(count))
    else:
        text += "metadata_junk: " + "y" * draw(st.integers(10_000, 500_000)) + "\n"
    return name, text.encode()


@FUZZ
@given(case=data_mutations())
def test_data_mutations_get_a_located_verdict(tree: Path, case: tuple[str, bytes]) -> None:
    verdict(tree, *case)


@FUZZ
@given(case=text_mutations())
def test_text_mutations_get_a_located_verdict(tree: Path, case: tuple[str, bytes]) -> None:
    verdict(tree, *case)


@FUZZ
@given(case=attacks())
def test_attacks_are_refused_in_bounded_time(tree: Path, case: tuple[str, bytes]) -> None:
    verdict(tree, *case)


@FUZZ
@given(raw=st.binary(max_size=400), name=FILES)
def test_random_bytes_in_a_shipped_file(tree: Path, raw: bytes, name: str) -> None:
    verdict(tree, name, raw)


def test_the_shipped_files_pass_untouched(tree: Path) -> None:
    """The verdict is not vacuous: untouched, every target validates (exit 0)."""
    for target in set(TARGETS.values()):
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            assert main(["validate", str(tree / target), "--format", "json"]) == 0


def test_a_huge_file_is_refused_at_once_naming_the_limit(tree: Path) -> None:
    big = (REPO / "blueprints/sites/lyon-additive-01.yaml").read_text() + "# " + "x" * 2**21
    err = io.StringIO()
    start = time.monotonic()
    (tree / "sites/lyon-additive-01.yaml").write_text(big)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            code = main(["validate", str(tree / "sites/lyon-additive-01.yaml")])
    finally:
        shutil.copy(REPO / "blueprints/sites/lyon-additive-01.yaml", tree / "sites")
    assert code == 2 and time.monotonic() - start < 2
    assert "a blueprint may be at most 1 MiB" in err.getvalue(), err.getvalue()


def test_a_long_plain_list_names_the_value_limit_without_blaming_aliases(tree: Path) -> None:
    text = (REPO / "blueprints/sites/lyon-additive-01.yaml").read_text()
    text += "junk:\n" + "  - 1\n" * 120_000  # 0.7 MiB: under the size limit
    err = io.StringIO()
    (tree / "sites/lyon-additive-01.yaml").write_text(text)
    start = time.monotonic()
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            code = main(["validate", str(tree / "sites/lyon-additive-01.yaml")])
    finally:
        shutil.copy(REPO / "blueprints/sites/lyon-additive-01.yaml", tree / "sites")
    assert code == 2 and time.monotonic() - start < CASE_LIMIT_S
    message = err.getvalue()
    assert "too many values: more than 100000 in one file" in message, message
    assert "alias" not in message and "split it into bases and overlays" in message


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("metadata:\n\tname: x\n", "indent with spaces, not tabs"),
        ("metadata: {name: [x, y\n", "every '[' needs its ']'"),
        ("metadata: {name: x\n", "every '{' needs its '}'"),
        ("a: b: c\n", "quote a value that contains ': '"),
        ("a: 'open\n", "close the quote"),
    ],
)
def test_yaml_slips_get_a_sentence_saying_how_to_fix_them(tree: Path, text: str, hint: str) -> None:
    err = io.StringIO()
    (tree / "sites/lyon-additive-01.yaml").write_text(text)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            assert main(["validate", str(tree / "sites/lyon-additive-01.yaml")]) == 2
    finally:
        shutil.copy(REPO / "blueprints/sites/lyon-additive-01.yaml", tree / "sites")
    assert hint in err.getvalue(), err.getvalue()
