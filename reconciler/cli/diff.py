"""``reconciler diff``: what applying a config repo folder would change in Marathon.

Reads live apps with ONE request, diffs them against the folder (normalized, masked) and
prints a plan: text for people, ``--output json`` for programs. ``--exit-code`` makes the
result scriptable (0 no changes, 2 changes, 1 errors), like ``terraform plan -detailed-exitcode``.
"""

from __future__ import annotations

import sys
import urllib.parse
from pathlib import Path
from typing import NoReturn

import click

from reconciler.cli import _output
from reconciler.cli import sync as sync_cli
from reconciler.core import diff as diffing
from reconciler.core import load as loading
from reconciler.core import model, render
from reconciler.shell import directory, marathon

EXIT_NO_CHANGES = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2


def shown_url(url: str) -> str:
    """The URL(s) without any ``user:password@`` part, for printing."""
    return ",".join(
        urllib.parse.urlsplit(u.strip())._replace(
            netloc=urllib.parse.urlsplit(u.strip()).netloc.rsplit("@", 1)[-1]).geturl()
        for u in url.split(","))


def live_prefix(settings: model.RepoSettings) -> str | None:
    """Narrow the one request to a single managed group when there is exactly one."""
    prefixes = [p for p in settings.managed_prefixes if p != "/"]
    if len(prefixes) == 1 and len(settings.managed_prefixes) == 1:
        return prefixes[0]
    return None


@click.command()
@sync_cli.marathon_option
@_output.output_option()
@click.option("--exit-code", "exit_code", is_flag=True,
              help="Exit 0 when nothing would change, 2 when something would, 1 on errors.")
@click.option("--full", is_flag=True,
              help="Never shorten values, and list unchanged apps too.")
@click.argument("path", type=click.Path(path_type=Path), default=Path("."))
def command(marathon_url: str | None, output: str, exit_code: bool, full: bool,
            path: Path) -> None:
    """Show what applying the config repo at PATH (default: .) would change in Marathon.

    Credentials come from $RECONCILER_MARATHON_USERNAME/PASSWORD or $RECONCILER_MARATHON_TOKEN
    (or the files named by ..._PASSWORD_FILE / ..._TOKEN_FILE).
    Secret values are always masked.
    """
    try:
        files, revision = directory.read_directory(path)
        desired = loading.load_desired_state(files, revision=revision)
    except directory.UnreadableDirectory as e:
        _fail(str(e))
    except model.InvalidDesiredState as e:
        for problem in e.problems:
            click.echo(str(problem), err=True)
        _fail(f"{len(e.problems)} problem(s) in {path}: no plan (run `reconciler validate`)")
    with sync_cli.open_client(marathon_url) as client:
        try:
            live_apps = client.list_apps(prefix=live_prefix(desired.settings))
        except marathon.MarathonError as e:
            _fail(f"cannot read live apps from Marathon: {e}")
        marathon_urls = ",".join(client.urls)
    diffs = diffing.diff_apps(desired, live_apps)
    if output != "text":
        _output.structured({"revision": desired.revision, **render.render_json(diffs)}, output)
    else:
        click.echo(f"desired {desired.revision} against {shown_url(marathon_urls)}")
        click.echo(render.render_text(diffs, full=full), nl=False)
    if exit_code and render.has_changes(diffs):
        sys.exit(EXIT_CHANGES)


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_ERROR)
