"""Marathon's label selectors (``api/v2/LabelSelector.scala``): parse, then match an app's labels.

Grammar (whitespace between tokens ignored)::

    selectors := selector ("," selector)*          (empty: no selector, every app matches)
    selector  := term ("in" | "notin") "(" [term ("," term)*] ")" | term ("==" | "!=") term | term
    term      := ("\\" any character | [-A-Za-z0-9_.])+     (then each "\\x" stands for "x")

Every selector needs the label to exist, ``!=`` and ``notin`` included.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TERM = re.compile(r"(?:\\.|[-A-Za-z0-9_.])+")
_TERM_TEXT = r"(\\.|[-A-Za-z0-9_.])+"
_SPACE = re.compile(r"\s*")


class SelectorError(ValueError):
    """Not a selector; the message is the parser's reason."""


@dataclass(frozen=True)
class Selector:
    key: str
    op: str
    """``exists``, ``==``, ``!=``, ``in`` or ``notin``."""
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        if self.key not in labels:
            return False
        value = labels[self.key]
        if self.op == "==" or self.op == "in":
            return value in self.values
        if self.op == "!=" or self.op == "notin":
            return value not in self.values
        return True


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def space(self) -> None:
        match = _SPACE.match(self.text, self.pos)
        self.pos = match.end() if match else self.pos

    def at_end(self) -> bool:
        self.space()
        return self.pos >= len(self.text)

    def found(self) -> str:
        if self.pos < len(self.text):
            return f"'{self.text[self.pos]}' found"
        return "end of source found"

    def literal(self, word: str) -> bool:
        self.space()
        if self.text.startswith(word, self.pos):
            self.pos += len(word)
            return True
        return False

    def term(self) -> str:
        self.space()
        match = _TERM.match(self.text, self.pos)
        if match is None:
            raise SelectorError(f"string matching regex '{_TERM_TEXT}' expected but {self.found()}")
        self.pos = match.end()
        return re.sub(r"\\(.)", r"\1", match.group())

    def selector(self) -> Selector:
        key = self.term()
        start = self.pos
        for op in ("notin", "in"):
            if self.literal(op) and self.literal("("):
                values: list[str] = []
                if not self.literal(")"):
                    values.append(self.term())
                    while self.literal(","):
                        values.append(self.term())
                    if not self.literal(")"):
                        raise SelectorError(f"')' expected but {self.found()}")
                return Selector(key, op, tuple(values))
            self.pos = start
        for op in ("==", "!="):
            if self.literal(op):
                return Selector(key, op, (self.term(),))
        return Selector(key, "exists")


def parse(text: str) -> list[Selector]:
    """The selectors of a ``label`` query; raises :class:`SelectorError`."""
    parser = _Parser(text)
    if parser.at_end():
        return []
    selectors = [parser.selector()]
    while not parser.at_end():
        if not parser.literal(","):
            raise SelectorError("end of input expected")
        selectors.append(parser.selector())
    return selectors


def matches(labels: dict[str, str], selectors: list[Selector]) -> bool:
    return all(s.matches(labels) for s in selectors)
