"""How commands print: ``--output text|json|yaml`` and colour on a terminal (``NO_COLOR``)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
import yaml

from reconciler.core import model

F = TypeVar("F", bound=Callable[..., Any])

FORMATS = ("text", "json", "yaml")

LIMIT_MAX = 1_000_000
"""The largest ``--limit N`` a read command takes: beyond it a typo (``99999999999999999999``
overflows the database's integers) is refused in one line."""

_COLOURS = {
    model.AppState.QUARANTINED: "red", model.AppState.DEGRADED: "red",
    model.AppState.BLOCKED: "yellow", model.AppState.UNKNOWN: "magenta",
    model.AppState.PROGRESSING: "cyan", model.AppState.DRIFTED: "yellow",
    model.AppState.OUT_OF_SYNC: "yellow", model.AppState.IN_SYNC: "green",
}


def output_option(*formats: str) -> Callable[[F], F]:
    """``--output`` with the given formats (text, json and yaml by default)."""
    return click.option("--output", type=click.Choice(formats or FORMATS), default="text",
                        show_default=True, help="How to print: for people or for scripts.")


def structured(data: Any, fmt: str) -> None:
    """Print ``data`` as JSON or YAML (plain values: dicts, lists, strings, numbers)."""
    plain = json.loads(json.dumps(data, default=str))
    if fmt == "yaml":
        click.echo(yaml.safe_dump(plain, sort_keys=False, allow_unicode=True), nl=False)
    else:
        click.echo(json.dumps(plain, indent=2))


def colour_on() -> bool:
    """Colour only on a terminal, and never when ``NO_COLOR`` is set (no-color.org)."""
    return "NO_COLOR" not in os.environ and sys.stdout.isatty()


def state(word: model.AppState, *, width: int = 0) -> str:
    text = f"{word!s:<{width}}"
    return click.style(text, fg=_COLOURS.get(word), bold=True) if colour_on() else text
