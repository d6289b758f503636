"""Loading blueprints: read, compose, validate; the :class:`Blueprint` result."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from nodekit.blueprint.check import check_document, finalize
from nodekit.blueprint.compose import Files, absolute, compose, display
from nodekit.blueprint.fleet import fleet_diagnostics, node_diagnostics
from nodekit.blueprint.keypaths import origins, paths, walk
from nodekit.blueprint.model import Node
from nodekit.blueprint.source import Diagnostics, Origin
from nodekit.errors import BlueprintError, Diagnostic

YAML_SUFFIXES = (".yaml", ".yml")
POLICY_FILE = "nodekit-policy.yaml"  # a folder's OT security policy, not a blueprint


@dataclass(frozen=True)
class Blueprint:
    """A merged, validated Node blueprint."""

    node: Node
    data: dict[str, Any]  # plain JSON data, defaults applied: what blueprint.json holds
    sources: tuple[Path, ...]  # every file that contributed, the Node file last
    warnings: tuple[Diagnostic, ...] = ()
    origins: Mapping[str, Origin] = field(default_factory=dict, repr=False, compare=False)

    @property
    def name(self) -> str:
        return self.node.metadata.name

    @property
    def file(self) -> Path:
        """The Node file itself."""
        return self.sources[-1]

    @property
    def digest(self) -> str:
        """sha256 of the canonical JSON of :attr:`data`."""
        text = json.dumps(self.data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()

    def origin(self, path: str) -> Origin | None:
        """Where the value at a key path (``compute[edge-01].address``) was set;
        None for an unknown path or a default nobody set."""
        found = walk(self.data, path)
        return self.origins.get(found[1]) if found else None

    def value(self, path: str) -> Any:
        """The final value at a key path (KeyError if there is none)."""
        found = walk(self.data, path)
        if found is None:
            raise KeyError(path)
        return found[0]

    def canonical(self, path: str) -> str | None:
        """A key path as ``origin`` records it (list items by name), or None if unknown."""
        found = walk(self.data, path)
        return found[1] if found else None

    def paths(self) -> list[str]:
        """Every key path of the merged data."""
        return list(paths(self.data))


@dataclass(frozen=True)
class Validation:
    """The outcome of validating several files: the valid blueprints and every diagnostic."""

    blueprints: tuple[Blueprint, ...]
    diagnostics: tuple[Diagnostic, ...]

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity == "error")


def load(path: str | Path) -> Blueprint:
    """Load, compose and validate one Node file.

    Raises :class:`BlueprintError` carrying every diagnostic (errors and
    warnings) when the blueprint is invalid; warnings of a valid one are kept
    on the result.
    """
    target = absolute(path)
    if not target.is_file():
        raise BlueprintError([_missing(target)])
    blueprint, found = _load_one(Files(), target)
    if blueprint is None:
        raise BlueprintError(sorted(set(found)))
    return blueprint


def load_all(paths: Sequence[str | Path]) -> list[Blueprint]:
    """Load every Node of files and folders; raises with the diagnostics of all of them."""
    result = validate(paths)
    if not result.ok:
        raise BlueprintError(list(result.diagnostics))
    return list(result.blueprints)


def validate(paths: Sequence[str | Path], *, fleet: bool = False) -> Validation:
    """Validate files and folders (a folder: every ``kind: Node`` YAML file below it).

    ``fleet``: the folders given are the whole fleet, so every uplink peer that
    names a node must be among them (``nodekit validate`` of a folder); the
    commands that apply some nodes (a sites folder without its hub) skip that."""
    files = Files()
    diagnostics: list[Diagnostic] = []
    blueprints: list[Blueprint] = []
    loaded = list(_expand(paths, files, diagnostics))
    for path in loaded:
        blueprint, found = _load_one(files, path)
        diagnostics.extend(found)
        if blueprint is not None:
            blueprints.append(blueprint)
    valid = {blueprint.file for blueprint in blueprints}
    failed = [_node_name(files, path) for path in loaded if path not in valid]
    folder = fleet and any(absolute(path).is_dir() for path in paths)
    others = [name for name in failed if name]
    diagnostics.extend(fleet_diagnostics(blueprints, other_names=others, peers=folder))
    return Validation(tuple(blueprints), tuple(sorted(set(diagnostics))))


def composed(paths: Sequence[str | Path]) -> list[tuple[Path, Any]]:
    """The merged plain document of each Node file below ``paths``, valid or not,
    without validating it: for scans that must see every name and network of a
    fleet (``nodekit new site``). Files that cannot be composed are left out."""
    files = Files()
    found: list[tuple[Path, Any]] = []
    for path in _expand(paths, files, []):
        if files.get(path).kind != "Node":
            continue
        try:
            root = compose(files, path, Diagnostics()).root
        except RecursionError:
            continue
        if root is not None:
            found.append((path, root.plain()))
    return found


def _node_name(files: Files, path: Path) -> str | None:
    """The ``metadata.name`` a Node file gives itself, even when it does not validate."""
    body = files.get(path).body
    metadata = body.mapping.get("metadata") if body and body.mapping is not None else None
    name = metadata.mapping.get("name") if metadata and metadata.mapping is not None else None
    return name.value if name is not None and isinstance(name.value, str) else None


def _missing(path: Path) -> Diagnostic:
    return Diagnostic(display(path), 1, 1, "error", "no such file or folder")


def _expand(
    paths: Sequence[str | Path], files: Files, diagnostics: list[Diagnostic]
) -> Iterator[Path]:
    seen: set[Path] = set()
    for given in paths:
        path = absolute(given)
        if path.is_dir():
            rendered = _rendered_folders(path)
            found = [
                f
                for f in sorted(path.rglob("*"))
                if f.suffix in YAML_SUFFIXES
                and f.is_file()
                and f.name != POLICY_FILE
                and not any(part.startswith(".") for part in f.relative_to(path).parts)
                and not any(folder in f.parents for folder in rendered)
                and files.get(f).kind != "NodeBase"
            ]
            if not found:
                diagnostics.append(
                    Diagnostic(display(path), 1, 1, "error", "no Node blueprint in this folder")
                )
        elif path.is_file():
            found = [path]
        else:
            diagnostics.append(_missing(path))
            found = []
        for file in found:
            if file not in seen:
                seen.add(file)
                yield file


def _rendered_folders(root: Path) -> list[Path]:
    """Folders `nodekit render` wrote under ``root`` (their manifest.json says
    so): their YAML files are output, not blueprints, and are skipped."""
    folders = []
    for manifest in root.rglob("manifest.json"):
        try:
            data = json.loads(manifest.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and "nodekit" in data and "files" in data:
            folders.append(manifest.parent)
    return folders


def _load_one(files: Files, path: Path) -> tuple[Blueprint | None, list[Diagnostic]]:
    diagnostics = Diagnostics()
    top = files.get(path)
    if top.kind == "NodeBase":
        diagnostics.items.extend(top.diagnostics)
        diagnostics.error(
            top.kind_origin,
            "kind",
            "a NodeBase is only used through extends: validate a Node file that extends it",
        )
        return None, diagnostics.items
    try:
        composition = compose(files, path, diagnostics)
        root = composition.root
        node = check_document(root, diagnostics) if root is not None else None
    except RecursionError:
        diagnostics.error(Origin(top.display, 1, 1), "", "values nested too deeply")
        return None, diagnostics.items
    if node is None or root is None or diagnostics.failed:
        return None, diagnostics.items
    final, data = finalize(node)
    blueprint = Blueprint(final, data, tuple(composition.sources), (), origins(root))
    diagnostics.items.extend(node_diagnostics(blueprint))
    if diagnostics.failed:
        return None, diagnostics.items
    warnings = tuple(sorted({d for d in diagnostics.items if d.severity == "warning"}))
    return replace(blueprint, warnings=warnings), diagnostics.items
