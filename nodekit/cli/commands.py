"""Imports every command module so that each registers itself on the app."""

from __future__ import annotations

from nodekit.cli import blueprints, doctor, equipment, gitops, render, run, state  # noqa: F401
