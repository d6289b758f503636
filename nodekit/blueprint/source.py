"""YAML in, located values out: every value knows the file, line and column that set it.

PyYAML's composer gives a node graph with marks; we build our own tree from
it (never PyYAML's constructors for collections) so that duplicate keys,
non-string keys, recursive aliases and alias bombs become diagnostics, not
surprises. Scalars are typed by the SafeLoader's resolver (YAML 1.1).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import yaml

from nodekit.errors import Diagnostic, Severity

MAX_VALUES = 100_000  # values in one file after alias expansion (alias bombs stop here)
MAX_BYTES = 1024 * 1024  # a blueprint is a few KiB; past this, refuse before any parsing
_MAP_TAGS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:set"}
_SEQ_TAGS = {"tag:yaml.org,2002:seq", "tag:yaml.org,2002:omap", "tag:yaml.org,2002:pairs"}
_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"
_CONSTRUCT_STR = yaml.constructor.SafeConstructor.construct_yaml_str


@dataclass(frozen=True, order=True)
class Origin:
    """Where a value was set: 1-based line and column in a file."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Located:
    """A value with its origin. Mappings hold ``dict[str, Located]``, lists ``list[Located]``."""

    value: Any
    origin: Origin
    key_origin: Origin | None = None  # where the key of this value is, inside a mapping

    @property
    def mapping(self) -> dict[str, Located] | None:
        return self.value if isinstance(self.value, dict) else None

    @property
    def items(self) -> list[Located] | None:
        return self.value if isinstance(self.value, list) else None

    def plain(self) -> Any:
        """The value without origins: plain dicts, lists and scalars."""
        if isinstance(self.value, dict):
            return {k: v.plain() for k, v in self.value.items()}
        if isinstance(self.value, list):
            return [v.plain() for v in self.value]
        return self.value


@dataclass
class Diagnostics:
    """Collects located problems; never stops at the first one."""

    items: list[Diagnostic] = field(default_factory=list)

    def add(self, severity: Severity, origin: Origin, path: str, message: str) -> None:
        path, message = _printable(path), _printable(message)
        text = f"{path}: {message}" if path else message
        self.items.append(Diagnostic(origin.file, origin.line, origin.column, severity, text, path))

    def error(self, origin: Origin, path: str, message: str) -> None:
        self.add("error", origin, path, message)

    def warning(self, origin: Origin, path: str, message: str) -> None:
        self.add("warning", origin, path, message)

    @property
    def failed(self) -> bool:
        return any(d.severity == "error" for d in self.items)


def _printable(text: str) -> str:
    """One line, whatever keys and values the input held: control characters escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` when a choice is close to ``word``, else ``""``."""
    close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def show(value: object) -> str:
    """A short description of a value for messages."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing (null)"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# -- reading -------------------------------------------------------------------


class _Problem(Exception):
    def __init__(self, origin: Origin, message: str) -> None:
        super().__init__(message)
        self.origin = origin
        self.message = message


class _Builder:
    """Turns one composed YAML node graph into a :class:`Located` tree."""

    def __init__(
        self, loader: yaml.SafeLoader | yaml.CSafeLoader, file: str, diagnostics: Diagnostics
    ) -> None:
        self.loader = loader
        self.file = file
        self.diagnostics = diagnostics
        self.count = 0
        self.active: set[int] = set()
        self.seen: set[int] = set()
        self.aliased = False  # a node met twice: an alias
        # A str scalar is its text, unless someone registered another constructor.
        self.str_is_text = loader.yaml_constructors.get(_STR_TAG) is _CONSTRUCT_STR

    def origin(self, node: yaml.Node) -> Origin:
        mark = node.start_mark
        return Origin(self.file, mark.line + 1, mark.column + 1)

    def build(self, node: yaml.Node, key_origin: Origin | None = None) -> Located:
        origin = self.origin(node)
        self.count += 1
        if id(node) in self.seen:
            self.aliased = True
        self.seen.add(id(node))
        if self.count > MAX_VALUES:
            why = (
                "counting what each alias repeats: an alias bomb?"
                if self.aliased
                else "a blueprint is far smaller: split it into bases and overlays (extends)"
            )
            raise _Problem(origin, f"too many values: more than {MAX_VALUES} in one file ({why})")
        if not isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
            return Located(self.scalar(node), origin, key_origin)  # contains nothing
        if id(node) in self.active:
            raise _Problem(origin, "an alias refers to the value that contains it")
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                value: Any = self.mapping(node)
            else:
                self.check_tag(node, _SEQ_TAGS)
                value = [self.build(child) for child in node.value]
        finally:
            self.active.discard(id(node))
        return Located(value, origin, key_origin)

    def check_tag(self, node: yaml.Node, allowed: set[str]) -> None:
        if node.tag not in allowed:
            self.diagnostics.error(self.origin(node), "", f"unsupported YAML tag {node.tag}")

    def scalar(self, node: yaml.Node) -> Any:
        if node.tag == _STR_TAG and self.str_is_text and isinstance(node, yaml.ScalarNode):
            return node.value  # what construct_object gives, without its bookkeeping
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.YAMLError as error:
            problem = getattr(error, "problem", None) or str(error)
            self.diagnostics.error(self.origin(node), "", f"cannot read value: {problem}")
        except (ValueError, OverflowError):
            pass  # e.g. a date like 2024-13-45 or a 5000-digit int: keep the text
        return node.value

    def mapping(self, node: yaml.MappingNode) -> dict[str, Located]:
        self.check_tag(node, _MAP_TAGS)
        result: dict[str, Located] = {}
        merges: list[yaml.Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merges.append(value_node)
                continue
            key_origin = self.origin(key_node)
            if not isinstance(key_node, yaml.ScalarNode):
                self.diagnostics.error(key_origin, "", "a key must be a plain string")
                continue
            key = self.scalar(key_node)
            if not isinstance(key, str):
                self.diagnostics.error(
                    key_origin,
                    "",
                    f"key {key_node.value} is read as {type(key).__name__}, not text: "
                    f"quote it ('{key_node.value}')",
                )
                continue
            if key in result:
                first = result[key].key_origin or result[key].origin
                self.diagnostics.error(
                    key_origin, "", f"duplicate key '{key}' (first at line {first.line})"
                )
                continue
            result[key] = self.build(value_node, key_origin)
        for merge in merges:
            sources = merge.value if isinstance(merge, yaml.SequenceNode) else [merge]
            for source in sources:
                if not isinstance(source, yaml.MappingNode):
                    raise _Problem(self.origin(source), "a merge key (<<) needs a mapping")
                for key, value in self.mapping(source).items():
                    result.setdefault(key, value)
        return result


def _location(text: str, index: int) -> tuple[int, int]:
    before = text[:index]
    return before.count("\n") + 1, index - (before.rfind("\n") + 1) + 1


# libyaml (PyYAML's C parser) composes the very node graph the pure-Python
# parser does for plain text: ASCII lines ending in a newline, without tabs,
# tags, anchors, aliases, block scalars, directives or complex keys. Other
# text, and any text libyaml refuses, goes to the pure-Python parser, whose
# messages the diagnostics quote (tests/unit/blueprint/test_source.py checks
# that both agree).
_CSafeLoader: Any = getattr(yaml, "CSafeLoader", None)
_PLAIN_TEXT = re.compile(r"[\n -~]*\n")
_NOT_PLAIN = re.compile(r"[!|>?*&%@`]")
_COMMENT_LINES = re.compile(r"^ *#.*$", re.MULTILINE)  # what they hold changes no node


# PyYAML's words for the usual slips, and what to do about each.
_HINTS = (
    ("character '\\t'", "indent with spaces, not tabs"),
    ("flow sequence", "close the list: every '[' needs its ']', items separated by ','"),
    ("flow mapping", "close the mapping: every '{' needs its '}', items separated by ','"),
    ("mapping values are not allowed", "quote a value that contains ': ', or put the key on "
     "a line of its own"),
    ("could not find expected ':'", "each key needs ': ' after it; quote a value that "
     "spans lines"),
    ("did not find expected key", "indent the items of one mapping alike, and start list "
     "items with '- '"),
    ("did not find expected '-' indicator", "indent the items of one list alike, each "
     "starting with '- '"),
    ("found unexpected end of stream", "close the quote opened here"),
    ("found undefined alias", "define the anchor (&name) before its alias (*name)"),
    ("expected a single document", "keep one blueprint per file: remove the '---' "
     "separator"),
)  # fmt: skip


def yaml_hint(problem: str) -> str:
    """A sentence saying how to fix a PyYAML syntax error ('' when none fits)."""
    return next((hint for words, hint in _HINTS if words in problem), "")


def _parse_plain(text: str, file: str) -> tuple[Located, list[Diagnostic]] | _Problem | None:
    """The located tree of plain text read with libyaml; None when the text is not
    plain, libyaml is missing or refuses it, or the document is empty; the problem
    when the tree is too large (plain text has no alias: the count is exact, and the
    pure-Python parser would take many seconds to say the same)."""
    if _CSafeLoader is None or not _PLAIN_TEXT.fullmatch(text):
        return None
    if _NOT_PLAIN.search(_COMMENT_LINES.sub("", text)):
        return None
    found = Diagnostics()
    loader = _CSafeLoader(text)
    try:
        node = loader.get_single_node()
        return None if node is None else (_Builder(loader, file, found).build(node), found.items)
    except _Problem as problem:
        return problem if problem.message.startswith("too many values") else None
    except (yaml.YAMLError, RecursionError):
        return None
    finally:
        loader.dispose()


def parse(raw: bytes, file: str, diagnostics: Diagnostics) -> Located | None:
    """One YAML document as a located tree; None (with diagnostics) when unreadable."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        column = error.start - (raw.rfind(b"\n", 0, error.start) + 1) + 1
        byte = raw[error.start]
        diagnostics.error(Origin(file, line, column), "", f"not UTF-8 text (byte 0x{byte:02x})")
        return None
    if len(raw) > MAX_BYTES:
        diagnostics.error(
            Origin(file, 1, 1),
            "",
            f"the file is {len(raw) / 1024 / 1024:.1f} MiB; a blueprint may be at most "
            f"{MAX_BYTES // 1024 // 1024} MiB: split it into bases and overlays (extends)",
        )
        return None
    quick = _parse_plain(text, file)
    if isinstance(quick, _Problem):
        diagnostics.error(quick.origin, "", quick.message)
        return None
    if quick is not None:
        diagnostics.items.extend(quick[1])
        return quick[0]
    loader: yaml.SafeLoader | None = None
    try:
        loader = yaml.SafeLoader(text)
        node = loader.get_single_node()
        if node is None:
            diagnostics.error(
                Origin(file, 1, 1), "", "empty file: expected a blueprint (apiVersion, kind, ...)"
            )
            return None
        return _Builder(loader, file, diagnostics).build(node)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = Origin(file, mark.line + 1, mark.column + 1) if mark else Origin(file, 1, 1)
        context = error.context or ""
        if context and error.context_mark and error.context_mark is not mark:
            context += f" (line {error.context_mark.line + 1})"
        problem = " ".join(p for p in (context, error.problem) if p)
        hint = yaml_hint(problem)
        diagnostics.error(
            where, "", f"YAML syntax: {problem or error}" + (f": {hint}" if hint else "")
        )
    except yaml.reader.ReaderError as error:
        line, column = _location(text, error.position)
        diagnostics.error(
            Origin(file, line, column),
            "",
            f"YAML syntax: unacceptable character {chr(error.character)!r}",
        )
    except yaml.YAMLError as error:
        diagnostics.error(Origin(file, 1, 1), "", f"YAML syntax: {error}")
    except _Problem as problem:
        diagnostics.error(problem.origin, "", problem.message)
    except RecursionError:
        diagnostics.error(Origin(file, 1, 1), "", "values nested too deeply")
    finally:
        if loader is not None:
            loader.dispose()
    return None
