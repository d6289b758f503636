"""Rollouts: deploy many nodes in waves, stopping when failures exceed a budget.

The first wave holds the canaries (the first N nodes in the order given, and
every node labelled ``canary: "true"``); then batches of ``--batch`` nodes
(N, or P% of the selected nodes rounded up). A wave deploys (and verifies)
its nodes in parallel, at most ``--parallel`` at once, and must end before
the next begins. Failed and unreachable nodes count against ``--max-fail``
(N or P%); once it is exceeded the rollout stops and the nodes not reached
are ``skipped``, never touched.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from nodekit.blueprint import Blueprint
from nodekit.errors import UsageError
from nodekit.run.deploy import EventFn, RunOptions, RunResult, deploy


@dataclass(frozen=True)
class RolloutOptions:
    canary: int = 1
    batch: str = "25%"
    max_fail: str = "0"
    parallel: int = 4


@dataclass(frozen=True)
class NodeOutcome:
    node: str
    wave: int  # 1-based
    status: str  # deployed | failed | unreachable | skipped
    run: str | None = None
    error: str | None = None


@dataclass
class Rollout:
    status: str  # completed | stopped
    waves: list[list[str]]
    nodes: list[NodeOutcome] = field(default_factory=list)
    budget: int = 0
    results: list[RunResult] = field(default_factory=list, repr=False)

    @property
    def ok(self) -> bool:
        return all(n.status == "deployed" for n in self.nodes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "waves": self.waves,
            "max_fail": self.budget,
            "nodes": [asdict(n) for n in self.nodes],
        }


def amount(spec: str, total: int, *, what: str) -> int:
    """``N`` or ``P%`` of total (rounded up)."""
    text = spec.strip()
    try:
        if text.endswith("%"):
            percent = float(text[:-1])
            if not 0 <= percent <= 100:
                raise ValueError
            return math.ceil(total * percent / 100)
        value = int(text)
        if value < 0:
            raise ValueError
        return value
    except ValueError:
        raise UsageError(f"{what} {spec!r}: give a count (3) or a percentage (25%)") from None


def plan_waves(blueprints: list[Blueprint], options: RolloutOptions) -> list[list[Blueprint]]:
    """The waves, in order: canaries, then batches (order given kept)."""
    if options.canary < 0:
        raise UsageError("--canary must be 0 or more")
    total = len(blueprints)
    labelled = [b for b in blueprints if b.node.metadata.labels.get("canary") == "true"]
    first = blueprints[: options.canary]
    first += [b for b in labelled if b not in first]
    rest = [b for b in blueprints if b not in first]
    size = max(1, amount(options.batch, total, what="--batch"))
    waves = [first] if first else []
    waves += [rest[i : i + size] for i in range(0, len(rest), size)]
    return waves


def select(blueprints: list[Blueprint], selectors: list[str]) -> list[Blueprint]:
    """Nodes whose metadata.labels match every KEY=VALUE."""
    wanted = []
    for selector in selectors:
        key, sep, value = selector.partition("=")
        if not sep or not key:
            raise UsageError(f"--selector {selector!r}: write KEY=VALUE (a metadata.labels entry)")
        wanted.append((key, value))
    return [b for b in blueprints if all(b.node.metadata.labels.get(k) == v for k, v in wanted)]


def unreachable(result: RunResult) -> bool:
    """A failure to reach a host (not a failure of what nodekit did on it)."""
    if result.ok:
        return False
    problems = [p for p in result.preflight if ": reachable: " in p]
    return bool(problems) or "unreachable" in (result.error or "")


def rollout(
    blueprints: list[Blueprint],
    options: RolloutOptions,
    *,
    run_options: RunOptions | None = None,
    on_event: EventFn | None = None,
    on_wave: Callable[[int, list[str]], None] | None = None,
    deploy_fn: Callable[..., RunResult] = deploy,
) -> Rollout:
    """Deploy the nodes wave by wave; see the module docstring."""
    if options.parallel < 1:
        raise UsageError("--parallel must be 1 or more")
    waves = plan_waves(blueprints, options)
    budget = amount(options.max_fail, len(blueprints), what="--max-fail")
    result = Rollout("completed", [[b.name for b in w] for w in waves], budget=budget)
    failures = 0
    for number, wave in enumerate(waves, start=1):
        if result.status == "stopped":
            result.nodes += [NodeOutcome(b.name, number, "skipped") for b in wave]
            continue
        if on_wave:
            on_wave(number, [b.name for b in wave])
        with ThreadPoolExecutor(max_workers=min(options.parallel, len(wave))) as pool:
            done = list(
                pool.map(lambda b: deploy_fn(b, options=run_options, on_event=on_event), wave)
            )
        for blueprint, run in zip(wave, done, strict=True):
            result.results.append(run)
            status = "deployed" if run.ok else ("unreachable" if unreachable(run) else "failed")
            failures += status != "deployed"
            result.nodes.append(
                NodeOutcome(blueprint.name, number, status, run.run_dir.name, run.error)
            )
        if failures > budget:
            result.status = "stopped"
    return result
