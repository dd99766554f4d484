"""The text edit of a bump: one image's ``tag`` (and ``digest``) in ``images.yaml``, nothing else.

Pure. Works on the file's text, not on parsed data, so that comments, key order, quoting and
layout stay byte for byte; the value is replaced on the line the parser locates. The result
is parsed again and must equal the original data with only those fields changed, or
:class:`EditRefused` says why (a layout this edit does not handle is never guessed at).
"""

from __future__ import annotations

import re

from reconciler.core import model, parse


class EditRefused(Exception):
    """The file cannot be edited safely; the reason says what to change by hand."""


def _value_on_line(key: str) -> re.Pattern[str]:
    # key: value, "key": "value", key: 'value'; the value ends at a quote, comma, brace,
    # space or comment.
    return re.compile(rf"""(?P<head>(?:^|[\s{{,])["']?{key}["']?\s*:\s*)(?P<q>["']?)"""
                      r"""(?P<value>[^\s,}"'#]+)(?P=q)""")


def set_tag(source: model.SourceFile, *, image: str, tag: str,
            digest: str | None = None) -> str:
    """The text of ``source`` with ``image``'s tag set to ``tag`` (and its digest, if given).

    A digest is replaced where the entry has one, else added on the line after ``tag:`` with
    the same indentation (block style only). Raises :class:`EditRefused`.
    """
    try:
        parsed = parse.parse(source)
    except parse.ParseError as e:
        raise EditRefused(f"{source.path} does not parse: {e}") from e
    entries = (parsed.data or {}).get("images") if isinstance(parsed.data, dict) else None
    if not isinstance(entries, dict) or not isinstance(entries.get(image), dict):
        raise EditRefused(f"{source.path}: no image {image!r}")
    lines = source.text.splitlines(keepends=True)
    lines = _replace(lines, parsed=parsed, image=image, key="tag", value=tag)
    if digest is not None:
        if "digest" in entries[image]:
            lines = _replace(lines, parsed=parsed, image=image, key="digest", value=digest)
        else:
            lines = _insert_after(lines, parsed=parsed, image=image, key="digest", value=digest)
    text = "".join(lines)
    _verify(source, text=text, image=image, tag=tag, digest=digest)
    return text


def _replace(lines: list[str], *, parsed: parse.ParsedFile, image: str, key: str,
             value: str) -> list[str]:
    at = parse.pointer("images", image, key)
    line = parsed.lines.get(at)
    if line is None:
        raise EditRefused(f"{parsed.path}: no {at}")
    text = lines[line - 1]
    matches = list(_value_on_line(key).finditer(text))
    if len(matches) != 1:
        raise EditRefused(f"{parsed.path}:{line}: cannot find one {key} value on the line")
    match = matches[0]
    edited = text[:match.start("value")] + value + text[match.end("value"):]
    return [*lines[:line - 1], edited, *lines[line:]]


def _insert_after(lines: list[str], *, parsed: parse.ParsedFile, image: str, key: str,
                  value: str) -> list[str]:
    line = parsed.lines[parse.pointer("images", image, "tag")]
    text = lines[line - 1]
    indent = re.match(r"^(\s*)tag\s*:", text)
    if indent is None:
        raise EditRefused(f"{parsed.path}:{line}: add '{key}:' under tag by hand once "
                          "(flow-style entries are not edited)")
    newline = "\r\n" if text.endswith("\r\n") else "\n"
    ending = "" if text.endswith("\n") else newline
    added = f"{ending}{indent[1]}{key}: {value}{newline if ending == '' else ''}"
    return [*lines[:line], added, *lines[line:]] if ending == "" else (
        [*lines[:line - 1], text + added])


def _verify(source: model.SourceFile, *, text: str, image: str, tag: str,
            digest: str | None) -> None:
    before = parse.parse(source).data
    try:
        after = parse.parse(model.SourceFile(path=source.path, text=text)).data
    except parse.ParseError as e:
        raise EditRefused(f"{source.path}: the edit would break the file: {e}") from e
    expected = {**before["images"][image], "tag": tag}
    if digest is not None:
        expected["digest"] = digest
    if after != {**before, "images": {**before["images"], image: expected}}:
        raise EditRefused(f"{source.path}: the edit of {image} would change more than its tag; "
                          "edit it by hand")


def commit_message(*, image: str, old_tag: str, new_tag: str, digest: str,
                   pinned: bool) -> str:
    """The bump commit's message: image, old -> new tag, and the manifest digest."""
    pin = "pinned to" if pinned else "manifest"
    return (f"images.yaml: {image} {old_tag} -> {new_tag}\n\n"
            f"{image}:{new_tag} {pin} {digest}\n"
            "Bumped by the reconciler's registry watcher (update policy in images.yaml).\n")


_BUMP = re.compile(r"images\.yaml: (?P<image>\S+) (?P<old>\S+) -> (?P<new>\S+)\n\n"
                   r"\S+ (?:pinned to|manifest) (?P<digest>sha256:[0-9a-f]{64})\n"
                   r"Bumped by the reconciler's registry watcher")


def bump_of(message: str | None) -> tuple[str, str, str, str] | None:
    """(image, old tag, new tag, digest) of a bump commit's message, else None (the
    inverse of :func:`commit_message`: what the release view says started a release)."""
    found = _BUMP.match(message or "")
    if found is None:
        return None
    return found["image"], found["old"], found["new"], found["digest"]


def bump_branch(*, image: str, tag: str) -> str:
    """The branch a proposed bump goes to (``push: branch``)."""
    return f"reconciler/bump-{image}-{tag}"
