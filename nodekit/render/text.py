"""Plain data as YAML, JSON and Python text: the very bytes PyYAML, json and
pprint write, quicker.

The rendered files are small documents of names, addresses and numbers;
PyYAML's pure-Python emitter, json's pure-Python indenting encoder and pprint
spend most of a render on them. For plain data (for YAML: dicts with string
keys, lists, short one-line ASCII strings, ints, bools, None, no object
twice) these functions write the same text following the same rules;
anything else goes to PyYAML, json or pprint themselves.
tests/unit/render/test_text.py compares both on random data.
"""

from __future__ import annotations

import json
import pprint
from typing import Any

import yaml
from yaml.resolver import Resolver

MAX_TEXT = 100  # longer strings go to PyYAML (far from the line width; simple keys)
MAX_DEPTH = 100
_STR_TAG = "tag:yaml.org,2002:str"
_RESOLVER: Any = Resolver()  # the stubs leave its resolve() untyped
_quoted: dict[str, str] = {}  # a string -> how it is written, for strings met before
_encode = json.encoder.encode_basestring_ascii  # what json.dumps uses (ensure_ascii)


class IndentedDumper(yaml.SafeDumper):
    """PyYAML's safe dumper, with block sequences indented under their key (as
    yamllint and ansible-lint expect, and as the project's own YAML is written)."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def library_yaml(data: Any) -> str:
    """PyYAML's own text of ``data`` with render's options (what yaml_block equals)."""
    return yaml.dump(
        data, Dumper=IndentedDumper, sort_keys=True, default_flow_style=False, width=1000
    )


def yaml_block(data: Any) -> str:
    """:func:`library_yaml`, quicker on plain data."""
    if type(data) is dict and data:
        try:
            lines: list[str] = []
            _mapping(data, 0, lines, set())
            return "".join(lines)
        except _NotPlain:
            pass
    return library_yaml(data)


def json_indented(data: Any) -> str:
    """``json.dumps(data, indent=2, sort_keys=True)``."""
    try:
        parts: list[str] = []
        _json(data, "\n", parts)
        return "".join(parts)
    except _NotPlain:
        pass
    return json.dumps(data, indent=2, sort_keys=True)


def _json(value: Any, newline: str, parts: list[str]) -> None:
    """One value; ``newline`` is a line break and the indent of the value's own line
    (json.encoder._make_iterencode with indent 2, sort_keys and its separators)."""
    kind = type(value)
    if kind is str:
        parts.append(_encode(value))
    elif kind is dict or kind is list:
        if not value:
            parts.append("{}" if kind is dict else "[]")
            return
        if len(newline) > 2 * MAX_DEPTH:
            raise _NotPlain
        inner = newline + "  "
        if kind is dict:
            if any(type(key) is not str for key in value):
                raise _NotPlain
            parts.append("{")
            for number, key in enumerate(sorted(value)):
                parts.append(f"{',' if number else ''}{inner}{_encode(key)}: ")
                _json(value[key], inner, parts)
            parts.append(newline + "}")
        else:
            parts.append("[")
            for number, item in enumerate(value):
                parts.append(f"{',' if number else ''}{inner}")
                _json(item, inner, parts)
            parts.append(newline + "]")
    elif kind is bool:
        parts.append("true" if value else "false")
    elif kind is int:
        parts.append(int.__repr__(value))
    elif value is None:
        parts.append("null")
    else:
        raise _NotPlain


def python_literal(data: Any, width: int) -> str:
    """``pprint.pformat(data, width=width, sort_dicts=False)``."""
    try:
        _literal_types(data, set(), 0)
        parts: list[str] = []
        _literal(data, 0, 0, width, parts)
        return "".join(parts)
    except _NotPlain:
        pass
    return pprint.pformat(data, width=width, sort_dicts=False)


_LITERAL_SCALARS = {str, int, bool, float, type(None)}


def _literal_types(value: Any, outer: set[int], depth: int) -> None:
    """Only types whose repr pprint uses as it is, and no container inside itself."""
    kind = type(value)
    if kind in _LITERAL_SCALARS:
        return
    if kind not in (dict, list, tuple) or id(value) in outer or depth > MAX_DEPTH:
        raise _NotPlain
    outer.add(id(value))
    for item in (*value.keys(), *value.values()) if kind is dict else value:
        _literal_types(item, outer, depth + 1)
    outer.discard(id(value))


def _literal(value: Any, indent: int, allowance: int, width: int, parts: list[str]) -> None:
    """PrettyPrinter._format: the repr when it fits, else one item a line."""
    text = repr(value)
    if len(text) <= width - indent - allowance:
        parts.append(text)
        return
    kind = type(value)
    if kind is dict:
        parts.append("{")
        last = len(value) - 1
        for number, (key, item) in enumerate(value.items()):
            key_text = repr(key)
            parts.append(key_text + ": ")
            end = allowance + 1 if number == last else 1
            _literal(item, indent + 1 + len(key_text) + 2, end, width, parts)
            if number != last:
                parts.append(",\n" + " " * (indent + 1))
        parts.append("}")
    elif kind is list or kind is tuple:
        close = "]" if kind is list else ",)" if len(value) == 1 else ")"
        parts.append("[" if kind is list else "(")
        last = len(value) - 1
        for number, item in enumerate(value):
            if number:
                parts.append(",\n" + " " * (indent + 1))
            end = allowance + len(close) if number == last else 1
            _literal(item, indent + 1, end, width, parts)
        parts.append(close)
    elif kind is str:
        raise _NotPlain  # pprint splits long strings
    else:
        parts.append(text)


class _NotPlain(Exception):
    """The data needs PyYAML's general emitter."""


def _scalar(value: Any) -> str:
    kind = type(value)
    if kind is str:
        return _text(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if value is None:
        return "null"
    raise _NotPlain


def _text(value: str) -> str:
    known = _quoted.get(value)
    if known is not None:
        return known
    if not 0 < len(value) <= MAX_TEXT or not value.isascii() or not value.isprintable():
        raise _NotPlain
    if _RESOLVER.resolve(yaml.ScalarNode, value, (True, False)) == _STR_TAG and _plain(value):
        written = value
    else:
        written = "'" + value.replace("'", "''") + "'"
    if len(_quoted) >= 10_000:
        _quoted.clear()
    _quoted[value] = written
    return written


def _plain(text: str) -> bool:
    """Whether PyYAML's emitter writes this one-line ASCII text plain in block context
    (``Emitter.analyze_scalar``: no leading or trailing space, no indicator)."""
    if text.startswith(("---", "...")) or text[0] == " " or text[-1] == " ":
        return False
    first = text[0]
    if first in "#,[]{}&*!|>'\"%@`":
        return False
    if first in "?:-" and (len(text) == 1 or text[1] == " "):
        return False
    for index in range(1, len(text)):
        char = text[index]
        if char == ":" and (index + 1 == len(text) or text[index + 1] == " "):
            return False
        if char == "#" and text[index - 1] == " ":
            return False
    return True


def _enter(value: Any, seen: set[int]) -> None:
    """PyYAML writes an object met twice as an anchor and an alias: not plain."""
    if id(value) in seen or len(seen) > 100_000:
        raise _NotPlain
    seen.add(id(value))


def _mapping(data: dict[Any, Any], indent: int, lines: list[str], seen: set[int]) -> None:
    """A block mapping; its first key goes on the current line."""
    _enter(data, seen)
    if indent > 2 * MAX_DEPTH or any(type(key) is not str for key in data):
        raise _NotPlain
    pad = " " * indent
    for number, key in enumerate(sorted(data)):
        head = f"{pad if number else ''}{_text(key)}:"
        _value(data[key], head, indent, lines, seen)


def _sequence(items: list[Any], indent: int, lines: list[str], seen: set[int]) -> None:
    """A block sequence; its first item goes on the current line."""
    _enter(items, seen)
    if indent > 2 * MAX_DEPTH:
        raise _NotPlain
    pad = " " * indent
    for number, item in enumerate(items):
        kind = type(item)
        head = f"{pad if number else ''}-"
        if kind is dict and item:
            lines.append(head + " ")
            _mapping(item, indent + 2, lines, seen)
        elif kind is list and item:
            lines.append(head + " ")
            _sequence(item, indent + 2, lines, seen)
        else:
            lines.append(f"{head} {_flow(item, seen)}\n")


def _value(value: Any, head: str, indent: int, lines: list[str], seen: set[int]) -> None:
    """``head`` (a key and its colon), then the value: nested mappings and
    sequences one step in."""
    kind = type(value)
    if kind is dict and value:
        lines.append(f"{head}\n{' ' * (indent + 2)}")
        _mapping(value, indent + 2, lines, seen)
    elif kind is list and value:
        lines.append(f"{head}\n{' ' * (indent + 2)}")
        _sequence(value, indent + 2, lines, seen)
    else:
        lines.append(f"{head} {_flow(value, seen)}\n")


def _flow(value: Any, seen: set[int]) -> str:
    """A scalar, or an empty collection (PyYAML writes those in flow style)."""
    kind = type(value)
    if kind is dict or kind is list:
        _enter(value, seen)
        return "{}" if kind is dict else "[]"
    return _scalar(value)
