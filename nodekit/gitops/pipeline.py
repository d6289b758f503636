"""`gitops plan` and `gitops apply`: what a pull request changes, and applying a merge.

plan:  affected nodes (validated at head), the OT security policy over them
       (the policy file at head), then `plan` of each changed or added node;
       a Markdown report for a PR comment, or JSON.
apply: affected nodes, then a rollout of the changed and added ones (each
       run recorded with the head commit), then removed nodes destroyed only
       when allowed.
"""

from __future__ import annotations

import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from nodekit.gitops.affected import Affected, affected
from nodekit.gitops.rollout import Rollout, RolloutOptions, rollout
from nodekit.policy.check import PolicyResult, check, find_policy, load_policy
from nodekit.policy.formats import to_json as policy_json
from nodekit.policy.formats import to_markdown as policy_markdown
from nodekit.run.deploy import EventFn, RunOptions, RunResult, destroy, inspect


@dataclass
class GitopsPlan:
    affected: Affected
    plans: dict[str, RunResult] = field(default_factory=dict)
    policy: PolicyResult | None = None  # over the changed and added nodes at head

    @property
    def ok(self) -> bool:
        policy_ok = self.policy is None or not self.policy.failing("error")
        return policy_ok and all(r.ok for r in self.plans.values())

    def to_dict(self) -> dict[str, Any]:
        data = self.affected.to_dict()
        data["policy"] = policy_json(self.policy, "error") if self.policy else None
        for node in data["nodes"]:
            run = self.plans.get(node["node"])
            node["plan"] = (
                None
                if run is None
                else {
                    "status": run.status,
                    "drift": run.drift,
                    "error": run.error,
                    "run": run.run_dir.name,
                }
            )
        return data

    def markdown(self) -> str:
        a = self.affected
        lines = [
            f"### nodekit plan: `{a.base[:12]}` → `{a.head[:12]}`",
            "",
            f"{len(a.nodes)} node(s) affected, {a.unchanged} unchanged.",
            "",
        ]
        if a.base_problems:
            lines += ["Invalid at base (reported, not fatal):", ""]
            lines += [f"- `{p}`" for p in a.base_problems] + [""]
        if not a.nodes:
            return "\n".join([*lines, "Nothing to deploy."]) + "\n"
        lines += ["| node | change | why | plan |", "|---|---|---|---|"]
        for change in a.nodes:
            run = self.plans.get(change.node)
            if change.status == "removed":
                summary = "destroyed only by `gitops apply --allow-destroy`"
            elif run is None:
                summary = "-"
            elif not run.ok:
                summary = f"**plan failed**: {run.error}"
            else:
                summary = f"{len(run.drift)} difference(s)" if run.drift else "no difference"
            why = "<br>".join(_md(r) for r in change.reasons[:8]) or change.status
            if len(change.reasons) > 8:
                why += f"<br>… {len(change.reasons) - 8} more"
            lines.append(f"| `{change.node}` | {change.status} | {why} | {_md(summary)} |")
        for change in a.nodes:
            run = self.plans.get(change.node)
            if run is not None and run.drift:
                lines += ["", f"<details><summary>{change.node}: what would change</summary>", ""]
                lines += [f"- {_md(d)}" for d in run.drift[:200]]
                lines += ["", "</details>"]
        if self.policy is not None:
            lines += ["", policy_markdown(self.policy, "error").replace("### ", "#### ", 1)]
        return "\n".join(lines).rstrip("\n") + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def gitops_plan(
    where: Path,
    base: str,
    head: str,
    paths: list[str] | None,
    *,
    options: RunOptions,
    on_event: EventFn | None = None,
    parallel: int = 4,
) -> GitopsPlan:
    with tempfile.TemporaryDirectory(prefix="nodekit-gitops-") as tmp:
        found = affected(where, base, head, paths, scratch=Path(tmp))
        todo = [found.head_blueprints[n.node] for n in found.nodes if n.status != "removed"]
        policy = check(todo, load_policy(find_policy([b.file for b in todo]))) if todo else None
        options = replace(options, commit=found.head)
        with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(todo)))) as pool:
            runs = list(
                pool.map(
                    lambda b: inspect(b, operation="plan", options=options, on_event=on_event),
                    todo,
                )
            )
        return GitopsPlan(found, {r.node: r for r in runs}, policy)


@dataclass
class GitopsApply:
    affected: Affected
    rollout: Rollout
    destroyed: list[RunResult] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # removed at head, not destroyed

    @property
    def ok(self) -> bool:
        return self.rollout.ok and all(r.ok for r in self.destroyed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "base": self.affected.base,
            "head": self.affected.head,
            **self.rollout.to_dict(),
            "removed": [
                *(
                    {
                        "node": r.node,
                        "status": "destroyed" if r.ok else "failed",
                        "run": r.run_dir.name,
                        "error": r.error,
                    }
                    for r in self.destroyed
                ),
                *(
                    {
                        "node": n,
                        "status": "kept",
                        "run": None,
                        "error": "removed from the fleet: destroy it with --allow-destroy",
                    }
                    for n in self.kept
                ),
            ],
        }


def gitops_apply(
    where: Path,
    base: str,
    head: str,
    paths: list[str] | None,
    *,
    rollout_options: RolloutOptions,
    options: RunOptions,
    allow_destroy: bool = False,
    on_event: EventFn | None = None,
) -> GitopsApply:
    with tempfile.TemporaryDirectory(prefix="nodekit-gitops-") as tmp:
        found = affected(where, base, head, paths, scratch=Path(tmp))
        options = replace(options, commit=found.head)
        todo = [found.head_blueprints[n.node] for n in found.nodes if n.status != "removed"]
        done = rollout(todo, rollout_options, run_options=options, on_event=on_event)
        result = GitopsApply(found, done)
        removed = [n.node for n in found.nodes if n.status == "removed"]
        if not allow_destroy or done.status == "stopped":
            result.kept = removed
            return result
        for name in removed:
            result.destroyed.append(
                destroy(found.base_blueprints[name], options=options, on_event=on_event)
            )
        return result
