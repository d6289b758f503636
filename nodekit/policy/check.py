"""Policy check: the rules over merged blueprints, with the policy file's
severities, limits and waivers; findings located at FILE:LINE.

The policy file (``nodekit-policy.yaml``, found beside the blueprints or given
with ``--policy``) holds what a site's security owner decides, never the
blueprints themselves::

    severities: {port-range-wide: error, zone-unclassified: off}
    limits: {port_range: 100}
    waivers:
      - rule: plaintext-across-boundary
        node: lyon-additive-01      # optional: else every node
        zone: it                    # optional: else every zone
        reason: site broker has no TLS listener yet (ticket OT-112)
        expires: 2027-06-30         # an expired waiver is itself an error
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError

from nodekit.blueprint import Blueprint
from nodekit.blueprint.loader import POLICY_FILE
from nodekit.blueprint.model import Model
from nodekit.blueprint.report import Report
from nodekit.blueprint.source import Diagnostics, Origin, parse
from nodekit.errors import BlueprintError, InputError
from nodekit.policy.rules import BY_ID, RULES, WAIVER_EXPIRED, Limits, Rule

SEVERITIES = ("error", "warning", "note")  # most severe first
Level = Literal["error", "warning", "note", "off"]


class _Waiver(Model):
    rule: str
    node: str | None = None
    zone: str | None = None
    reason: str = Field(min_length=1)
    expires: datetime.date


class _Limits(Model):
    port_range: int = Field(default=100, ge=1, le=65535)


class _PolicyFile(Model):
    severities: dict[str, Level] = {}
    limits: _Limits = _Limits()
    waivers: list[_Waiver] = []


@dataclass(frozen=True)
class Waiver:
    rule: str
    node: str | None
    zone: str | None
    reason: str
    expires: str  # ISO date
    origin: str  # FILE:LINE of the waiver in the policy file

    def covers(self, finding: Finding) -> bool:
        return (
            self.rule == finding.rule
            and self.node in (None, finding.node)
            and self.zone in (None, finding.zone)
        )


@dataclass(frozen=True)
class Policy:
    """What the policy file decided (the built-in defaults without one)."""

    file: str | None = None
    severities: dict[str, str] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)
    waivers: tuple[Waiver, ...] = ()

    def severity(self, rule: Rule) -> str:
        return self.severities.get(rule.id, rule.severity)


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: str
    sr: str
    node: str | None  # None: a finding about the policy file itself
    file: str
    line: int
    column: int
    path: str
    message: str
    zone: str | None = None
    waived_by: Waiver | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        node = f"{self.node}: " if self.node else ""
        return f"{where}: {self.severity}: {node}{self.rule} ({self.sr}): {self.message}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["waived"] = self.waived_by is not None
        return data


@dataclass(frozen=True)
class PolicyResult:
    nodes: tuple[str, ...]
    policy: Policy
    findings: tuple[Finding, ...]  # waived ones included, marked

    @property
    def active(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.waived_by is None)

    def failing(self, fail_on: str) -> tuple[Finding, ...]:
        """Unwaived findings at or above ``fail_on`` (error, warning, note; never: none)."""
        if fail_on == "never":
            return ()
        worst = SEVERITIES[: SEVERITIES.index(fail_on) + 1]
        return tuple(f for f in self.active if f.severity in worst)

    def counts(self) -> dict[str, int]:
        result = {s: sum(1 for f in self.active if f.severity == s) for s in SEVERITIES}
        result["waived"] = len(self.findings) - len(self.active)
        return result


def find_policy(paths: Sequence[Path]) -> Path | None:
    """``nodekit-policy.yaml`` in the folder of the first path or the nearest parent
    (stopping at a repository's root)."""
    for start in paths:
        folder = start.resolve() if start.is_dir() else start.resolve().parent
        for candidate in (folder, *folder.parents):
            if (candidate / POLICY_FILE).is_file():
                return candidate / POLICY_FILE
            if (candidate / ".git").exists():
                break
    return None


def load_policy(path: Path | None) -> Policy:
    """The policy file's decisions; exit-2 errors naming file, line and key."""
    if path is None:
        return Policy()
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise InputError(f"{path}: cannot read the policy file: {error.strerror}") from None
    if not raw.strip():
        return Policy(str(path))  # an empty file: the built-in defaults
    diagnostics = Diagnostics()
    root = parse(raw, str(path), diagnostics)
    if diagnostics.failed:
        raise BlueprintError(diagnostics.items)
    if root is None:
        return Policy(str(path))
    report = Report(root, diagnostics)
    try:
        model = _PolicyFile.model_validate(root.plain() or {})
    except ValidationError as error:
        report.schema_errors(error, _PolicyFile)
        raise BlueprintError(diagnostics.items) from None
    for rule in model.severities:
        if rule not in BY_ID:
            report.error(("severities", rule), _unknown(rule), key=True)
    waivers = []
    for index, waiver in enumerate(model.waivers):
        if waiver.rule not in BY_ID:
            report.error(("waivers", index, "rule"), _unknown(waiver.rule))
        origin, _ = report.locate(("waivers", index))
        waivers.append(
            Waiver(waiver.rule, waiver.node, waiver.zone, waiver.reason,
                   waiver.expires.isoformat(), f"{origin.file}:{origin.line}")
        )  # fmt: skip
    if diagnostics.failed:
        raise BlueprintError(diagnostics.items)
    return Policy(str(path), dict(model.severities), Limits(model.limits.port_range),
                  tuple(waivers))  # fmt: skip


def _unknown(rule: str) -> str:
    return f"unknown rule '{rule}'; rules: {', '.join(sorted(BY_ID))}"


def _origin(blueprint: Blueprint, path: str) -> Origin:
    while path:
        found = blueprint.origin(path)
        if found is not None:
            return found
        path = path.rpartition(".")[0] if "." in path else ""
    return Origin(str(blueprint.file), 1, 1)


def check(
    blueprints: Sequence[Blueprint], policy: Policy, today: datetime.date | None = None
) -> PolicyResult:
    """Every rule over every blueprint; waivers applied unless expired (``today``:
    the date expiry is judged against, default the current UTC date)."""
    today = today or datetime.datetime.now(datetime.UTC).date()
    live = [w for w in policy.waivers if datetime.date.fromisoformat(w.expires) >= today]
    findings: list[Finding] = []
    for waiver in policy.waivers:
        if waiver not in live:
            file, _, line = waiver.origin.rpartition(":")
            findings.append(Finding(
                WAIVER_EXPIRED.id, policy.severity(WAIVER_EXPIRED), WAIVER_EXPIRED.sr,
                waiver.node, file, int(line), 1, "waivers",
                f"the waiver of {waiver.rule} expired on {waiver.expires} ({waiver.reason}): "
                "it no longer applies; fix the findings or renew it with a new date",
            ))  # fmt: skip
    for blueprint in blueprints:
        for rule in RULES:
            severity = policy.severity(rule)
            if severity == "off":
                continue
            for hit in rule.check(blueprint.data, policy.limits):
                origin = _origin(blueprint, hit.path)
                finding = Finding(
                    rule.id, severity, rule.sr, blueprint.name, origin.file, origin.line,
                    origin.column, hit.path, hit.message, hit.zone,
                )  # fmt: skip
                cover = next((w for w in live if w.covers(finding)), None)
                findings.append(
                    finding if cover is None else Finding(**{**vars(finding), "waived_by": cover})
                )
    findings.sort(key=lambda f: (f.node or "", f.file, f.line, f.rule))
    return PolicyResult(tuple(b.name for b in blueprints), policy, tuple(findings))
