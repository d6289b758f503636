"""Key paths: the names messages give values, such as ``compute[edge-01].address``.

An item of a list is named by its ``name`` when it has one, else by its index.
Here: building such paths, following one in plain data, listing every path in
plain data, and the origin of every path in a located tree
(:mod:`nodekit.blueprint.source`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from nodekit.blueprint.source import Located, Origin

_KEY = re.compile(r"[^.\[\]]+")


def item_label(item: object, index: int) -> str:
    """``[name]`` for an item with a string name, else ``[index]``."""
    if isinstance(item, dict):
        name = item.get("name")
        if isinstance(name, Located):
            name = name.value
        if isinstance(name, str) and name:
            return f"[{name}]"
    return f"[{index}]"


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def parse_path(path: str) -> list[tuple[str, bool]] | None:
    """``compute[edge-01].address`` -> ``[("compute", False), ("edge-01", True), ...]``."""
    parts: list[tuple[str, bool]] = []
    pos = 0
    while pos < len(path):
        if path[pos] == "[":
            end = path.find("]", pos)
            if end < 0:
                return None
            parts.append((path[pos + 1 : end], True))
            pos = end + 1
            continue
        if parts:
            if path[pos] != ".":
                return None
            pos += 1
        match = _KEY.match(path, pos)
        if not match:
            return None
        parts.append((match.group(), False))
        pos = match.end()
    return parts or None


def walk(data: Any, path: str) -> tuple[Any, str] | None:
    """Follow a key path in plain data: ``(value, canonical path)`` or None."""
    parts = parse_path(path)
    if parts is None:
        return None
    current, canonical = data, ""
    for key, is_item in parts:
        if is_item and isinstance(current, list):
            named = [i for i, v in enumerate(current) if item_label(v, i) == f"[{key}]"]
            if named:
                index = named[0]
            elif key.isdigit() and int(key) < len(current):
                index = int(key)
            else:
                return None
            canonical += item_label(current[index], index)
            current = current[index]
        elif not is_item and isinstance(current, dict) and key in current:
            canonical = join(canonical, key)
            current = current[key]
        else:
            return None
    return current, canonical


def paths(data: Any, prefix: str = "") -> Iterator[str]:
    """Every key path in plain data, depth first."""
    if isinstance(data, dict):
        for key, value in data.items():
            path = join(prefix, key)
            yield path
            yield from paths(value, path)
    elif isinstance(data, list):
        for index, value in enumerate(data):
            path = prefix + item_label(value, index)
            yield path
            yield from paths(value, path)


def origins(root: Located, prefix: str = "") -> dict[str, Origin]:
    """Key path -> origin of every value in a located tree (the first one, depth first,
    when two items share a label)."""
    found: dict[str, Origin] = {}
    _collect(root, prefix, found)
    return found


def _collect(root: Located, prefix: str, found: dict[str, Origin]) -> None:
    value = root.value
    if isinstance(value, dict):
        for key, child in value.items():
            path = f"{prefix}.{key}" if prefix else key
            found.setdefault(path, child.origin)
            _collect(child, path, found)
    elif isinstance(value, list):
        for index, child in enumerate(value):
            path = prefix + item_label(child.value, index)
            found.setdefault(path, child.origin)
            _collect(child, path, found)
