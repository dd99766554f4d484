"""``reconciler validate [PATH]``: check a config repo folder before it is merged.

Prints every problem as ``path:line: message`` and exits 1, or prints a one-line summary and
exits 0. Reads files only; never talks to Marathon.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from reconciler.cli import _output
from reconciler.core import load as loading
from reconciler.core import model
from reconciler.shell import directory


@click.command()
@_output.output_option()
@click.argument("path", type=click.Path(path_type=Path), default=Path("."))
def command(output: str, path: Path) -> None:
    """Validate the config repo at PATH (default: the current folder).

    Exit codes: 0 valid, 1 problems found (each printed as path:line: message).
    """
    text = output == "text"
    try:
        files, revision = directory.read_directory(path)
        desired = loading.load_desired_state(files, revision=revision)
    except directory.UnreadableDirectory as e:
        for line in str(e).splitlines():
            click.echo(f"error: {line}", err=True)
        sys.exit(1)
    except model.InvalidDesiredState as e:
        count = len(e.problems)
        if not text:
            _output.structured({"valid": False, "problems": [
                {"path": p.path, "line": p.line, "message": p.message} for p in e.problems]},
                output)
            sys.exit(1)
        for problem in e.problems:
            click.echo(str(problem))
        click.echo(f"{count} problem{'s' if count != 1 else ''}: nothing from this folder may "
                   "be applied", err=True)
        sys.exit(1)
    images = sorted(f"{ref.name}={ref.reference}" for ref in desired.images.values())
    if not text:
        _output.structured({"valid": True, "revision": revision, "apps": sorted(desired.apps),
                            "images": images,
                            "managedPrefixes": list(desired.settings.managed_prefixes)},
                           output)
        return
    click.echo(f"valid: {len(desired.apps)} apps, {len(desired.images)} images"
               + (f" ({', '.join(images)})" if images else "")
               + f", managed prefixes {', '.join(desired.settings.managed_prefixes)}")
