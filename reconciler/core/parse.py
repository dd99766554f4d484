"""Parse one YAML or JSON file of the config repo into plain data plus a line for every value.

The only module that imports ``yaml``. JSON files go through the same parser (YAML 1.1 reads
JSON), so every file gets the same line tracking and the same error form. Lines are 1-based.

A config repo is untrusted input, so a file is refused, with its path and line, before it can
cost more than its size: over :data:`MAX_FILE_BYTES`, with a control character (NUL...),
nested deeper than :data:`MAX_DEPTH`, or with an anchor or alias (app definitions never need
them, and nested aliases expand a few hundred bytes into billions of nodes). Depth and aliases
are checked on the event stream, which the parser produces without recursion, before anything
is composed. libyaml's parser (``CSafeLoader``) is used where PyYAML was built with it.
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import yaml

from reconciler.core import model

MAX_FILE_BYTES = 1024 * 1024
"""Largest file read, in bytes of UTF-8: a Marathon app definition is a few KiB."""
MAX_REPO_BYTES = 64 * 1024 * 1024
"""Largest total of the files read from one revision."""
MAX_DEPTH = 64
"""Deepest nesting of mappings and sequences: an app definition needs fewer than ten."""

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]|\r(?!\n)")
"""Characters no config file has a reason to hold: C0 and C1 controls (tab, LF and CRLF are
fine), and the line breaks YAML knows besides LF (NEL, U+2028, U+2029, a lone CR), which would
make YAML's line numbers disagree with every editor's."""

_STRING = "tag:yaml.org,2002:str"
_SHARED_UP_TO = 64
"""Keys and short values are interned: 10,000 apps repeat the same few hundred strings
(``container``, ``DOCKER``, ``MESOS_HTTP``...), held once instead of 10,000 times."""

LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader when PyYAML was built with it: the same results, much faster."""


@dataclass(frozen=True)
class ParsedFile:
    """A file's data with the line where each value (by JSON pointer) starts."""

    path: str
    data: Any
    text: str = field(repr=False)

    @functools.cached_property
    def lines(self) -> Mapping[str, int]:
        """Every value's line by JSON pointer. Computed when first asked (a problem to
        locate, a tag to rewrite): a valid file of 10,000 never needs its 60 pointers."""
        loader = LOADER(self.text)
        try:
            node = loader.get_single_node()
        finally:
            loader.dispose()
        lines: dict[str, int] = {}
        if node is not None:
            _walk(node, "", lines, [], self.path)
        return lines

    def line_of(self, pointer: str) -> int | None:
        """The line of ``pointer``, or of its nearest ancestor that has one."""
        while True:
            if pointer in self.lines:
                return self.lines[pointer]
            if not pointer:
                return None
            pointer = pointer.rsplit("/", 1)[0]


class ParseError(Exception):
    """The file is not valid YAML/JSON; carries the located problems."""

    def __init__(self, problems: list[model.Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = tuple(problems)


def escape(token: str) -> str:
    """One JSON pointer reference token (RFC 6901)."""
    return token.replace("~", "~0").replace("/", "~1")


def pointer(*tokens: object) -> str:
    return "".join("/" + escape(str(t)) for t in tokens)


def parse(source: model.SourceFile) -> ParsedFile:
    """Parse ``source``; raise :class:`ParseError` on syntax errors, duplicate keys and input
    beyond the limits above."""
    _check_text(source)
    if _may_hold_anchors_or_depth(source.text):
        with _located(source.path):
            _check_events(source)
    loader = LOADER(source.text)
    problems: list[model.Problem] = []
    try:
        with _located(source.path):
            node = loader.get_single_node()
            if node is not None:
                # Checked before constructing: the constructor then takes the shared strings.
                _check_keys(node, problems, source.path)
            data = loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()
    if problems:
        raise ParseError(sorted(problems, key=lambda p: p.line or 0))
    return ParsedFile(path=source.path, data=data, text=source.text)


def _check_text(source: model.SourceFile) -> None:
    size = len(source.text.encode("utf-8", errors="surrogatepass"))
    if size > MAX_FILE_BYTES:
        raise ParseError([model.Problem(source.path, None, (
            f"file too large: {size} bytes, the limit is {MAX_FILE_BYTES}"))])
    found = _CONTROL.search(source.text)
    if found is not None:
        line = source.text.count("\n", 0, found.start()) + 1
        raise ParseError([model.Problem(source.path, line, (
            f"control character {found.group()!r} not allowed in a config file"))])


def _may_hold_anchors_or_depth(text: str) -> bool:
    """False when the text can hold no anchor, no alias and no nesting deeper than
    :data:`MAX_DEPTH`, so the event pass can be skipped (most files, read twice as fast).

    An anchor needs ``&``, an alias ``*``. Each level of nesting needs a deeper indentation
    (block mappings), a ``-`` (block sequences, compact ones included), a ``[`` or ``{``
    (flow collections) or a ``?`` (complex keys): their count bounds the depth.
    """
    if "&" in text or "*" in text:
        return True
    indent = max((len(line) - len(line.lstrip(" \t")) for line in text.split("\n")), default=0)
    bound = (indent + text.count("-") + text.count("[") + text.count("{") + text.count("?")
             + 1)
    return bound > MAX_DEPTH


def _check_events(source: model.SourceFile) -> None:
    """Refuse anchors, aliases and deep nesting before composing anything."""
    loader = LOADER(source.text)
    depth = 0
    try:
        while (event := loader.get_event()) is not None:
            line = event.start_mark.line + 1 if event.start_mark is not None else None
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise ParseError([model.Problem(source.path, line, (
                    "YAML anchors and aliases (&name, *name, <<) are not allowed: write "
                    "each value out"))])
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    raise ParseError([model.Problem(source.path, line, (
                        f"nested deeper than {MAX_DEPTH} levels"))])
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    finally:
        loader.dispose()


@contextmanager
def _located(path: str) -> Iterator[None]:
    """PyYAML's errors (and the constructors' ValueErrors) as located problems."""
    try:
        yield
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else None
        message = " ".join(str(part) for part in (e.context, e.problem) if part)
        raise ParseError([model.Problem(path, line, f"invalid YAML: {message}")]) from e
    except yaml.YAMLError as e:
        raise ParseError([model.Problem(path, None, f"invalid YAML: {e}")]) from e
    except (ValueError, OverflowError) as e:
        # A scalar that resolves to a type but does not fit it: 2001-13-45, a 5000-digit int.
        raise ParseError([model.Problem(path, None, f"invalid YAML value: {e}")]) from e


_JSON_TAGS = frozenset(f"tag:yaml.org,2002:{kind}"
                       for kind in ("str", "int", "float", "bool", "null", "seq", "map"))
"""What JSON has: YAML's dates, timestamps, binary and sets have no JSON value to send."""


def _check_keys(node: yaml.Node, problems: list[model.Problem], path: str) -> None:
    """Keys that are not strings, duplicate keys and values JSON has no type for (YAML reads
    ``2024-01-01`` as a date), as problems; keys and short values interned on the way."""
    stack = [node]
    while stack:
        item = stack.pop()
        if item.tag not in _JSON_TAGS:
            kind = item.tag.rsplit(":", 1)[-1]
            shown = f"{item.value!r} reads" if isinstance(item, yaml.ScalarNode) else "this reads"
            problems.append(model.Problem(path, item.start_mark.line + 1, (
                f"{shown} as a YAML {kind}, which JSON (and so Marathon) has not: quote it "
                "or write it as JSON")))
            continue
        if isinstance(item, yaml.ScalarNode):
            if len(item.value) <= _SHARED_UP_TO:
                item.value = sys.intern(item.value)
        elif isinstance(item, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key_node, value_node in item.value:
                line = key_node.start_mark.line + 1
                if key_node.tag != _STRING:
                    # JSON, and so Marathon, has string keys only; YAML reads `no:` as false.
                    shown = (str(key_node.value) if isinstance(key_node, yaml.ScalarNode)
                             else "a collection")
                    problems.append(model.Problem(path, line, (
                        f"key {shown!r} is not a string: quote it")))
                    continue
                key_node.value = key = sys.intern(str(key_node.value))
                if key in seen:
                    problems.append(model.Problem(
                        path, line, f"duplicate key {key!r} (first on line {seen[key]})"))
                    continue
                seen[key] = line
                stack.append(value_node)
        elif isinstance(item, yaml.SequenceNode):
            stack.extend(item.value)


def _walk(
    node: yaml.Node, at: str, lines: dict[str, int], problems: list[model.Problem], path: str
) -> None:
    lines[at] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            if key_node.tag != _STRING:
                # JSON, and so Marathon, has string keys only; YAML reads `no:` as false.
                shown = key if isinstance(key_node, yaml.ScalarNode) else "a collection"
                problems.append(model.Problem(path, line, (
                    f"key {shown!r} is not a string: quote it")))
                continue
            if key in seen:
                problems.append(model.Problem(
                    path, line, f"duplicate key {key!r} (first on line {seen[key]})"))
                continue
            seen[key] = line
            child = at + "/" + escape(key)
            _walk(value_node, child, lines, problems, path)
            # The key's own line reads better than a value on the next line.
            lines[child] = line
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, f"{at}/{index}", lines, problems, path)
