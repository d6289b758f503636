"""The JSON Schema of blueprint files, for editors and other tools.

It is the model's schema plus what only files have: ``extends``, ``remove``
on named items, each package's settings, and for partial files (``kind:
NodeBase``, or any file with ``extends``) the same shapes with every key
optional but the names of list items: nodekit checks the merged document. Regenerate
the committed copy with ``nodekit schema > blueprints/nodekit-blueprint-v1.schema.json``.
"""

from __future__ import annotations

import copy
from typing import Any

from nodekit.blueprint.model import Node
from nodekit.blueprint.packages import PACKAGES

SCHEMA_ID = "https://nodekit.dev/schemas/nodekit-blueprint-v1.schema.json"
DRAFT = "https://json-schema.org/draft/2020-12/schema"
_NAMED = ("Zone", "Compute", "Equipment", "Software", "Check")
_EXTENDS = {
    "description": "Base files (NodeBase) applied first, in order; paths relative to this file.",
    "type": "array",
    "items": {"type": "string", "minLength": 1},
}
_REMOVE = {
    "description": "Delete the inherited item of this name.",
    "type": "boolean",
}


def schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of a blueprint file, ``kind: Node`` or ``NodeBase``."""
    node = Node.model_json_schema(by_alias=True)
    defs: dict[str, Any] = node.pop("$defs")
    defs["Node"] = node
    partial = {f"Partial{name}": _partial(value, name in _NAMED) for name, value in defs.items()}
    partial["PartialNode"]["properties"]["kind"] = {"enum": ["Node", "NodeBase"], "type": "string"}
    partial["PartialNode"]["title"] = "Partial blueprint (NodeBase, or a Node with extends)"
    for prefix in ("", "Partial"):
        defs_ = defs if not prefix else partial
        defs_[f"{prefix}Node"]["properties"]["extends"] = _EXTENDS
        for name in _NAMED:
            defs_[f"{prefix}{name}"]["properties"]["remove"] = _REMOVE
        defs_[f"{prefix}Software"]["allOf"] = [
            {
                "if": {"properties": {"package": {"const": name}}, "required": ["package"]},
                "then": {"properties": {"settings": spec.settings.model_json_schema()}},
            }
            for name, spec in sorted(PACKAGES.items())
        ]
    return {
        "$schema": DRAFT,
        "$id": SCHEMA_ID,
        "title": "nodekit blueprint v1",
        "description": (
            "A nodekit blueprint: kind Node (a deployable production node) or "
            "NodeBase (a partial blueprint used through extends). A file with "
            "extends may be partial too: the merged document is checked by nodekit."
        ),
        "$defs": dict(sorted({**defs, **partial}.items())),
        "if": {
            "anyOf": [
                {"properties": {"kind": {"const": "NodeBase"}}, "required": ["kind"]},
                {"required": ["extends"]},
            ]
        },
        "then": {"$ref": "#/$defs/PartialNode"},
        "else": {"$ref": "#/$defs/Node"},
    }


def _partial(value: Any, named: bool) -> Any:
    """A copy with nothing required (but the ``name`` of a named item) and refs
    pointing to partial shapes."""
    if isinstance(value, list):
        return [_partial(item, named) for item in value]
    if not isinstance(value, dict):
        return copy.copy(value)
    result: dict[str, Any] = {}
    for key, item in value.items():
        if key == "required":
            kept = [r for r in item if named and r == "name"]
            if kept:
                result[key] = kept
        elif key == "$ref" and isinstance(item, str):
            result[key] = item.replace("#/$defs/", "#/$defs/Partial")
        else:
            result[key] = _partial(item, named)
    return result
