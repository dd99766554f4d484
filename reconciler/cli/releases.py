"""``reconciler releases``: each revision applied across apps, newest first, as recorded.

A release says who committed what and why (author, message), what started it, which images
it moved (old -> new tag), how each app's change ended and how the release ended overall
(in progress, succeeded, partially rolled back, rolled back, superseded, failed).
"""

from __future__ import annotations

from pathlib import Path

import click

from reconciler.cli import _output
from reconciler.cli import sync as sync_cli
from reconciler.shell import records


def _text(release: records.Release) -> str:
    message = (release.message or "").split("\n", 1)[0]
    lines = [f"{release.started_at}  {release.revision[:12]}  {release.outcome}  "
             f"{release.trigger}" + (f" by {release.requested_by}" if release.requested_by
                                     else "")]
    if release.author or message:
        lines.append(f"    {release.author or 'unknown author'}: {message}")
    lines += [f"    image {change}" for change in release.images_changed]
    lines += [f"    {app.app_id}  {app.action}  {app.outcome or 'in progress'}"
              + (f": {app.reason}" if app.reason else "") for app in release.apps]
    return "\n".join(lines)


@click.command()
@click.option("--limit", type=click.IntRange(min=1), default=None, metavar="N",
              help="Only the N newest releases (default: all).")
@_output.output_option()
@sync_cli.state_dir_option
def command(limit: int | None, output: str, state_dir: Path | None) -> None:
    """Print the releases, newest first: author and message, trigger, images changed, each
    app's outcome and the release's overall outcome. A rolled-back release stays rolled back
    whatever runs later."""
    with sync_cli.open_store(state_dir) as store:
        found = store.releases(limit=limit)
    if output != "text":
        _output.structured([r.as_json() for r in found], output)
        return
    if not found:
        click.echo("no release recorded")
    for release in found:
        click.echo(_text(release))
