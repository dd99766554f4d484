"""Release waves: which wave of ``reconciler.yaml`` each app deploys in, and what the schema
cannot check about them. Pure.

A wave selects apps by id, by group (every app under it) or by a glob on the id; an app
belongs to the first wave that selects it, and apps no wave selects form a last wave of
their own, :data:`REST`. Waves are an outer order around dependencies: inside a wave apps
deploy in dependency layers (:mod:`core.plan`), and an app may depend on apps of its own or
an earlier wave, never a later one (it would start before what it needs).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from reconciler.core import model, parse
from reconciler.core import normalize as normalizing

REST = "(rest)"
"""The wave of the apps no configured wave selects (a name the schema does not allow)."""

_GLOB = frozenset("*?[")


def selects(selector: str, app_id: model.AppId) -> bool:
    """``*``: every app; a glob: matched against the whole id; else the id or its group."""
    if selector == "*":
        return True
    if any(c in _GLOB for c in selector):
        return fnmatch.fnmatchcase(app_id, selector)
    return model.is_under(app_id, selector)


def wave_of(app_id: model.AppId, waves: Sequence[model.ReleaseWave]) -> str:
    for wave in waves:
        if any(selects(s, app_id) for s in wave.selectors):
            return wave.name
    return REST


def ordered(waves: Sequence[model.ReleaseWave],
            app_ids: Iterable[model.AppId]) -> list[tuple[model.ReleaseWave, list[str]]]:
    """Each wave with the apps of ``app_ids`` it takes, in order; :data:`REST` last when some
    app is left over. Waves that take none are kept (a release still shows them)."""
    taken: dict[str, list[str]] = {w.name: [] for w in waves}
    rest: list[str] = []
    for app_id in sorted(app_ids):
        name = wave_of(app_id, waves)
        (rest if name == REST else taken[name]).append(app_id)
    stages = [(w, taken[w.name]) for w in waves]
    if rest:
        stages.append((model.ReleaseWave(name=REST, selectors=("*",)), rest))
    return stages


def check(parsed: parse.ParsedFile, settings: model.RepoSettings,
          apps: Mapping[str, tuple[model.JSON, parse.ParsedFile]]) -> list[model.Problem]:
    """Unique names, selectors that select an app of the repo, dependencies that point to
    the same or an earlier wave. ``parsed`` is the schema-valid ``reconciler.yaml``."""
    problems: list[model.Problem] = []
    if not settings.waves:
        return problems
    seen: set[str] = set()
    for index, wave in enumerate(settings.waves):
        if wave.name in seen:
            at = parse.pointer("waves", str(index), "name")
            problems.append(model.Problem(parsed.path, parsed.line_of(at),
                                          f"wave {wave.name!r} is named twice"))
        seen.add(wave.name)
        for at_selector, selector in enumerate(wave.selectors):
            if not any(selects(selector, a) for a in apps):
                at = parse.pointer("waves", str(index), "apps", str(at_selector))
                problems.append(model.Problem(parsed.path, parsed.line_of(at), (
                    f"wave {wave.name!r}: {selector!r} selects no app of this repo")))
    position = {w.name: i for i, w in enumerate(settings.waves)}
    position[REST] = len(settings.waves)
    for app_id, (app, file) in sorted(apps.items()):
        mine = wave_of(app_id, settings.waves)
        group = app_id.rsplit("/", 1)[0] or "/"
        for index, dependency in enumerate(_dependencies(app)):
            target = normalizing.absolute_id(dependency, base=group)
            theirs = {wave_of(a, settings.waves) for a in apps if model.is_under(a, target)}
            later = sorted((w for w in theirs if position[w] > position[mine]),
                           key=position.__getitem__)
            if later:
                problems.append(model.Problem(file.path, file.line_of(
                    f"/dependencies/{index}"), (
                    f"{app_id} (wave {mine!r}) depends on {target}, which deploys in the later "
                    f"wave {later[0]!r}: an app may depend on its own or an earlier wave")))
    return problems


def _dependencies(app: Mapping[str, Any]) -> list[str]:
    return [str(d) for d in app.get("dependencies") or ()]
