"""What every part of the running dev cluster shares: its apps, deployments, clocks and events.

:class:`runtime.Cluster` is made of parts (``tasks``, ``health``, ``deployments``) that each
subclass :class:`SharedState`; they call each other only through the methods declared at the
end of this class. Everything changes on the event loop only.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp

from reconciler.devcluster import catalog, events, model, serviceports, tree

JSON = dict[str, Any]


class SharedState:
    """The dev cluster's state and the few operations every part uses."""

    def __init__(
        self, *, images: catalog.Catalog, state_dir: Path, clock: Callable[[], float],
        timestamp: Callable[[], str] = model.now_iso,
    ) -> None:
        self.images = images
        self.state_dir = state_dir
        self.clock = clock
        """Monotonic seconds: launch delays, health check grace periods."""
        self.timestamp = timestamp
        """Marathon's ISO stamps: versions, events, task times."""
        self.apps: dict[str, model.AppRecord] = {}
        self.deployments: dict[str, model.Deployment] = {}
        self.stopping: dict[str, model.AppRecord] = {}
        """Apps removed from the root whose tasks a ``StopApplication`` is still killing."""
        self.tree = tree.GroupTree(version=timestamp())
        self.allocator = serviceports.ServicePortAllocator()
        self.events = events.EventBus(timestamp=timestamp)
        self._changed = asyncio.Event()
        """Set when the state to keep changed (the saver writes it)."""
        self._http: aiohttp.ClientSession | None = None
        self._json_cache: dict[str, bytes] = {}
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._stopping = False

    def publish(self, event_type: str, **fields: Any) -> None:
        self.events.publish(event_type, **fields)

    def _touch(self, app_id: str | None = None) -> None:
        """Forget the cached JSON of ``app_id`` (of every app, for None): it changed."""
        if app_id is None:
            self._json_cache.clear()
        else:
            self._json_cache.pop(app_id, None)

    @staticmethod
    def _notify(record: model.AppRecord) -> None:
        """Wake whatever waits on this app's tasks (only this app's: 10,000 apps may wait)."""
        record.wakeup.set()

    if TYPE_CHECKING:
        # Provided by the parts that make up runtime.Cluster.

        def _launch(self, record: model.AppRecord) -> None: ...  # tasks

        async def _kill(self, record: model.AppRecord, task: model.Task, *, message: str = "",
                        relaunch: bool = False) -> None: ...  # tasks

        def _kill_soon(self, record: model.AppRecord, task: model.Task) -> None: ...  # tasks

        def _environment(self, app: JSON, task: model.Task) -> dict[str, str]: ...  # tasks

        async def _health_loop(self, record: model.AppRecord, task: model.Task, index: int,
                               check: JSON) -> None: ...  # health

        def _converge_soon(self, record: model.AppRecord) -> None: ...  # deployments

        async def _run_deployment(self, deployment: model.Deployment) -> None: ...  # deployments
