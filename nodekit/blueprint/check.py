"""Validation of one merged document: the schema first, then the semantic rules.

When the schema refuses some list items, the rules still run on the rest
(those items left out), so one run reports every problem it can.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from nodekit.blueprint import rules
from nodekit.blueprint.compose import NAMED_LISTS
from nodekit.blueprint.model import API_VERSION, Node
from nodekit.blueprint.packages import PACKAGES
from nodekit.blueprint.report import Loc, Report
from nodekit.blueprint.source import Diagnostics, Located

# Lists whose invalid items are left out for the rules, and the Skipped set
# that remembers their names ("" when nothing refers to them by name).
_LISTS: dict[tuple[str, ...], str] = {
    ("network", "zones"): "zones",
    ("network", "flows"): "",
    ("compute",): "hosts",
    ("equipment",): "",
    ("software",): "software",
    ("checks",): "",
}
# Stand-ins for invalid sections the rules do not need. Target ssh turns off
# the warnings that depend on the real target.
_STAND_INS: dict[str, Any] = {
    "apiVersion": API_VERSION,
    "kind": "Node",
    "metadata": {"name": "invalid"},
    "site": {"region": "invalid", "timezone": "UTC", "target": "ssh"},
    "cloud": None,
}
_OPTIONAL: set[Loc] = {("network", "uplink"), ("network", "domain")}


@dataclass(frozen=True)
class _Partial:
    node: Node
    renumber: dict[Loc, list[int]]
    skipped: rules.Skipped


def check_document(root: Located, diagnostics: Diagnostics) -> Node | None:
    """The merged document as a valid :class:`Node`, or None when any error was found."""
    report = Report(root, diagnostics)
    rules.unique_names(root, report, NAMED_LISTS)
    data = root.plain()
    try:
        node = Node.model_validate(data)
    except ValidationError as error:
        partial = _partial(data, report.schema_errors(error, Node))
        if partial is not None:
            rules.check(partial.node, report.renumbered(partial.renumber), partial.skipped)
        return None
    rules.check(node, report, rules.Skipped())
    return None if diagnostics.failed else node


def _partial(data: dict[str, Any], locs: list[Loc]) -> _Partial | None:
    """The document without the parts that have schema errors, if that leaves a Node."""
    data = copy.deepcopy(data)
    drop: dict[tuple[str, ...], set[int]] = {}
    for loc in locs:
        listed = next((p for p in _LISTS if _in_item(loc, p)), None)
        if listed is not None:
            index = loc[len(listed)]
            assert isinstance(index, int)
            drop.setdefault(listed, set()).add(index)
        elif loc and isinstance(loc[0], str) and loc[0] in _STAND_INS:
            data[loc[0]] = copy.deepcopy(_STAND_INS[loc[0]])
        elif loc[:2] in _OPTIONAL:
            data["network"].pop(loc[1], None)
        else:
            return None
    skipped = rules.Skipped()
    renumber: dict[Loc, list[int]] = {}
    for path, indices in drop.items():
        holder = data
        for key in path[:-1]:
            holder = holder[key]
        items = holder[path[-1]]
        keep = [i for i in range(len(items)) if i not in indices]
        if _LISTS[path]:
            names = getattr(skipped, _LISTS[path])
            for i in indices:
                if isinstance(items[i], dict) and isinstance(items[i].get("name"), str):
                    names.add(items[i]["name"])
        holder[path[-1]] = [items[i] for i in keep]
        renumber[path] = keep
    try:
        node = Node.model_validate(data)
    except ValidationError:
        return None
    return _Partial(node, renumber, skipped)


def _in_item(loc: Loc, path: Loc) -> bool:
    size = len(path)
    return loc[:size] == path and len(loc) > size and isinstance(loc[size], int)


def finalize(node: Node) -> tuple[Node, dict[str, Any]]:
    """Defaults applied: each software's ports (package defaults) and settings."""
    data = node.model_dump(mode="json", by_alias=True)
    for item in data["software"]:
        spec = PACKAGES[item["package"]]
        if item["ports"] is None:
            item["ports"] = list(spec.default_ports)
        item["settings"] = spec.settings.model_validate(item["settings"]).model_dump(mode="json")
    final = Node.model_validate(data)
    return final, final.model_dump(mode="json", by_alias=True)
