"""`nodekit policy`: OT security rules (IEC 62443) over blueprints, with waivers."""

from __future__ import annotations

import enum
import json
import sys
from pathlib import Path

import typer
from rich.table import Table

from nodekit.blueprint.compose import display
from nodekit.cli.app import app
from nodekit.cli.output import emit_json, err, load_nodes, out, print_table
from nodekit.policy.check import SEVERITIES, PolicyResult, check, find_policy, load_policy
from nodekit.policy.formats import to_json, to_markdown, to_sarif
from nodekit.policy.rules import BY_ID

policy_app = typer.Typer(
    name="policy",
    help="OT security policy (IEC 62443 zones and conduits) over blueprints (docs/security.md).",
    no_args_is_help=True,
)
app.add_typer(policy_app)


class PolicyFormat(enum.StrEnum):
    table = "table"
    json = "json"
    sarif = "sarif"
    markdown = "markdown"


class FailOn(enum.StrEnum):
    error = "error"
    warning = "warning"
    note = "note"
    never = "never"


POLICY = typer.Option(
    None, "--policy", help="The policy file (default: nodekit-policy.yaml beside the blueprints)."
)


def run_policy(paths: list[Path], policy_file: Path | None) -> PolicyResult:
    """Load the blueprints and the policy file; check. Bad input raises (exit 2)."""
    blueprints = load_nodes(paths)
    found = policy_file or find_policy(paths)
    return check(blueprints, load_policy(found))


def _shown(file: str | None) -> str:
    return display(Path(file)) if file else "none"


@policy_app.command(name="check")
def check_command(
    paths: list[Path] = typer.Argument(..., help="Blueprint files or folders of them."),
    policy: Path | None = POLICY,
    fail_on: FailOn = typer.Option(
        FailOn.error, "--fail-on", help="Exit 1 on unwaived findings at or above this severity."
    ),
    format: PolicyFormat = typer.Option(
        PolicyFormat.table,
        "--format",
        "-f",
        help="table (people), json (pipelines), sarif (code-scanning UIs), markdown (PR comments).",
    ),
) -> None:
    """Check blueprints against the OT security rules, each mapped to its
    IEC 62443-3-3 system requirement (`nodekit policy rules` lists them).

    Findings point at FILE:LINE like validation errors. The policy file sets
    severities (or `off`), limits, and waivers (rule, optional node and zone,
    reason, expiry date; an expired waiver is an error). Exit 1 when an
    unwaived finding is at or above --fail-on, 2 on invalid input.

    Example: `nodekit policy check blueprints/ --format sarif > policy.sarif`
    """
    result = run_policy(paths, policy)
    failing = result.failing(fail_on.value)
    if format is PolicyFormat.json:
        emit_json(to_json(result, fail_on.value))
    elif format is PolicyFormat.sarif:
        sys.stdout.write(json.dumps(to_sarif(result), indent=2) + "\n")
    elif format is PolicyFormat.markdown:
        sys.stdout.write(to_markdown(result, fail_on.value) + "\n")
    else:
        for finding in result.active:
            line = str(finding)
            (err if finding in failing else out).print(line, markup=False, highlight=False)
        for finding in result.findings:
            if finding.waived_by is not None:
                waiver = finding.waived_by
                out.print(
                    str(finding).replace(f": {finding.severity}: ", ": waived: ", 1)
                    + f" [until {waiver.expires}: {waiver.reason}]",
                    markup=False, highlight=False,
                )  # fmt: skip
        counts = result.counts()
        summary = ", ".join(f"{counts[s]} {s}(s)" for s in SEVERITIES)
        verdict = "failed" if failing else "passed"
        out.print(
            f"policy {verdict}: {len(result.nodes)} node(s), {summary}, {counts['waived']} "
            f"waived (fail on {fail_on.value}; policy file: {_shown(result.policy.file)})",
            markup=False, highlight=False,
        )  # fmt: skip
    if failing:
        raise typer.Exit(1)


@policy_app.command(name="rules")
def rules_command(
    format: PolicyFormat = typer.Option(
        PolicyFormat.table, "--format", "-f", help="table or json."
    ),
) -> None:
    """The built-in rules: id, default severity, the IEC 62443-3-3 SR, what it checks."""
    rules = [
        {"id": r.id, "severity": r.severity, "sr": r.sr, "title": r.title, "help": r.help}
        for r in BY_ID.values()
    ]
    if format is PolicyFormat.json:
        emit_json({"rules": rules})
        return
    table = Table("RULE", "SEVERITY", "SR", "CHECKS", box=None, pad_edge=False)
    for r in rules:
        table.add_row(r["id"], r["severity"], r["sr"], r["title"])
    print_table(table)
