"""Live apps held packed in memory, and the read-only view of them at one moment
(:class:`LiveApps`): what :mod:`livecache` keeps, and what the drift check and the status
board read.

Each app is held in two parts, each held once and compressed: the part statuses read
(tasks, health, deployments, image; :data:`STATUS_FIELDS`) and the rest of its definition.
Both are zlib streams primed with one app made of Marathon's defaults (:data:`_PRIMER`): most
of an app's JSON is field names and default values every app repeats, so an app as Marathon
answers it packs to a third of its JSON or less, where its status part as plain JSON and the
rest compressed alone kept 77 % (``tests/shell/test_live_apps.py``). At 10,000 apps the
parsed definitions would take about 60 MB. A whole definition is unpacked only when asked
for (:meth:`LiveApps.get`): the drift check asks for apps whose version it has not judged
yet, an app's page for its own app; the status board unpacks the status parts.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import orjson

from reconciler.core import model
from reconciler.core import normalize as normalizing
from reconciler.shell import marathon

STATUS_FIELDS = ("id", "version", "versionInfo", "instances", "healthChecks", "tasks",
                 "deployments", "lastTaskFailure", "tasksStaged", "tasksRunning", "tasksHealthy",
                 "tasksUnhealthy")
"""What the status model (``core/status.py``, ``core/health.py``) and the promotion gate read
of a live app, besides its image."""


@dataclass(frozen=True, slots=True)
class Held:
    """One live app: its version, and packed apart what statuses read of it (read often) and
    the rest of its definition (read when an app's version is new, or for its page). Each
    part is held once: the whole app is the two put together."""

    version: object
    packed_view: bytes
    packed_rest: bytes
    view_hash: int
    """``hash`` of the status part's JSON: a resync tells an unchanged app by it, without
    packing its status part again (10,000 apps every resync)."""
    from_event: bool = False
    """Its definition came from an ``api_post_event`` (refetched soon), not from a read."""

    @classmethod
    def of(cls, app: model.JSON, *, known: Held | None = None,
           from_event: bool = False) -> Held:
        """``app`` packed; the rest of its definition taken from ``known`` when that was
        read from Marathon at the same version (Marathon gives any change of a definition a
        new ``version``; what changes without one is in the status part)."""
        view = {k: app[k] for k in _IN_VIEW if k in app}
        image = ((app.get("container") or {}).get("docker") or {}).get("image")
        if image is not None:
            view["container"] = {"docker": {"image": image}}
        version = app.get("version")
        try:
            view_json = orjson.dumps(view)
            view_hash = hash(view_json)
            if (known is not None and not known.from_event and version is not None
                    and known.version == version):
                if not from_event and view_hash == known.view_hash:
                    # Unchanged: the object held already stays. A resync every few seconds
                    # during a release made 10,000 new ones each time, long-lived objects
                    # strewn among the release's short-lived ones: memory that was never
                    # handed back once the release was over. (Two status parts of one
                    # version with one 64-bit hash: a chance of 2^-64 per resync and app.)
                    return known
                return cls(version=known.version, packed_view=_compress(view_json),
                           packed_rest=known.packed_rest, view_hash=view_hash,
                           from_event=from_event)
            rest = orjson.dumps({k: v for k, v in app.items() if k not in _NOT_IN_REST})
            return cls(version=version, packed_view=_compress(view_json),
                       packed_rest=_compress(rest), view_hash=view_hash, from_event=from_event)
        except orjson.JSONEncodeError as e:  # an integer past 64 bits, say: not Marathon's
            raise marathon.MarathonError(f"Marathon answered an app that is not plain JSON "
                                         f"({str(app.get('id'))[:200]!r}): {e}") from e

    def unpacked(self) -> model.JSON:
        view = self.status_view()
        view.pop("container", None)  # only the image: the rest has the whole container
        app: model.JSON = {**view, **_unpack(self.packed_rest)}
        return app

    def status_view(self) -> model.JSON:
        view: model.JSON = _unpack(self.packed_view)
        return view


_IN_VIEW = (*STATUS_FIELDS, *sorted(normalizing.SERVER_FIELDS - set(STATUS_FIELDS)))
"""Packed with the status part: all that can change without a new ``version``."""
_NOT_IN_REST = frozenset(_IN_VIEW)
_FAST = 1
"""zlib's fastest level: packing is paid for each app that changes, at every event."""


def _primer() -> bytes:
    """One app as Marathon answers it (its fields in Marathon's order, each at its default,
    ``core/normalize.py``), with a task: what zlib looks back into before each app."""
    at = "2026-01-01T00:00:00.000Z"
    defaults = normalizing.APP_DEFAULTS
    check = {"protocol": "MESOS_HTTP", **normalizing.HEALTH_CHECK_DEFAULTS,
             **normalizing.HEALTH_CHECK_PROTOCOL_DEFAULTS["MESOS_HTTP"], "portIndex": 0}
    container = {"type": "DOCKER", "docker": {**normalizing.DOCKER_DEFAULTS, "image": ""},
                 "portMappings": [{**normalizing.DEFAULT_PORT_MAPPING, "hostPort": 0}],
                 "volumes": []}
    task = {"id": "", "appId": "/", "host": "",
            "ipAddresses": [{"ipAddress": "", "protocol": "IPv4"}], "ports": [],
            "servicePorts": [], "slaveId": "", "role": "*", "stagedAt": at, "startedAt": at,
            "state": "TASK_RUNNING", "version": at,
            "healthCheckResults": [{"alive": True, "consecutiveFailures": 0,
                                    "firstSuccess": at, "lastFailure": None,
                                    "lastSuccess": at, "lastFailureCause": None,
                                    "instanceId": ""}]}
    app = {"id": "/", "cmd": None, "args": [], "user": None, "env": {},
           **{k: defaults[k] for k in ("instances", "cpus", "mem", "disk", "gpus", "executor",
                                       "constraints", "fetch")},
           "storeUrls": [],
           **{k: defaults[k] for k in ("backoffSeconds", "backoffFactor",
                                       "maxLaunchDelaySeconds")},
           "container": container, "requirePorts": False, "healthChecks": [check],
           "readinessChecks": [], "dependencies": [], "labels": {},
           "acceptedResourceRoles": None, "secrets": {}, "killSelection": "YOUNGEST_FIRST",
           "role": "*", "upgradeStrategy": normalizing.UPGRADE_STRATEGY_DEFAULTS,
           "unreachableStrategy": defaults["unreachableStrategy"],
           "networks": [{"mode": "container/bridge"}], "version": at,
           "versionInfo": {"lastScalingAt": at, "lastConfigChangeAt": at},
           "tasksStaged": 0, "tasksRunning": 0, "tasksHealthy": 0, "tasksUnhealthy": 0,
           "deployments": [], "tasks": [task], "lastTaskFailure": None}
    rest = {k: v for k, v in app.items() if k not in _NOT_IN_REST}
    view = {k: app[k] for k in _IN_VIEW if k in app}
    # Nearer the end costs less to refer to: an app at rest (no task) last.
    return orjson.dumps(rest) + orjson.dumps(view) + orjson.dumps({**view, "tasks": []})


_PRIMER = _primer()


def _compress(text: bytes) -> bytes:
    packer = zlib.compressobj(_FAST, zdict=_PRIMER)
    return packer.compress(text) + packer.flush()


def _unpack(packed: bytes) -> model.JSON:
    unpacker = zlib.decompressobj(zdict=_PRIMER)
    value: model.JSON = orjson.loads(unpacker.decompress(packed) + unpacker.flush())
    return value


class LiveApps:
    """The live apps at one moment (the cache moves on; this does not)."""

    def __init__(self, held: Mapping[str, Held]) -> None:
        self._held = held

    @classmethod
    def of(cls, apps: Iterable[model.JSON]) -> LiveApps:
        """Apps read some other way (one ``GET /v2/apps``, a test's list)."""
        return cls({absolute(a.get("id")): Held.of(a) for a in apps})

    def versions(self) -> dict[str, object]:
        """Marathon's ``version`` of every live app, by absolute id."""
        return {app_id: h.version for app_id, h in self._held.items()}

    def get(self, app_id: str) -> model.JSON | None:
        """The whole live app (unpacked now), None when it is not live."""
        held = self._held.get(app_id)
        return None if held is None else held.unpacked()

    def all(self) -> list[model.JSON]:
        """Every live app, whole (unpacks them all: for a plan, not for a page)."""
        return [h.unpacked() for h in self._held.values()]

    def status_views(self) -> list[model.JSON]:
        """Every live app as statuses read it (:data:`STATUS_FIELDS` and the image)."""
        return [h.status_view() for h in self._held.values()]

    def status_views_by_id(self) -> Mapping[str, model.JSON]:
        """The same by id, each unpacked only when looked up: a reader going app by app
        never holds them all (10,000 parsed at once took 23 MB during a release)."""
        return StatusViews(self._held)


class StatusViews(Mapping[str, model.JSON]):
    """Live apps' status views by id, unpacked at each lookup (a new dict each time)."""

    def __init__(self, held: Mapping[str, Held]) -> None:
        self._held = held

    def marks(self) -> dict[str, bytes]:
        """Each app's status view as held, packed (the same bytes only for the same view),
        without unpacking any: what :func:`status.compute` knows an unchanged app by. The
        bytes themselves, not a hash of them: a collision would show an app as it was."""
        return {app_id: h.packed_view for app_id, h in self._held.items()}

    def __getitem__(self, app_id: str) -> model.JSON:
        return self._held[app_id].status_view()

    def __contains__(self, app_id: object) -> bool:
        return app_id in self._held  # without unpacking

    def __iter__(self) -> Iterator[str]:
        return iter(self._held)

    def __len__(self) -> int:
        return len(self._held)


def newer(held: Held, than: Held) -> bool:
    """``held`` is of a later version. Marathon writes every version as a UTC time of one
    fixed width (``state/Timestamp.scala``: ``yyyy-MM-dd'T'HH:mm:ss.SSS'Z'``), so the later
    one sorts after."""
    return (isinstance(held.version, str) and isinstance(than.version, str)
            and held.version > than.version)


def absolute(app_id: object) -> str:
    return normalizing.absolute_id(str(app_id or ""), base="/") if app_id else ""
