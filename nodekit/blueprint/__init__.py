"""Blueprints: load YAML with locations, compose ``extends``, validate, explain.

The public API other modules call::

    load(path) -> Blueprint              one Node file (BlueprintError if invalid)
    load_all(paths) -> list[Blueprint]   files and folders, every error of every file
    validate(paths) -> Validation        the same without raising: blueprints + diagnostics
    schema() -> dict                     JSON Schema of blueprint files
    LOCAL_WAN                            the local target's WAN network (nodekit.blueprint.fleet)

Nothing here prints or imports the CLI, the renderers or the runners.
"""

from __future__ import annotations

from nodekit.blueprint.fleet import LOCAL_WAN
from nodekit.blueprint.loader import Blueprint, Validation, load, load_all, validate
from nodekit.blueprint.model import Node
from nodekit.blueprint.packages import PACKAGES, PackageSpec
from nodekit.blueprint.schema import schema
from nodekit.blueprint.source import Origin

__all__ = [
    "LOCAL_WAN",
    "PACKAGES",
    "Blueprint",
    "Node",
    "Origin",
    "PackageSpec",
    "Validation",
    "load",
    "load_all",
    "schema",
    "validate",
]
