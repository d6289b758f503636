"""Output habits shared by every command: data to stdout, talk to stderr."""

from __future__ import annotations

import enum
import json
import sys
from typing import Any

from rich.console import Console

# Progress and messages go to stderr; results (tables for people, JSON for
# pipelines) to stdout.
err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)


class Format(enum.StrEnum):
    table = "table"
    json = "json"


def emit_json(data: Any) -> None:
    """Write one JSON document to stdout (sorted keys: stable for pipelines)."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()
