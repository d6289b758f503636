"""Reading YAML: syntax errors, odd documents and YAML features, all located."""

from __future__ import annotations

import pytest
from blueprint_cases import VALID, Workspace

from nodekit.blueprint import load


def test_yaml_syntax_error_is_located(ws: Workspace) -> None:
    text = VALID.replace("ports: [1883/tcp]", "ports: [1883/tcp")
    assert ws.check(text) == [
        "node.yaml:21:8: error: YAML syntax: while parsing a flow sequence (line 20) "
        "expected ',' or ']', but got ':': close the list: every '[' needs its ']', items "
        "separated by ','"
    ]


def test_duplicate_keys_are_an_error(ws: Workspace) -> None:
    text = VALID.replace("  target: local\n", "  target: local\n  region: us-east\n")
    assert ws.check(text) == ["node.yaml:9:3: error: duplicate key 'region' (first at line 6)"]


def test_non_string_keys_are_an_error(ws: Workspace) -> None:
    text = VALID.replace("  target: local\n", "  target: local\n  on: 1\n  8080: x\n")
    assert ws.check(text) == [
        "node.yaml:9:3: error: key on is read as bool, not text: quote it ('on')",
        "node.yaml:10:3: error: key 8080 is read as int, not text: quote it ('8080')",
    ]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "x.yaml:1:1: error: empty file: expected a blueprint (apiVersion, kind, ...)"),
        (b"# only a comment\n", "x.yaml:1:1: error: empty file: expected a blueprint"),
        (b"- a\n- b\n", "x.yaml:1:1: error: a blueprint is a mapping (apiVersion: nodekit/v1"),
        (b"just text\n", "x.yaml:1:1: error: a blueprint is a mapping"),
        (b"a: 1\n\xff\xfe\n", "x.yaml:2:1: error: not UTF-8 text (byte 0xff)"),
        (b"a: 1\x00\n", "x.yaml:1:5: error: YAML syntax: unacceptable character '\\x00'"),
        (b"a: 1\n---\nb: 2\n", "x.yaml:2:1: error: YAML syntax: expected a single document"),
        (b"a: &x [*x]\n", "x.yaml:1:4: error: an alias refers to the value that contains it"),
        (b"a: !shell ls\n", "x.yaml:1:4: error: cannot read value: could not determine"),
        (b"a: [" * 3000 + b"\n", "x.yaml:1:1: error: values nested too deeply"),
    ],
)
def test_odd_files_give_one_located_error(ws: Workspace, content: bytes, expected: str) -> None:
    (ws.root / "x.yaml").write_bytes(content)
    found = ws.diagnostics("x.yaml")
    assert any(line.startswith(expected) for line in found), found


def test_alias_bombs_stop_early(ws: Workspace) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    ws.write("x.yaml", "\n".join(lines) + "\n")
    assert ws.diagnostics("x.yaml")[0].startswith("x.yaml:1:")
    assert "too many values" in ws.diagnostics("x.yaml")[0]


def test_anchors_aliases_and_merge_keys_work_and_keep_origins(ws: Workspace) -> None:
    text = VALID.replace(
        "  - name: edge-01\n    role: edge\n",
        "  - &small\n    name: edge-01\n    role: edge\n    resources: {cpus: 1}\n",
    ).replace(
        "  - name: hist-01\n    role: controller\n",
        "  - <<: *small\n    name: hist-01\n    role: controller\n",
    )
    ws.write("node.yaml", text)
    blueprint = load("node.yaml")
    assert blueprint.node.host("hist-01").resources is not None
    assert blueprint.data["compute"][2]["resources"]["cpus"] == 1
    origin = blueprint.origin("compute[hist-01].resources.cpus")
    assert origin is not None
    assert origin.line == text.splitlines().index("    resources: {cpus: 1}") + 1


def test_yaml_1_1_booleans_in_text_fields_are_explained(ws: Workspace) -> None:
    text = VALID.replace("region: eu-west", "region: no")
    assert ws.check(text) == [
        "node.yaml:6:11: error: site.region: expected text, got False (quote it to make it text)"
    ]


def test_huge_numbers_are_refused_not_crashed_on(ws: Workspace) -> None:
    text = VALID.replace("vlan: 41", "vlan: " + "9" * 5000)
    (found,) = ws.check(text)
    assert found.startswith("node.yaml:13:13: error: network.zones[ot].vlan: ")
