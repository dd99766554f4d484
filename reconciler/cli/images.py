"""``reconciler images [PATH]``: each image's current tag against its registry.

For every image of ``images.yaml`` with an update policy: the tag in the folder, the newest
qualifying tag in the registry, and why each other tag was skipped (not a version, not
matching, pre-release, older). Reads only; commits nothing (the controller's registry
watcher does that). Exit 0, or 1 when the folder is invalid or a registry could not be asked.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

import click

from reconciler.cli import _output
from reconciler.cli import sync as sync_cli
from reconciler.core import load as loading
from reconciler.core import model
from reconciler.shell import directory, registry, registry_watch


@click.command()
@_output.output_option()
@click.option("--auth-file", type=click.Path(path_type=Path, dir_okay=False),
              help="Registry credentials, Docker config.json form (default: "
                   "$RECONCILER_REGISTRY_AUTH_FILE, read by the one configuration layer).")
@click.option("--timeout", type=float, default=10.0, show_default=True,
              help="Seconds to wait for each registry answer.")
@click.argument("path", type=click.Path(path_type=Path), default=Path("."))
def command(output: str, auth_file: Path | None, timeout: float, path: Path) -> None:
    """Compare each image of the config repo at PATH (default: .) with its registry."""
    try:
        files, revision = directory.read_directory(path)
        desired = loading.load_desired_state(files, revision=revision)
        auth_file = auth_file or sync_cli.load_settings().registry_auth_file
        credentials = registry.read_auth_file(auth_file) if auth_file else {}
    except directory.UnreadableDirectory as e:
        _fail(str(e))
    except registry.AuthRefused as e:
        _fail(e.reason)
    except model.InvalidDesiredState as e:
        for problem in e.problems:
            click.echo(str(problem), err=True)
        _fail(f"{len(e.problems)} problem(s) in {path} (run `reconciler validate`)")
    clients = registry_watch.clients_for(desired.images, credentials=credentials,
                                         timeout=timeout)
    reports = {r.image: r for r in registry_watch.survey(desired.images, clients=clients)}
    if output != "text":
        _output.structured([_as_json(ref, reports.get(name))
                            for name, ref in sorted(desired.images.items())], output)
    else:
        for name, ref in sorted(desired.images.items()):
            click.echo(_as_text(ref, reports.get(name)), nl=False)
    if any(r.error for r in reports.values()):
        sys.exit(1)


def _as_json(ref: model.ImageRef, report: registry_watch.ImageReport | None) -> dict[str, object]:
    if report is None:
        return {"image": ref.name, "current": ref.tag, "policy": None}
    return {"image": ref.name, "current": ref.tag, "policy": {
                "registry": report.registry, "repository": report.repository},
            "newest": report.newest, "update": report.candidate, "error": report.error,
            "skipped": [{"tag": s.tag, "skip": s.skip.value, "reason": s.reason}
                        for s in report.skipped]}


def _as_text(ref: model.ImageRef, report: registry_watch.ImageReport | None) -> str:
    if report is None:
        return f"{ref.name}: {ref.tag} (no update policy: moved by hand)\n"
    where = f"{report.registry} {report.repository}"
    if report.error is not None:
        return f"{ref.name}: {ref.tag}, registry {where}: error: {report.error}\n"
    if report.candidate is not None:
        head = f"{ref.name}: {ref.tag} -> {report.candidate} available ({where})"
    elif report.newest is None:
        head = f"{ref.name}: {ref.tag}, no qualifying tag in {where}"
    else:
        head = f"{ref.name}: {ref.tag} is the newest qualifying tag ({where})"
    lines = [head] + [f"  skipped {s.tag}: {s.reason}" for s in report.skipped]
    return "\n".join(lines) + "\n"


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)
