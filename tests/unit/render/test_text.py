"""The quick writers of rendered text against PyYAML and json, and what render keeps.

``yaml_block`` and ``json_indented`` must give the very text of
``yaml.safe_dump`` and ``json.dumps`` with render's options, whatever the data.
"""

from __future__ import annotations

import json
import pprint
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nodekit.render as render_module
from nodekit import toolchain
from nodekit.render import text

FAST = settings(max_examples=400, deadline=None)

# Text PyYAML quotes, folds or tags in all sorts of ways, and plain names.
PLAIN_WORDS = [
    *["true", "no", "Yes", "OFF", "null", "~", "1", "+1", "0x1f", "0o17", "1e3", "1.5"],
    *[".inf", "-.NaN", "1:20", "2001-12-14", "=", "<<", "---", "...", "-", "- a", "-a"],
    *["a: b", "a:", ":a", "? a", "?a", "a #b", "a#b", "#", "'", "a'b", "{{ x['y'] }}"],
    *[" a", "a ", "[a]", "a, b", "@a", "`a", "%a", "!a", "&a", "*a", "|", ">", '"a"'],
    *["deb [trusted=yes] file:/srv/x ./", "10.41.1.0/24", "1883/tcp", "gw-01", "x" * 100],
]
OTHER_WORDS = ["x" * 101, "", "é", "a\nb", "\t", "\x85", "a\x00"]
PLAIN_TEXT = st.one_of(
    st.sampled_from(PLAIN_WORDS),
    st.text(alphabet=" -:#?'\"[]{},&*!|>%@`.~=<01aZeE_/+\\yn", min_size=1, max_size=12),
    st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=30),
)
TEXT = PLAIN_TEXT | st.sampled_from(OTHER_WORDS) | st.text(max_size=6)


def _data(text: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    scalars = st.one_of(text, st.integers(), st.booleans(), st.none())
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
        max_leaves=25,
    )


PLAIN = st.dictionaries(PLAIN_TEXT, _data(PLAIN_TEXT), min_size=1, max_size=5)
ANY = st.dictionaries(TEXT, _data(TEXT), max_size=5) | _data(TEXT)


def _safe_dump(data: Any) -> str:
    return text.library_yaml(data)


def _dumps(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True)


DEEP: Any = "x"
for _ in range(120):
    DEEP = [DEEP]


def _outcome(write: Any, data: Any) -> str:
    try:
        return str(write(data))
    except Exception as error:  # the same error as the library's, if any
        return f"{type(error).__name__}: {error}"


@FAST
@given(data=PLAIN)
def test_yaml_block_is_yaml_safe_dump_on_plain_data(data: Any) -> None:
    assert text.yaml_block(data) == _safe_dump(data)


@FAST
@given(data=ANY)
def test_yaml_block_is_yaml_safe_dump_on_any_data(data: Any) -> None:
    assert _outcome(text.yaml_block, data) == _outcome(_safe_dump, data)


@pytest.mark.parametrize("word", PLAIN_WORDS + OTHER_WORDS)
def test_yaml_block_quotes_as_pyyaml_does(word: str) -> None:
    data = {word: word, "list": [word, {word: [word]}]} if word else {"key": word}
    assert _outcome(text.yaml_block, data) == _outcome(_safe_dump, data)


@FAST
@given(data=PLAIN | ANY)
def test_json_indented_is_json_dumps(data: Any) -> None:
    assert _outcome(text.json_indented, data) == _outcome(_dumps, data)


LITERAL_TEXT = st.text(max_size=8) | st.text(min_size=20, max_size=140) | st.just("a b " * 30)
LITERALS = st.recursive(
    st.one_of(LITERAL_TEXT, st.integers(), st.integers(min_value=10**60), st.booleans())
    | st.none()
    | st.floats(),
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.lists(inner, max_size=5).map(tuple),
        st.dictionaries(LITERAL_TEXT | st.integers(), inner, max_size=5),
    ),
    max_leaves=40,
)


@FAST
@given(data=LITERALS, width=st.sampled_from([96, 40, 20, 5, 1]))
def test_python_literal_is_pprint_pformat(data: Any, width: int) -> None:
    expected = pprint.pformat(data, width=width, sort_dicts=False)
    assert text.python_literal(data, width) == expected


def test_python_literal_of_odd_data_is_pprint_pformat() -> None:
    inside: list[Any] = [1]
    inside.append(inside)
    shared = ["x" * 50]
    for data in (inside, {"set": {1, 2}}, [shared, shared], DEEP, ("x" * 200,)):
        assert text.python_literal(data, 40) == pprint.pformat(data, width=40, sort_dicts=False)


@pytest.mark.parametrize(
    "data",
    [
        {"a": [1], "b": {"c": [[], {}, [[1, "x"]]]}},
        {"shared": (shared := [1, 2]), "again": shared},  # PyYAML anchors it
        {"tuple": (1, 2)},
        {1: "int key", "b": 2},
        {"float": 1.5, "long": "x" * 300},
        {"deep": DEEP},  # deeper than the quick writers go
        {},
        [],
        "text",
    ],
)
def test_odd_data_gives_the_libraries_text(data: Any) -> None:
    assert _outcome(text.yaml_block, data) == _outcome(_safe_dump, data)
    assert _outcome(text.json_indented, data) == _outcome(_dumps, data)


def test_the_image_reference_follows_its_recipe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recipe = {}
    for name in ("IMAGE_SCRIPT", "IMAGE_PACKAGES", "VERSIONS_FILE"):
        path = tmp_path / name
        path.write_bytes(getattr(toolchain, name).read_bytes())
        monkeypatch.setattr(toolchain, name, path)
        recipe[name] = path
    first = render_module.cached_image_ref()
    assert first == toolchain.node_image_ref()
    assert render_module.cached_image_ref() == first
    with recipe["IMAGE_PACKAGES"].open("a") as packages:
        packages.write("\n# one more line\n")
    second = render_module.cached_image_ref()
    assert second != first
    assert second == toolchain.node_image_ref()


def test_the_image_reference_is_hashed_once_for_a_settled_recipe(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []

    def counted() -> str:
        calls.append("hash")
        return toolchain.node_image_ref()

    monkeypatch.setattr(render_module, "node_image_ref", counted)
    monkeypatch.setattr(render_module, "_image", {})
    first = render_module.cached_image_ref()
    assert first == render_module.cached_image_ref() == toolchain.node_image_ref()
    assert calls == ["hash"]
