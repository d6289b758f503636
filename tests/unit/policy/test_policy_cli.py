"""`nodekit policy check` as pipelines use it: the shipped blueprints pass with
their policy file; waivers, expiry, severities and --fail-on decide the exit
code; SARIF validates against the SARIF 2.1.0 schema (fetched by the setup
from the npm package that ships it); bad policy files exit 2 with FILE:LINE."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from policy_cases import CASES, CLEAN

from nodekit.cli.main import main
from nodekit.render import PROJECT_ROOT
from nodekit.toolchain import cache_dir

SCHEMA = cache_dir() / "sarif" / "sarif-2.1.0.json"


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["policy", "check", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A folder with a blueprint whose only finding is plaintext MQTT into zone ops."""
    old, new = CASES["plaintext-across-boundary"]
    (tmp_path / "cell.yaml").write_text(CLEAN.replace(old, new))
    return tmp_path


def _policy(folder: Path, text: str) -> None:
    (folder / "nodekit-policy.yaml").write_text(text)


def test_shipped_blueprints_pass_with_their_waivers(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run([str(PROJECT_ROOT / "blueprints"), "--format", "json"], capsys)
    data = json.loads(out)
    assert code == 0 and data["status"] == "ok", data["counts"]
    assert data["policy"].endswith("blueprints/nodekit-policy.yaml")
    assert {n["node"] for n in data["nodes"]} >= {"lyon-additive-01", "bremen-additive-01"}
    assert data["counts"]["waived"] > 0 and data["counts"]["error"] == 0


def test_a_finding_fails_and_names_file_line_rule_and_sr(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run([str(site)], capsys)
    assert code == 1
    assert f"{site}/cell.yaml:17:14: error: cell: plaintext-across-boundary (SR 4.1): MQTT" in err
    assert "policy failed: 1 node(s), 1 error(s)" in out


def test_a_waiver_in_the_policy_file_beside_the_blueprints_applies(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    waiver = "reason: broker TLS comes with OT-112\n    expires: 2999-12-31\n"
    _policy(site, "waivers:\n  - rule: plaintext-across-boundary\n    zone: ops\n    " + waiver)
    code, out, _ = _run([str(site / "cell.yaml")], capsys)
    assert code == 0
    assert "waived: cell: plaintext-across-boundary" in out
    assert "[until 2999-12-31: broker TLS comes with OT-112]" in out


def test_a_waiver_for_another_node_or_zone_does_not_apply(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for scope in ("node: other-node", "zone: ot"):
        _policy(site, f"waivers:\n  - rule: plaintext-across-boundary\n    {scope}\n"
                      "    reason: r\n    expires: 2999-12-31\n")  # fmt: skip
        assert _run([str(site)], capsys)[0] == 1, scope


def test_an_expired_waiver_fails_at_its_line(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _policy(site, "waivers:\n  - rule: plaintext-across-boundary\n"
                  "    reason: temporary\n    expires: 2020-01-31\n")  # fmt: skip
    code, _, err = _run([str(site)], capsys)
    assert code == 1
    assert f"{site}/nodekit-policy.yaml:2:1: error: waiver-expired (SR 5.1): the waiver of " in err
    assert "expired on 2020-01-31 (temporary)" in err
    assert "cell: plaintext-across-boundary" in err  # no longer waived


def test_severities_and_fail_on(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _policy(site, "severities: {plaintext-across-boundary: warning}\n")
    assert _run([str(site)], capsys)[0] == 0
    assert _run([str(site), "--fail-on", "warning"], capsys)[0] == 1
    _policy(site, "severities: {plaintext-across-boundary: 'off'}\n")
    code, out, _ = _run([str(site), "--fail-on", "note"], capsys)
    assert code == 0 and "0 error(s), 0 warning(s)" in out
    _policy(site, "")
    assert _run([str(site), "--fail-on", "never"], capsys)[0] == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("severities: {no-such-rule: error}\n",
         "nodekit-policy.yaml:1:14: error: severities.no-such-rule: unknown rule 'no-such-rule'"),
        ("waivers:\n  - rule: purdue-skip\n    reason: r\n    expires: someday\n",
         "nodekit-policy.yaml:4:14: error: waivers[0].expires:"),
        ("waivers:\n  - rule: purdue-skip\n    expires: 2030-01-01\n",
         "nodekit-policy.yaml:2:5: error: waivers[0].reason: required key is missing"),
        ("colour: blue\n", "nodekit-policy.yaml:1:1: error: colour: unknown key"),
    ],
)  # fmt: skip
def test_a_bad_policy_file_exits_2_naming_file_line_and_key(
    site: Path, text: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _policy(site, text)
    code, _, err = _run([str(site)], capsys)
    assert code == 2
    assert message in err, err
    assert "Traceback" not in err


def test_sarif_validates_against_the_schema(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert SCHEMA.is_file(), f"{SCHEMA} is missing: `make setup` fetches it"
    _policy(site, "waivers:\n  - rule: plaintext-across-boundary\n"
                  "    reason: until TLS\n    expires: 2999-01-01\n")  # fmt: skip
    (site / "more.yaml").write_text(
        CLEAN.replace("name: cell", "name: cell-2")
        .replace("10.50.", "10.51.")  # both uplink to one hub: their zones must differ
        .replace(*CASES["conduit-purpose"])
    )
    code, out, _ = _run([str(site), "--format", "sarif"], capsys)
    assert code == 1  # cell-2 has a conduit without purpose
    log = json.loads(out)
    schema = json.loads(SCHEMA.read_text())
    errors = sorted(Draft202012Validator(schema).iter_errors(log), key=str)
    assert not errors, [e.message for e in errors[:5]]
    (run,) = log["runs"]
    rules = [r["id"] for r in run["tool"]["driver"]["rules"]]
    by_rule = {r["ruleId"]: r for r in run["results"]}
    assert rules[by_rule["conduit-purpose"]["ruleIndex"]] == "conduit-purpose"
    waived = by_rule["plaintext-across-boundary"]
    assert waived["suppressions"][0]["justification"] == "until TLS (expires 2999-01-01)"
    location = by_rule["conduit-purpose"]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"].endswith("more.yaml")
    assert location["region"]["startLine"] == 19


def test_markdown_for_a_pull_request(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run([str(site), "--format", "markdown"], capsys)
    assert code == 1
    assert out.startswith("### nodekit policy check fails (fail on: error)")
    assert "| error | `plaintext-across-boundary` | SR 4.1 | cell | `" in out


def test_rules_are_listed_with_their_sr(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "rules", "--format", "json"]) == 0
    rules = json.loads(capsys.readouterr().out)["rules"]
    assert {"id": "purdue-skip", "sr": "SR 5.1"}.items() <= rules[1].items()
    assert all(r["sr"].startswith("SR ") for r in rules)


def test_an_invalid_blueprint_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = CLEAN.replace(
        "security_level: 2, purdue_level: 2}", "security_level: 5, purdue_level: 2.5}"
    )
    (tmp_path / "cell.yaml").write_text(text)
    code, _, err = _run([str(tmp_path)], capsys)
    assert code == 2
    assert "network.zones[ot].purdue_level: 2.5 is not a Purdue level: one of 0, 1, 2, 3" in err
    assert "network.zones[ot].security_level: 5 is not one of 1, 2, 3, 4" in err
