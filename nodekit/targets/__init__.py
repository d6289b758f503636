"""Targets by name: ``site.target`` picks one; adding a target is adding a module.

target_for(node) -> Target       the node's target (see targets/base.py)
"""

from __future__ import annotations

from nodekit.render.plan import NodePlan
from nodekit.targets.base import PreflightProblem, RunAccess, Runner, Target
from nodekit.targets.local import LocalTarget
from nodekit.targets.ssh import SshTarget

TARGETS: dict[str, type[Target]] = {t.name: t for t in (LocalTarget, SshTarget)}


def target_for(node: NodePlan) -> Target:
    return TARGETS[node.target](node)


__all__ = ["TARGETS", "PreflightProblem", "RunAccess", "Runner", "Target", "target_for"]
