"""``reconciler releases``: each revision applied across apps, newest first, as recorded.

A release says who committed what and why (author, message), what started it (a tag seen in
the registry, or a commit's author), which images it moved (old -> new tag), its release
waves (state, soak, times), how each app's change ended and when, and how it ended overall
(in progress, waiting for window, succeeded, partially rolled back, rolled back, superseded,
failed). Apps a sync window holds are listed as waiting, with why; the run that applies them
when the window opens finishes the same release.
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
                                     else ""),
             f"    started by {release.cause}"]
    if release.author or message:
        lines.append(f"    {release.author or 'unknown author'}: {message}")
    lines += [f"    image {change}" for change in release.images_changed]
    for wave in release.waves:
        times = " ".join(f"{label} {at}" for label, at in (
            ("started", wave.started_at), ("finished", wave.finished_at)) if at)
        soak = f", soak {wave.soak:g}s" if wave.soak else ""
        lines.append(f"    wave {wave.name}: {wave.state}{soak}" + (f" ({times})" if times
                                                                     else "")
                     + (f": {wave.reason}" if wave.reason else ""))
        lines += [f"      {_app(app)}" for app in release.apps if app.app_id in wave.apps]
    waved = {a for w in release.waves for a in w.apps}
    lines += [f"    {_app(app)}" for app in release.apps if app.app_id not in waved]
    return "\n".join(lines)


def _app(app: records.ReleaseApp) -> str:
    timing = f" (started {app.started_at}, ended {app.at})" if app.started_at and \
        app.outcome else ""
    return (f"{app.app_id}  {app.action}  {app.outcome or 'in progress'}{timing}"
            + (f": {app.reason}" if app.reason else ""))


@click.command()
@click.option("--limit", type=click.IntRange(min=1, max=_output.LIMIT_MAX), default=None,
              metavar="N",
              help="Only the N newest releases (default: all).")
@_output.output_option()
@sync_cli.state_dir_option
def command(limit: int | None, output: str, state_dir: Path | None) -> None:
    """Print the releases, newest first: author and message, trigger, images changed, each
    app's outcome and the release's overall outcome. A rolled-back release stays rolled back
    whatever runs later."""
    with sync_cli.open_store(state_dir, reading=True) as store:
        found = store.releases(limit=limit)
    if output != "text":
        _output.structured([r.as_json() for r in found], output)
        return
    if not found:
        click.echo("no release recorded")
    for release in found:
        click.echo(_text(release))
