"""Parse one YAML or JSON file of the config repo into plain data plus a line for every value.

The only module that imports ``yaml``. JSON files go through the same parser (YAML 1.1 reads
JSON), so every file gets the same line tracking and the same error form. Lines are 1-based.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from reconciler.core import model


@dataclass(frozen=True)
class ParsedFile:
    """A file's data with the line where each value (by JSON pointer) starts."""

    path: str
    data: Any
    lines: Mapping[str, int]

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
    """Parse ``source``; raise :class:`ParseError` on syntax errors and duplicate keys."""
    loader = yaml.SafeLoader(source.text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else None
        message = " ".join(str(part) for part in (e.context, e.problem) if part)
        raise ParseError([model.Problem(source.path, line, f"invalid YAML: {message}")]) from e
    except yaml.YAMLError as e:
        raise ParseError([model.Problem(source.path, None, f"invalid YAML: {e}")]) from e
    finally:
        loader.dispose()
    lines: dict[str, int] = {}
    problems: list[model.Problem] = []
    if node is not None:
        _walk(node, "", lines, problems, source.path)
    if problems:
        raise ParseError(problems)
    return ParsedFile(path=source.path, data=data, lines=lines)


def _walk(
    node: yaml.Node, at: str, lines: dict[str, int], problems: list[model.Problem], path: str
) -> None:
    lines[at] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
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
