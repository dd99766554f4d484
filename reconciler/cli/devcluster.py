"""``reconciler devcluster``: run the embedded Marathon-compatible dev cluster in the foreground."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click


@click.command("devcluster")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=int,
              help="Port of the API; 0 picks a free one (see --url-file).")
@click.option("--state-dir", type=click.Path(path_type=Path),
              help="Keep apps and versions here across restarts (default: a temporary folder).")
@click.option("--images", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Image catalog YAML (default: the catalog shipped for desired-state/).")
@click.option("--url-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Once listening, write the API's URL here; removed on exit.")
def command(host: str, port: int, state_dir: Path | None, images: Path | None,
            url_file: Path | None) -> None:
    """Serve Marathon's REST API v2 and run each app's tasks as local processes."""
    from reconciler.devcluster import catalog, server

    try:
        catalog.load(images)
    except catalog.CatalogError as e:
        raise click.ClickException(str(e)) from e
    if state_dir is None:
        state_dir = Path(tempfile.mkdtemp(prefix="reconciler-devcluster-"))
    server.serve(host=host, port=port, state_dir=state_dir, images=images, url_file=url_file)
