"""Imports every command module so that each registers itself on the app."""

from __future__ import annotations

from nodekit.cli import (  # noqa: F401
    blueprints,
    doctor,
    equipment,
    fleet,
    gitops,
    policy,
    render,
    report,
    run,
    state,
    status,
)
