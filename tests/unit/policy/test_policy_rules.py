"""Each policy rule on a blueprint that breaks it and on one that keeps it; the
findings (rule, key path, line, message) are golden data in expected.json.

Regenerate after an intended change with NODEKIT_REGEN_GOLDEN=1 and review
the diff of expected.json.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from policy_cases import ALSO, CASES, CLEAN

from nodekit.blueprint import load
from nodekit.policy.check import Policy, check
from nodekit.policy.rules import RULES, Limits

EXPECTED = Path(__file__).with_name("expected.json")
REGEN = os.environ.get("NODEKIT_REGEN_GOLDEN") == "1"


def _findings(tmp_path: Path, case: str) -> list[dict[str, object]]:
    old, new = CASES[case]
    assert old in CLEAN, case
    (tmp_path / "cell.yaml").write_text(CLEAN.replace(old, new, 1) if old else CLEAN)
    result = check([load(tmp_path / "cell.yaml")], Policy())
    return [
        {"rule": f.rule, "severity": f.severity, "sr": f.sr, "path": f.path, "line": f.line,
         "zone": f.zone, "message": f.message}
        for f in result.findings
    ]  # fmt: skip


def test_every_rule_has_a_case() -> None:
    assert {r.id for r in RULES} <= set(CASES)


@pytest.mark.parametrize("case", sorted(CASES))
def test_findings_match_golden(case: str, tmp_path: Path) -> None:
    found = _findings(tmp_path, case)
    expected = json.loads(EXPECTED.read_text()) if EXPECTED.exists() else {}
    if REGEN:
        expected[case] = found
        EXPECTED.write_text(json.dumps(expected, indent=2, sort_keys=True) + "\n")
    assert found == expected[case]
    if case == "clean":
        assert found == []
    else:  # the case breaks its own rule, and only that rule
        assert {f["rule"] for f in found} == {case} | ALSO.get(case, set()), found


def test_a_wider_limit_lets_the_range_pass(tmp_path: Path) -> None:
    old, new = CASES["port-range-wide"]
    (tmp_path / "cell.yaml").write_text(CLEAN.replace(old, new))
    blueprint = load(tmp_path / "cell.yaml")
    assert check([blueprint], Policy(limits=Limits(port_range=300))).findings == ()
