"""A policy result as JSON, SARIF 2.1.0 (code-scanning UIs) or Markdown (a pull
request comment). The table lives in the CLI; these are plain data and text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nodekit import __version__
from nodekit.policy.check import PolicyResult
from nodekit.policy.rules import BY_ID

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {"error": "error", "warning": "warning", "note": "note"}


def to_json(result: PolicyResult, fail_on: str) -> dict[str, Any]:
    """``{"command": "policy check", "status", "nodes": [{"node", "status", "findings"}],
    "findings": [...all...], "counts", "policy", "rules"}``."""
    failing = result.failing(fail_on)
    nodes = []
    for name in result.nodes:
        own = [f for f in result.findings if f.node == name]
        bad = any(f in failing for f in own)
        nodes.append({"node": name, "status": "failed" if bad else "ok",
                      "findings": [f.to_dict() for f in own]})  # fmt: skip
    return {
        "command": "policy check",
        "status": "failed" if failing else "ok",
        "fail_on": fail_on,
        "counts": result.counts(),
        "nodes": nodes,
        "findings": [f.to_dict() for f in result.findings],
        "policy": result.policy.file,
        "rules": [
            {"id": r.id, "sr": r.sr, "severity": result.policy.severity(r), "title": r.title}
            for r in BY_ID.values()
        ],
    }


def _uri(file: str) -> str:
    path = Path(file)
    if path.is_absolute():
        try:
            return path.relative_to(Path.cwd()).as_posix()
        except ValueError:
            return path.as_uri()
    return path.as_posix()


def to_sarif(result: PolicyResult) -> dict[str, Any]:
    """One SARIF 2.1.0 log: one run, every rule, every finding (waived ones carry
    an external suppression with the waiver's reason)."""
    rules = list(BY_ID.values())
    index = {r.id: i for i, r in enumerate(rules)}
    results = []
    for f in result.findings:
        item: dict[str, Any] = {
            "ruleId": f.rule,
            "ruleIndex": index[f.rule],
            "level": _LEVEL[f.severity],
            "message": {"text": f.message},
            "locations": [{
                "physicalLocation": {
                    "artifactLocation": {"uri": _uri(f.file)},
                    "region": {"startLine": f.line, "startColumn": f.column},
                },
                "logicalLocations": [{"name": f.path, "fullyQualifiedName":
                                      f"{f.node or 'policy'}/{f.path}", "kind": "member"}],
            }],
            "properties": {"node": f.node, "zone": f.zone, "sr": f.sr},
        }  # fmt: skip
        if f.waived_by is not None:
            item["suppressions"] = [{
                "kind": "external", "status": "accepted",
                "justification": f"{f.waived_by.reason} (expires {f.waived_by.expires})",
            }]  # fmt: skip
        results.append(item)
    driver = {
        "name": "nodekit-policy",
        "version": __version__,
        "informationUri": "https://nodekit.invalid/docs/security",
        "rules": [
            {
                "id": r.id,
                "name": "".join(part.title() for part in r.id.split("-")),
                "shortDescription": {"text": r.title},
                "fullDescription": {"text": f"{r.title} (IEC 62443-3-3 {r.sr})."},
                "help": {"text": r.help},
                "defaultConfiguration": {"level": _LEVEL[r.severity]},
                "properties": {"tags": ["security", "IEC 62443-3-3", r.sr]},
            }
            for r in rules
        ],
    }
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {"tool": {"driver": driver}, "results": results, "columnKind": "unicodeCodePoints"}
        ],
    }


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(result: PolicyResult, fail_on: str) -> str:
    """A heading with the verdict, the unwaived findings, then the waived ones."""
    counts = result.counts()
    verdict = "fails" if result.failing(fail_on) else "passes"
    lines = [
        f"### nodekit policy check {verdict} (fail on: {fail_on})",
        "",
        f"{len(result.nodes)} node(s): {counts['error']} error(s), {counts['warning']} "
        f"warning(s), {counts['note']} note(s), {counts['waived']} waived.",
        "",
    ]
    active, waived = result.active, [f for f in result.findings if f.waived_by]
    if active:
        lines += ["| severity | rule | SR | node | where | finding |", "|---|---|---|---|---|---|"]
        lines += [
            f"| {f.severity} | `{f.rule}` | {f.sr} | {f.node or '-'} | `{f.file}:{f.line}` "
            f"| {_cell(f.message)} |"
            for f in active
        ]
        lines.append("")
    if waived:
        lines += [
            "Waived:",
            "",
            "| rule | node | where | reason | expires |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| `{f.rule}` | {f.node} | `{f.file}:{f.line}` | {_cell(w.reason)} | {w.expires} |"
            for f in waived
            if (w := f.waived_by) is not None
        ]
        lines.append("")
    return "\n".join(lines)
