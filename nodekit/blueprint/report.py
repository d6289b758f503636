"""From a location in the merged document to ``FILE:LINE:COL: error: PATH: MESSAGE``.

Checks name what they find by a model location (``("compute", 2, "address")``,
as pydantic does); :class:`Report` turns it into the origin recorded by the
loader and the key path people read (``compute[edge-01].address``).
"""

from __future__ import annotations

import datetime
import re
import types
from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from nodekit.blueprint.keypaths import item_label, join
from nodekit.blueprint.source import Diagnostics, Located, Origin, did_you_mean
from nodekit.blueprint.source import show as _show
from nodekit.errors import Severity

Loc = tuple[str | int, ...]

_EXPECTED = {
    "string_type": "text",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}
_SCALARS = (int, float, bool, datetime.date)


class Report:
    """Adds located diagnostics for model locations in one merged document.

    ``renumber`` maps a list's location to the raw index of each item the
    checked model kept, when items with schema errors were left out.
    """

    def __init__(
        self,
        root: Located,
        diagnostics: Diagnostics,
        renumber: Mapping[Loc, Sequence[int]] | None = None,
    ) -> None:
        self.root = root
        self.diagnostics = diagnostics
        self.renumber = dict(renumber or {})

    def renumbered(self, renumber: Mapping[Loc, Sequence[int]]) -> Report:
        return Report(self.root, self.diagnostics, renumber)

    def _raw(self, loc: Loc) -> Loc:
        for prefix, indices in self.renumber.items():
            size = len(prefix)
            index = loc[size] if loc[:size] == prefix and len(loc) > size else None
            if isinstance(index, int):
                return (*prefix, indices[index], *loc[size + 1 :])
        return loc

    def locate(self, loc: Loc, *, key: bool = False) -> tuple[Origin, str]:
        """The origin and display path of ``loc``; the nearest existing parent's origin
        when ``loc`` is not in the document (a missing key)."""
        node, path, reached = self.root, "", True
        for part in self._raw(loc):
            child: Located | None = None
            if isinstance(part, int) and node.items is not None and 0 <= part < len(node.items):
                child = node.items[part]
            elif isinstance(part, str) and node.mapping is not None:
                child = node.mapping.get(part)
            if child is None or not reached:
                reached = False
                path = path + f"[{part}]" if isinstance(part, int) else join(path, str(part))
                continue
            path = (
                path + item_label(child.value, part) if isinstance(part, int) else join(path, part)
            )
            node = child
        origin = node.key_origin if key and reached and node.key_origin else node.origin
        return origin, path

    def path(self, loc: Loc) -> str:
        return self.locate(loc)[1]

    def add(self, severity: Severity, loc: Loc, message: str, *, key: bool = False) -> None:
        origin, path = self.locate(loc, key=key)
        self.diagnostics.add(severity, origin, path, message)

    def error(self, loc: Loc, message: str, *, key: bool = False) -> None:
        self.add("error", loc, message, key=key)

    def warning(self, loc: Loc, message: str) -> None:
        self.add("warning", loc, message)

    def schema_errors(
        self, error: ValidationError, model: type[BaseModel], prefix: Loc = ()
    ) -> list[Loc]:
        """Report each pydantic error of ``model`` (validated at ``prefix``); their locations."""
        locs: list[Loc] = []
        for details in error.errors(include_url=False):
            loc = (*prefix, *details["loc"])
            locs.append(loc)
            if details["type"] == "extra_forbidden":
                keys = _keys_at(model, details["loc"][:-1])
                self.error(loc, f"unknown key{did_you_mean(str(loc[-1]), keys)}", key=True)
            elif details["type"] == "missing":
                self.error(loc, "required key is missing")
            else:
                self.error(loc, _message(details))
        return locs


def _message(details: ErrorDetails) -> str:
    kind, value = details["type"], details.get("input")
    ctx: dict[str, Any] = dict(details.get("ctx") or {})
    if kind in _EXPECTED:
        quote = kind == "string_type" and isinstance(value, _SCALARS)
        hint = " (quote it to make it text)" if quote else ""
        return f"expected {_EXPECTED[kind]}, got {_show(value)}{hint}"
    if kind == "literal_error":
        expected = str(ctx.get("expected", ""))
        choices = re.findall(r"'([^']*)'", expected) or re.findall(r"-?\d+(?:\.\d+)?", expected)
        return f"{_show(value)} is not one of {', '.join(choices)}" + did_you_mean(
            str(value), choices
        )
    if kind in ("value_error", "assertion_error"):
        return str(ctx.get("error", details["msg"]))
    if kind == "too_short":
        return f"needs at least {ctx.get('min_length', 1)} item(s)"
    message = details["msg"]
    return f"{message[:1].lower()}{message[1:]} (got {_show(value)})"


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            annotation = next(a for a in get_args(annotation) if a is not type(None))
        else:
            return annotation


def _model(annotation: Any) -> type[BaseModel] | None:
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _keys_at(model: type[BaseModel], loc: Sequence[str | int]) -> list[str]:
    """The keys the model accepts at ``loc`` (for "did you mean" hints)."""
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        inner = _model(current)
        if isinstance(part, int) and get_origin(current) is list:
            current = get_args(current)[0]
        elif isinstance(part, str) and inner is not None:
            fields = {f.alias or n: f for n, f in inner.model_fields.items()}
            current = fields[part].annotation if part in fields else None
        else:
            return []
    found = _model(current)
    return [f.alias or n for n, f in found.model_fields.items()] if found else []


def reference(
    report: Report, loc: Loc, what: str, name: str, known: Iterable[str], *, skipped: set[str]
) -> bool:
    """True when ``name`` is known; else reports it (unless it was skipped).

    The semantic rules check every reference to a named item with it."""
    names = sorted(set(known))
    if name in names:
        return True
    if name not in skipped:
        listed = ", ".join(names) if names else "none"
        report.error(loc, f"unknown {what} '{name}'{did_you_mean(name, names)}; known: {listed}")
    return False
