"""The embedded Marathon: the dev cluster as a child process of ``reconciler run``.

``RECONCILER_MARATHON_URL=embedded`` (the default of ``run``) starts it through the one
dev-cluster launcher; its URL stays in the state dir while it runs, so that ``reconciler
status`` finds it with no flags.
"""

from __future__ import annotations

from pathlib import Path

from reconciler.devcluster import launch

Embedded = launch.RunningCluster
"""The dev cluster started as a child process (``RECONCILER_MARATHON_URL=embedded``)."""

EMBEDDED_FOLDER = "devcluster"
"""In the state dir: the embedded dev cluster's state, log and, while it runs, its URL."""


def start_embedded_marathon(state_dir: Path, *, timeout: float = 30.0) -> Embedded:
    """Start ``reconciler devcluster`` on a free port, state under ``state_dir/devcluster``.

    Its URL stays in ``state_dir/devcluster/url`` while it runs, so ``reconciler status``
    finds it; ``stop()`` removes it.
    """
    # In the caller's session, as before the launcher: a terminal that closes on
    # ``reconciler run`` takes its dev cluster down too.
    return launch.launch(state_dir=state_dir / EMBEDDED_FOLDER, own_session=False,
                         timeout=timeout)


def embedded_url(state_dir: Path) -> str | None:
    """The URL of the embedded dev cluster a ``reconciler run`` started, if it runs."""
    return launch.read_url(state_dir / EMBEDDED_FOLDER)
