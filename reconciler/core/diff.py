"""Pair desired apps with live ones and say, per app, what differs: a diff is data.

``diff_apps`` normalizes both sides (:mod:`reconciler.core.normalize`), settles the choices
only Marathon makes (service ports for a declared ``0``, a ``role`` or accepted roles left
out), drops ignored fields, and compares with ``==``; only unequal pairs pay for a JSON Patch
and a readable change list. Live apps under a managed prefix without a desired twin come back
as DELETE candidates whatever ``prune`` says: the planner decides. Everything shown (patch,
changes) is masked by :mod:`reconciler.core.redact`; ``AppDiff.desired`` is what to send to
Marathon and stays unmasked. Live apps are diffed one by one as they are read: a caller
that streams Marathon's answer and keeps little of each app (``keep_live``) never holds
every live app at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

import jsonpatch

from reconciler.core import model, redact, sharing
from reconciler.core import normalize as normalizing

JSON = model.JSON

_ADOPTED_WHEN_ABSENT = ("role", "acceptedResourceRoles")
"""Left out of desired, Marathon picks these from its own configuration."""


def diff_apps(desired: model.DesiredState, live_apps: Iterable[JSON], *,
              keep_live: Callable[[JSON], JSON] | None = None) -> tuple[model.AppDiff, ...]:
    """One :class:`~reconciler.core.model.AppDiff` per desired or managed live app, by id.

    Each live app is diffed as it comes, so ``live_apps`` may be a stream that is never held
    whole. ``keep_live`` says what a diff that changes something keeps of its live app, and
    makes a no-op keep none (``live`` None): a caller streaming Marathon's answer then holds
    only what it will change. By default every diff keeps its whole live app.
    """
    settings = desired.settings
    found: dict[model.AppId, model.AppDiff] = {}
    # A release changes many apps alike (one image tag): their patches and changes are
    # held once, as equal values are in a revision (10,000 apps: 6 MB for the whole run).
    shared = sharing.Shared()
    for live in live_apps:
        app_id = normalizing.absolute_id(str(live.get("id", "")), base="/")
        desired_app = desired.apps.get(app_id)
        if desired_app is None and not settings.manages(app_id):
            continue
        if desired_app is None:
            found[app_id] = model.AppDiff(
                app_id=app_id, action=model.Action.DELETE, patch=(), changes=(), desired=None,
                live=live if keep_live is None else keep_live(live))
        else:
            ignore = settings.ignored_pointers_for(app_id)
            found[app_id] = _shared(shared, _diff_normalized(
                desired_app, live, keep_live=keep_live, ignore=ignore,
                normal_desired=normalizing.normalize_app(desired_app.definition, ignore=ignore)))
    for app_id, desired_app in desired.apps.items():
        if app_id not in found:
            found[app_id] = _create(desired_app, ignore=settings.ignored_pointers_for(app_id))
    return tuple(found[app_id] for app_id in sorted(found))


def _shared(shared: sharing.Shared, diff: model.AppDiff) -> model.AppDiff:
    if not diff.patch and not diff.changes:
        return diff
    return replace(diff, patch=shared.one(diff.patch), changes=shared.one(diff.changes))


def diff_app(desired: model.DesiredApp, live: JSON, *, ignore: tuple[str, ...] = ()
             ) -> model.AppDiff:
    """The difference between one desired app and its live twin."""
    return _diff_normalized(
        desired, live, ignore=ignore,
        normal_desired=normalizing.normalize_app(desired.definition, ignore=ignore))


def _diff_normalized(desired: model.DesiredApp, live: JSON, *, normal_desired: JSON,
                     ignore: tuple[str, ...],
                     keep_live: Callable[[JSON], JSON] | None = None) -> model.AppDiff:
    compared = compare(normal_desired, normalizing.normalize_app(live, ignore=ignore))
    if compared.equal:
        return model.AppDiff(app_id=desired.app_id, action=model.Action.NOOP, patch=(),
                             changes=(), desired=desired.definition,
                             live=live if keep_live is None else None)
    return model.AppDiff(
        app_id=desired.app_id,
        action=model.Action.SCALE if compared.scale_only else model.Action.UPDATE,
        patch=redact.mask_patch(make_patch(compared.live, compared.desired)),
        changes=field_changes(compared.live, compared.desired),
        desired=desired.definition, live=live if keep_live is None else keep_live(live))


@dataclass(frozen=True)
class Comparison:
    """Normalized desired and live side by side, as diff and drift both judge them."""

    desired: JSON
    """Normalized desired, with what Marathon chose where desired left it to Marathon."""
    live: JSON
    equal: bool
    scale_only: bool
    """Unequal only in ``instances``: a scale, not a new configuration."""


def compare(normal_desired: JSON, normal_live: JSON) -> Comparison:
    """The one comparison of a normalized desired app with its normalized live twin."""
    settled = adopt_server_choices(normal_desired, normal_live)
    if settled == normal_live:
        return Comparison(desired=settled, live=normal_live, equal=True, scale_only=False)
    scale_only = ({k: v for k, v in settled.items() if k != "instances"}
                  == {k: v for k, v in normal_live.items() if k != "instances"})
    return Comparison(desired=settled, live=normal_live, equal=False, scale_only=scale_only)


def _create(desired: model.DesiredApp, *, ignore: tuple[str, ...]) -> model.AppDiff:
    # Shown as written (not normalized): a new app reads best without Marathon's defaults.
    written = normalizing.without_pointers(desired.definition, ignore)
    return model.AppDiff(
        app_id=desired.app_id, action=model.Action.CREATE,
        patch=redact.mask_patch(make_patch({}, written)),
        changes=tuple(model.FieldChange(path=f"/{_escape(k)}", old=None,
                                        new=redact.mask(v, pointer=f"/{_escape(k)}"))
                      for k, v in written.items()),
        desired=desired.definition, live=None)


def adopt_server_choices(desired: JSON, live: JSON) -> JSON:
    """``desired`` (normalized) with what Marathon chose where desired left it to Marathon.

    A port declared ``0`` asks Marathon for a service port: the live port it assigned is no
    difference. Same for ``role`` and ``acceptedResourceRoles`` when desired leaves them out.
    """
    # Called once per app and poll: gather the choices, then copy ``desired`` at most once.
    adopted: JSON = {}
    for key in _ADOPTED_WHEN_ABSENT:
        if key not in desired and key in live:
            adopted[key] = live[key]
    container = desired.get("container")
    if container:
        mappings = _adopt_ports(container.get("portMappings"),
                                (live.get("container") or {}).get("portMappings"),
                                key="servicePort")
        if mappings is not None:
            adopted["container"] = {**container, "portMappings": mappings}
    definitions = _adopt_ports(desired.get("portDefinitions"), live.get("portDefinitions"),
                               key="port")
    if definitions is not None:
        adopted["portDefinitions"] = definitions
    return {**desired, **adopted} if adopted else desired


def _adopt_ports(desired: list[JSON] | None, live: list[JSON] | None, *, key: str
                 ) -> list[JSON] | None:
    """``desired`` with the ports Marathon assigned where it declares 0; None if none."""
    if not desired or not live or len(desired) != len(live):
        return None
    out: list[JSON] = []
    adopted = False
    for mine, theirs in zip(desired, live, strict=True):
        if mine.get(key) == 0 and theirs.get(key):
            mine = {**mine, key: theirs[key]}
            adopted = True
        out.append(mine)
    return out if adopted else None


def make_patch(live: JSON, desired: JSON) -> tuple[JSON, ...]:
    """RFC 6902 operations turning normalized ``live`` into normalized ``desired`` (unmasked)."""
    return tuple(jsonpatch.make_patch(live, desired).patch)


def field_changes(live: JSON, desired: JSON) -> tuple[model.FieldChange, ...]:
    """Readable changes, old (live) -> new (desired), masked, at the deepest useful pointer.

    Objects are compared key by key; lists of the same length element by element (a changed
    port mapping shows as one field); other lists and values are shown whole.
    """
    changes: list[model.FieldChange] = []
    _walk(live, desired, "", changes)
    return tuple(
        model.FieldChange(path=c.path, old=redact.mask(c.old, pointer=c.path),
                          new=redact.mask(c.new, pointer=c.path))
        for c in changes)


_ABSENT: Any = None


def _walk(old: Any, new: Any, pointer: str, out: list[model.FieldChange]) -> None:
    if old == new and isinstance(old, bool) == isinstance(new, bool):
        return
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(old.keys() | new.keys()):
            child = f"{pointer}/{_escape(key)}"
            if key not in new:
                out.append(model.FieldChange(path=child, old=old[key], new=_ABSENT))
            elif key not in old:
                out.append(model.FieldChange(path=child, old=_ABSENT, new=new[key]))
            else:
                _walk(old[key], new[key], child, out)
        return
    if (isinstance(old, list) and isinstance(new, list) and len(old) == len(new)
            and all(isinstance(v, dict) for v in old + new)):
        for index, (a, b) in enumerate(zip(old, new, strict=True)):
            _walk(a, b, f"{pointer}/{index}", out)
        return
    out.append(model.FieldChange(path=pointer, old=old, new=new))


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")
