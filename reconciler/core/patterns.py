"""Regular expressions written in the config repo, bounded in size and in time.

The config repo is untrusted input: a pattern with nested quantifiers (``(a|aa)+c``) against
a tag from the registry can backtrack for hours and, with Python's ``re``, holds the GIL all
along (the controller stops answering /healthz and SIGTERM). So every such pattern is
compiled and matched here, with the ``regex`` engine: its ``timeout`` stops a match, and
``concurrent`` lets the other threads run meanwhile. A pattern longer than
:data:`MAX_LENGTH` is refused before it is compiled.
"""

from __future__ import annotations

import regex

MAX_LENGTH = 200
"""Characters of a pattern (``images.schema.json`` says the same)."""

MATCH_SECONDS = 0.25
"""One match of one pattern against one tag; a tag is at most 128 characters, so an honest
pattern needs microseconds."""


class BadPattern(Exception):
    """A config-repo pattern that cannot be used: too long, not a regular expression, or too
    slow on some text. Stalling: a human fixes the file; ``str()`` says which and why."""


class Pattern:
    """A compiled config-repo pattern whose every match is bounded in time."""

    def __init__(self, source: str) -> None:
        if len(source) > MAX_LENGTH:
            raise BadPattern(f"pattern is {len(source)} characters long, more than "
                             f"{MAX_LENGTH}")
        try:
            self._compiled = regex.compile(source)
        except regex.error as e:
            raise BadPattern(f"not a regular expression: {e}") from e
        self.pattern = source

    def fullmatch(self, text: str) -> dict[str, str | None] | None:
        """The named groups when ``text`` matches the whole pattern, else None.

        Raises :class:`BadPattern` when the match takes longer than :data:`MATCH_SECONDS`.
        """
        try:
            match = self._compiled.fullmatch(text, timeout=MATCH_SECONDS, concurrent=True)
        except TimeoutError as e:
            raise BadPattern(f"pattern {self.pattern!r} took too long on {text[:40]!r} "
                             f"(more than {MATCH_SECONDS}s: nested quantifiers?)") from e
        return None if match is None else match.groupdict()
