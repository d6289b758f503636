"""Output habits shared by every command: data to stdout, talk to stderr."""

from __future__ import annotations

import enum
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from nodekit.blueprint import Blueprint, load_all
from nodekit.errors import UsageError

# Progress and messages go to stderr; results (tables for people, JSON for
# pipelines) to stdout.
err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)


def print_table(table: Table) -> None:
    """A table on stdout: fitted to a terminal; without one (CI logs, pipes) at
    its natural width, every cell on one line, so nothing is wrapped."""
    if out.is_terminal:
        out.print(table)
    else:
        Console(file=sys.stdout, width=100_000, highlight=False, soft_wrap=False).print(table)


class Format(enum.StrEnum):
    table = "table"
    json = "json"


def emit_json(data: Any) -> None:
    """Write one JSON document to stdout (sorted keys: stable for pipelines)."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


def load_nodes(paths: list[Path]) -> list[Blueprint]:
    """Every Node blueprint in paths (files or folders), warnings printed.

    Invalid input raises BlueprintError (exit 2); finding no Node is a usage error.
    """
    blueprints = load_all(paths)
    if not blueprints:
        raise UsageError(f"no Node blueprint found in {', '.join(map(str, paths))}")
    for blueprint in blueprints:
        for warning in blueprint.warnings:
            err.print(str(warning), markup=False)
    return blueprints
