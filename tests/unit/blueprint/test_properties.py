"""Property tests: whatever the input, a located verdict and never a traceback.

Valid blueprints are mutated (keys dropped, values of any type, unknown keys,
duplicated items), YAML-ish text and bytes are thrown at the loader; every
outcome must be exit 0 or exit 2 with one-line `FILE:LINE:COL: error|warning:`
diagnostics.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from blueprint_cases import VALID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nodekit.blueprint import validate
from nodekit.cli.main import main

LINE = re.compile(r"^.+:\d+:\d+: (error|warning): ")
DATA = yaml.safe_load(VALID)
FAST = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.text(max_size=12),
    st.sampled_from(
        [
            "ot",
            "it",
            "gw-01",
            "hist-01",
            "broker",
            "1883/tcp",
            "10.41.1.300",
            "10.41.1.7",
            "10.41.1.0/24",
            "uplink",
            "Europe/Paris",
            "mosquitto",
            "printer",
            "gateway",
            "",
        ]
    ),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)

# Pieces of YAML syntax, to build text that is often almost YAML.
TOKENS = [*"ab1:-  \n\n[]{}&*!|>'\"#%,?.\t", "<<: ", "*a", "&a ", "---", "\u00e9", "\x00"]
YAMLISH = st.lists(st.sampled_from(TOKENS), max_size=60).map("".join)


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    items: Any = (
        data.items()
        if isinstance(data, dict)
        else enumerate(data)
        if isinstance(data, list)
        else ()
    )
    for key, value in items:
        yield (*prefix, key)
        yield from _paths(value, (*prefix, key))


def _get(data: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        data = data[key]
    return data


@st.composite
def mutated(draw: st.DrawFn) -> Any:
    data = copy.deepcopy(DATA)
    for _ in range(draw(st.integers(1, 4))):
        paths = list(_paths(data))
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, key = _get(data, path[:-1]), path[-1]
        action = draw(st.sampled_from(["drop", "set", "unknown", "duplicate"]))
        if action == "drop":
            del parent[key]
        elif action == "set":
            parent[key] = draw(VALUES)
        elif action == "unknown" and isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=10))] = draw(VALUES)
        elif action == "duplicate" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[key]))
    return data


@st.composite
def text_edits(draw: st.DrawFn) -> str:
    text = VALID
    for _ in range(draw(st.integers(1, 3))):
        start = draw(st.integers(0, len(text)))
        end = draw(st.integers(start, min(len(text), start + 30)))
        snippet = draw(YAMLISH)
        text = text[:start] + snippet + text[end:]
    return text


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("properties")


def verdict(path: Path) -> None:
    """Engine and CLI agree, and every diagnostic is one located line."""
    result = validate([path])
    for diagnostic in result.diagnostics:
        assert LINE.match(str(diagnostic)), str(diagnostic)
        assert "\n" not in str(diagnostic)
    if result.ok:
        assert len(result.blueprints) == 1
        json.dumps(result.blueprints[0].data)
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(["validate", str(path), "--format", "json"])
    assert code == (0 if result.ok else 2)
    assert json.loads(stdout.getvalue())["ok"] is result.ok
    assert "Traceback" not in stderr.getvalue()


@FAST
@given(data=mutated())
def test_mutated_blueprints_get_a_located_verdict(folder: Path, data: Any) -> None:
    path = folder / "mutated.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    verdict(path)


@FAST
@given(text=text_edits())
def test_edited_text_gets_a_located_verdict(folder: Path, text: str) -> None:
    path = folder / "edited.yaml"
    path.write_text(text)
    verdict(path)


@FAST
@given(text=YAMLISH)
def test_random_yaml_text_gets_a_located_verdict(folder: Path, text: str) -> None:
    path = folder / "random.yaml"
    path.write_text(text)
    verdict(path)


@settings(max_examples=60, deadline=None)
@given(raw=st.binary(max_size=200))
def test_random_bytes_get_a_located_verdict(folder: Path, raw: bytes) -> None:
    path = folder / "bytes.yaml"
    path.write_bytes(raw)
    verdict(path)


def test_the_mutations_do_break_things(folder: Path) -> None:
    """Guard against a vacuous property: a dropped required key must fail."""
    data = copy.deepcopy(DATA)
    del data["site"]["timezone"]
    path = folder / "broken.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    assert not validate([path]).ok
