"""Composition: ``extends`` chains and the merge, keeping each value's origin.

A file's bases apply in order, each with its own bases first, the file
itself last. Mappings merge key by key (later wins); lists of named items
merge by ``name``; other lists and scalars are replaced. An item with
``remove: true`` deletes the inherited item of that name; a file reached
twice (two bases sharing one) is applied once, the first time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from nodekit.blueprint.keypaths import join
from nodekit.blueprint.model import API_VERSION
from nodekit.blueprint.source import (
    Diagnostics,
    Located,
    Origin,
    did_you_mean,
    parse,
    show,
)
from nodekit.errors import Diagnostic

KINDS = ("Node", "NodeBase")
# Lists whose items merge by name, and what an item is called in messages.
NAMED_LISTS: dict[tuple[str, ...], str] = {
    ("network", "zones"): "zone",
    ("compute",): "compute host",
    ("equipment",): "equipment",
    ("software",): "software",
    ("checks",): "check",
}


def absolute(path: str | Path) -> Path:
    """An absolute, normalized path (``..`` folded, symlinks kept)."""
    return Path(os.path.normpath(Path(path).absolute()))


def display(path: Path) -> str:
    """How messages name a file: relative to the working folder when below it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


@dataclass(frozen=True)
class SourceFile:
    """One blueprint file, read and split into header and body."""

    path: Path
    display: str
    body: Located | None  # the document without apiVersion, kind and extends
    kind: str | None
    api_origin: Origin
    kind_origin: Origin
    extends: tuple[tuple[str, Origin], ...] = ()
    diagnostics: tuple[Diagnostic, ...] = ()


@dataclass
class Files:
    """Reads each file once per run: many nodes share the same bases (which are
    also kept across runs while their bytes stay the same, see ``_read``)."""

    cache: dict[Path, SourceFile] = field(default_factory=dict)

    def get(self, path: Path) -> SourceFile:
        if path not in self.cache:
            self.cache[path] = _read(path)
        return self.cache[path]


def draft(path: Path, text: str) -> SourceFile:
    """A blueprint that is not on disk (yet), as if read from ``path``: seed
    ``Files.cache`` with it to compose a file before writing it."""
    return _split(path, display(path), text.encode())


# Bases read by earlier runs in this process, keyed by path and the name
# messages use, kept only while the file's bytes are the same.
_BASES: dict[tuple[Path, str], tuple[bytes, SourceFile]] = {}
_BASES_MAX = 256


def _read(path: Path) -> SourceFile:
    name = display(path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        start = Origin(name, 1, 1)
        diagnostics = Diagnostics()
        diagnostics.error(start, "", f"cannot read file: {error.strerror or error}")
        return SourceFile(path, name, None, None, start, start, (), tuple(diagnostics.items))
    known = _BASES.get((path, name))
    if known is not None and known[0] == raw:
        return known[1]
    source = _split(path, name, raw)
    if source.kind == "NodeBase":
        if len(_BASES) >= _BASES_MAX:
            _BASES.clear()
        _BASES[(path, name)] = (raw, source)
    return source


def _split(path: Path, name: str, raw: bytes) -> SourceFile:
    """Parse a file's bytes and split off its header (apiVersion, kind, extends)."""
    diagnostics = Diagnostics()
    start = Origin(name, 1, 1)
    root = parse(raw, name, diagnostics)
    if root is None:
        return SourceFile(path, name, None, None, start, start, (), tuple(diagnostics.items))
    if root.mapping is None:
        diagnostics.error(
            root.origin,
            "",
            "a blueprint is a mapping (apiVersion: nodekit/v1, kind: Node, ...), "
            f"got {show(root.plain())}",
        )
        return SourceFile(path, name, None, None, start, start, (), tuple(diagnostics.items))
    body = dict(root.mapping)
    api = body.pop("apiVersion", None)
    if api is None:
        diagnostics.error(root.origin, "apiVersion", f"required key is missing ({API_VERSION})")
    elif api.value != API_VERSION:
        diagnostics.error(api.origin, "apiVersion", f"must be {API_VERSION}, got {show(api.value)}")
    kind = body.pop("kind", None)
    kind_name: str | None = None
    if kind is None:
        diagnostics.error(root.origin, "kind", "required key is missing (Node or NodeBase)")
    elif kind.value not in KINDS:
        hint = did_you_mean(str(kind.value), KINDS)
        diagnostics.error(
            kind.origin, "kind", f"must be Node or NodeBase, got {show(kind.value)}{hint}"
        )
    else:
        kind_name = kind.value
    extends = _extends(body.pop("extends", None), diagnostics)
    return SourceFile(
        path,
        name,
        Located(body, root.origin),
        kind_name,
        api.origin if api else root.origin,
        kind.origin if kind else root.origin,
        extends,
        tuple(diagnostics.items),
    )


def _extends(value: Located | None, diagnostics: Diagnostics) -> tuple[tuple[str, Origin], ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value.value, str) else value.items
    if items is None:
        diagnostics.error(value.origin, "extends", "expected a list of paths to base files")
        return ()
    found = []
    for index, item in enumerate(items):
        if isinstance(item.value, str) and item.value.strip():
            found.append((item.value, item.origin))
        else:
            diagnostics.error(item.origin, f"extends[{index}]", "expected a path to a base file")
    return tuple(found)


@dataclass
class Composition:
    """The merged document of one Node and every file that contributed."""

    root: Located | None
    sources: list[Path]


def compose(files: Files, path: Path, diagnostics: Diagnostics) -> Composition:
    sources: list[Path] = []
    merged = _layer(files, path, (), sources, diagnostics)
    if merged is None:
        return Composition(None, sources)
    _drop_tombstones(merged, diagnostics)
    top = files.get(path)
    header = {
        "apiVersion": Located(API_VERSION, top.api_origin, top.api_origin),
        "kind": Located("Node", top.kind_origin, top.kind_origin),
    }
    return Composition(Located(header | merged.value, merged.origin), sources)


def _layer(
    files: Files,
    path: Path,
    chain: tuple[Path, ...],
    sources: list[Path],
    diagnostics: Diagnostics,
) -> Located | None:
    source = files.get(path)
    diagnostics.items.extend(source.diagnostics)
    if source.body is None:
        return None
    here = (*chain, path)
    merged: Located | None = None
    for text, origin in source.extends:
        target = absolute(path.parent / text)
        if target in here:
            diagnostics.error(origin, "extends", f"extends cycle: {_names(*here, target)}")
        elif target in sources:
            continue
        elif not target.is_file():
            names = _names(*here, target)
            diagnostics.error(origin, "extends", f"base file {text} not found ({names})")
        else:
            base = _layer(files, target, here, sources, diagnostics)
            if base is not None:
                merged = merge(merged, base, (), diagnostics)
    sources.append(path)
    return merge(merged, source.body, (), diagnostics)


def _names(*paths: Path) -> str:
    return " -> ".join(display(p) for p in paths)


def merge(
    base: Located | None, over: Located, path: tuple[str, ...], diagnostics: Diagnostics
) -> Located:
    """``over`` merged onto ``base``; every value keeps the origin of the file that set it."""
    value = over.value
    below = base.value if base is not None else None
    if isinstance(value, dict):
        merged = dict(below) if isinstance(below, dict) else {}
        for key, child in value.items():
            merged[key] = merge(merged.get(key), child, (*path, key), diagnostics)
        return Located(merged, over.origin, over.key_origin)
    if isinstance(value, list) and path in NAMED_LISTS:
        inherited = below if isinstance(below, list) else []
        items = _merge_named(inherited, value, path, diagnostics)
        return Located(items, over.origin, over.key_origin)
    return over


def _name(item: Located) -> str | None:
    name = item.value.get("name") if isinstance(item.value, dict) else None
    return name.value if name is not None and isinstance(name.value, str) else None


def _is_tombstone(item: Located) -> bool:
    remove = item.value.get("remove") if isinstance(item.value, dict) else None
    return remove is not None and remove.value is True


def _without_remove(item: Located, where: str, diagnostics: Diagnostics) -> Located:
    """The item with ``remove: false`` dropped; other values of remove are errors."""
    if item.mapping is None or "remove" not in item.mapping or _is_tombstone(item):
        return item
    remove = item.mapping["remove"]
    if remove.value is not False:
        message = f"expected true or false, got {show(remove.value)}"
        diagnostics.error(remove.origin, f"{where}.remove", message)
    return Located({k: v for k, v in item.mapping.items() if k != "remove"}, item.origin)


def _merge_named(
    inherited: list[Located],
    items: list[Located],
    path: tuple[str, ...],
    diagnostics: Diagnostics,
) -> list[Located]:
    # A tombstone (``remove: true`` with nothing to remove yet) is kept so that
    # it removes the item from a base applied before this one; leftovers are
    # warned about at the end (_drop_tombstones).
    result = list(inherited)
    names = [_name(old) for old in result]  # the name of each item of result
    seen: set[str] = set()
    for index, raw in enumerate(items):
        name = _name(raw)
        item = raw
        if isinstance(raw.value, dict) and "remove" in raw.value:
            label = f"[{name}]" if name is not None else f"[{index}]"
            item = _without_remove(raw, ".".join(path) + label, diagnostics)
        if name is None or name in seen:  # a duplicate stays, for validation to report
            result.append(item)
            names.append(name)
            continue
        seen.add(name)
        at = names.index(name) if name in names else None
        if at is None:
            result.append(item)
            names.append(name)
        elif _is_tombstone(item):
            if _is_tombstone(result[at]):
                result[at] = item
            else:
                del result[at]
                del names[at]
        elif _is_tombstone(result[at]):
            result[at] = item
        else:
            result[at] = merge(result[at], item, (*path, "[]"), diagnostics)
    return result


def _drop_tombstones(root: Located, diagnostics: Diagnostics) -> None:
    """Remove leftover ``remove: true`` items (warning: nothing was inherited)."""
    for path, what in NAMED_LISTS.items():
        holder: Located | None = root
        for key in path[:-1]:
            holder = holder.mapping.get(key) if holder and holder.mapping is not None else None
        container = holder.mapping if holder is not None else None
        listed = container.get(path[-1]) if container is not None else None
        if container is None or listed is None or listed.items is None:
            continue
        kept = []
        for item in listed.items:
            if not _is_tombstone(item):
                kept.append(item)
                continue
            name = _name(item)
            origin = item.mapping["remove"].origin if item.mapping else item.origin
            if name is None:
                where = join(".".join(path[:-1]), path[-1])
                diagnostics.error(
                    origin, where, "remove: true needs the name of the item to remove"
                )
                continue
            where = join(".".join(path[:-1]), f"{path[-1]}[{name}]")
            diagnostics.warning(
                origin, where, f"nothing to remove: no inherited {what} named '{name}'"
            )
        # The merge built this container afresh; replacing the entry here
        # touches no file's own tree.
        container[path[-1]] = Located(kept, listed.origin, listed.key_origin)
