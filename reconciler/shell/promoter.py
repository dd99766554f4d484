"""Promotion: one environment's image tag written into another's ``images.yaml`` once it has
run healthy in the first for the soak time; recorded, and linked to the release it became.

Steps of :meth:`Promoter.promote` (one promotion at a time):

1. refresh the working copy of the config repo (the branch as it is now) and read the
   source environment's folder (its catalog, and which apps use the image) and the target's
   ``images.yaml``;
2. read the source's Marathon (one ``GET /v2/apps``) and its records (the status model:
   each app's state and since when), and turn each app using the image into
   :class:`promotion.AppEvidence`;
3. :func:`promotion.judge` decides (pure); a refusal is returned with what is missing;
4. on ``promote``: the layout-preserving tag edit (:func:`retag.set_tag`), one commit
   pushed to the followed branch (:class:`bumper.WorkingCopy`), and a promotion record in
   the target's records, linking the source's release; the target's release of the commit
   is linked by :meth:`Promoter.link_releases` once it has appeared.

:meth:`Promoter.promote_soaked` is the opt-in policy (``auto_promote``): each listed image
is promoted as soon as the gate allows, once per tag (a tag promoted before and taken back
by a person is not pushed again).

Exception tree::

    PromotionError        the request cannot be judged (unknown environment, invalid
                          folder, Marathon or Git unavailable): ``reason`` says why
"""

from __future__ import annotations

import logging
import posixpath
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.core import health, model, promotion, retag
from reconciler.core import load as loading
from reconciler.shell import (
    bumper,
    config,
    directory,
    marathon,
    readmodel,
    records,
    registry_watch,
    telemetry,
)

log = logging.getLogger(__name__)

AUTOMATIC = "reconciler (auto_promote)"
"""Who an automatic promotion is recorded as requested by."""


class PromotionError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Side:
    """What promotion needs of one environment: its declaration, records and Marathon."""

    environment: config.Environment
    records: records.RecordStore
    live_apps: Callable[[], Sequence[model.JSON]]


@dataclass(frozen=True)
class Assessment:
    """A judged request, with what the commit and the record need."""

    verdict: promotion.Verdict
    source: str
    target: str
    reference: model.ImageRef | None
    """The source catalog's entry for the image."""
    images_path: str
    """The target's images file, from the repo's root."""
    source_revision: str | None
    evidence: tuple[promotion.AppEvidence, ...]

    @property
    def message(self) -> str:
        return self.verdict.message(source=self.source, target=self.target)

    def as_json(self) -> dict[str, Any]:
        return {**self.verdict.as_json(), "from": self.source, "to": self.target,
                "sourceRelease": self.source_revision, "message": self.message}


@dataclass(frozen=True)
class Result:
    assessment: Assessment
    promotion: records.Promotion | None = None
    """The record, when the commit was pushed."""
    notes: tuple[str, ...] = field(default=())

    @property
    def promoted(self) -> bool:
        return self.promotion is not None

    @property
    def message(self) -> str:
        if self.promotion is None:
            return self.assessment.message
        return (f"{self.assessment.message}\ncommit {self.promotion.commit} pushed; "
                f"promotion {self.promotion.promotion_id} recorded in {self.assessment.target}")

    def as_json(self) -> dict[str, Any]:
        return {**self.assessment.as_json(), "promoted": self.promoted,
                "promotion": self.promotion.as_json() if self.promotion else None,
                "message": self.message}


class Promoter:
    """Promotions between the environments of one config repo."""

    def __init__(self, *, sides: Mapping[str, Side], copy: bumper.WorkingCopy,
                 clock: Callable[[], float] = time.time) -> None:
        self._sides = dict(sides)
        self._copy = copy
        self._clock = clock
        self._lock = threading.Lock()

    def targets(self) -> list[config.Environment]:
        """The environments that take promotions (they name ``promote_from``)."""
        return [s.environment for s in self._sides.values() if s.environment.promote_from]

    def images(self, target: str) -> list[str]:
        """The images the target's source environment names (what could be promoted)."""
        with self._lock:
            source = self._side(target).environment.promote_from
            if source is None:
                return []
            try:
                self._copy.refresh()
            except bumper.BumpError as e:
                raise PromotionError(f"config repo: {e.reason}") from e
            return sorted(self._desired(self._side(source).environment).images)

    def assess(self, image: str, *, target: str, source: str | None = None) -> Assessment:
        """Judge promoting ``image`` into ``target`` now, without writing anything."""
        with self._lock:
            return self._assess(image, target=target, source=source)

    def promote(self, image: str, *, target: str, source: str | None = None,
                requested_by: str | None, automatic: bool = False) -> Result:
        """Promote ``image`` into ``target`` if the gate allows; the refusal otherwise."""
        with self._lock:
            assessment = self._assess(image, target=target, source=source)
            telemetry.PROMOTIONS.labels(target=target,
                                        decision=str(assessment.verdict.decision)).inc()
            result = (self._write(assessment, requested_by=requested_by, automatic=automatic)
                      if assessment.verdict.accepted else Result(assessment))
            self._sides[target].records.audit(
                who=requested_by or AUTOMATIC, action="promote",
                target=f"{image} {assessment.source} -> {target}",
                result=result.message.split("\n", 1)[0])
            return result

    def promote_soaked(self) -> list[Result]:
        """The auto_promote policy: every listed image whose gate is open, once per tag."""
        results = []
        for side in self._sides.values():
            env = side.environment
            for image in env.auto_promote:
                try:
                    assessment = self.assess(image, target=env.name)
                except PromotionError as e:
                    telemetry.event(log, "auto-promotion not judged", level=logging.WARNING,
                                    environment=env.name, image=image, reason=e.reason)
                    continue
                verdict = assessment.verdict
                if not verdict.accepted:
                    continue
                done = {(p.image, p.tag) for p in side.records.promotions()}
                if (image, verdict.tag) in done:
                    continue  # promoted once; a person took it back: leave it to them
                result = self.promote(image, target=env.name, requested_by=None,
                                      automatic=True)
                telemetry.event(log, "auto-promotion", environment=env.name, image=image,
                                tag=verdict.tag, promoted=result.promoted)
                results.append(result)
        return results

    def link_releases(self) -> list[records.Promotion]:
        """Link each promotion whose commit has rolled out to the target's release of it."""
        linked = []
        for side in self._sides.values():
            waiting = side.records.promotions(unlinked_only=True)
            if not waiting:
                continue
            releases = list(reversed(side.records.releases(apps_shown=0)))  # oldest first
            for promoted in waiting:
                release = _release_of(promoted, releases)
                if release is not None:
                    side.records.link_promotion(promoted.promotion_id,
                                                target_revision=release.revision)
                    linked.append(promoted)
                    telemetry.event(log, "promotion linked", environment=side.environment.name,
                                    promotion=promoted.promotion_id, release=release.revision)
        return linked

    # -- steps -------------------------------------------------------------------------------

    def _assess(self, image: str, *, target: str, source: str | None) -> Assessment:
        target_side = self._side(target)
        allowed = target_side.environment.promote_from
        if allowed is None:
            raise PromotionError(f"{target} takes no promotions (no promote_from)")
        source = source or allowed
        if source != allowed:
            raise PromotionError(f"{target} takes promotions from {allowed} only, not {source}")
        source_side = self._side(source)
        try:
            self._copy.refresh()
            images_path, target_catalog = registry_watch.read_catalog(
                self._copy, repo_path=target_side.environment.path)
        except bumper.BumpError as e:
            raise PromotionError(f"config repo: {e.reason}") from e
        desired = self._desired(source_side.environment)
        ref = desired.images.get(image)
        target_ref = target_catalog.get(image)
        if target_ref is None:
            raise PromotionError(f"{target}'s images file has no image {image!r}: add it "
                                 "by hand once")
        try:
            live = {str(a.get("id")): a for a in source_side.live_apps()}
        except marathon.MarathonError as e:
            raise PromotionError(f"{source}'s Marathon: {e.message}") from e
        statuses = {s.app_id: s for s in readmodel.app_rows(source_side.records,
                                                            list(live.values()))}
        evidence = tuple(_evidence(app_id, live=live.get(app_id), row=statuses.get(app_id))
                         for app_id, app in desired.apps.items() if app.image_name == image)
        verdict = promotion.judge(
            image=image, source_reference=ref.reference if ref else None,
            target_tag=_tag(target_ref), apps=evidence, soak=target_side.environment.soak,
            now=self._clock())
        if verdict.accepted and ref is not None and ref.digest is None \
                and target_ref.digest is not None:
            raise PromotionError(f"{target} pins {image} by digest and {source} does not: "
                                 f"pin the digest in {source} first")
        return Assessment(
            verdict=verdict, source=source, target=target, reference=ref,
            images_path=images_path, evidence=evidence,
            source_revision=_source_release(source_side.records, image=image,
                                            tag=verdict.tag, apps=evidence))

    def _write(self, assessment: Assessment, *, requested_by: str | None,
               automatic: bool) -> Result:
        ref, verdict = assessment.reference, assessment.verdict
        assert ref is not None  # an accepted verdict has a source reference
        path = assessment.images_path
        try:
            text = retag.set_tag(model.SourceFile(path=path, text=self._copy.read(path)),
                                 image=ref.name, tag=ref.tag, digest=ref.digest)
            commit = self._copy.commit_and_push(
                relative=path, text=text, branch=self._copy.branch,
                message=promotion.commit_message(
                    verdict=verdict, images_path=path, source=assessment.source,
                    target=assessment.target, source_revision=assessment.source_revision,
                    evidence=assessment.evidence, requested_by=requested_by,
                    automatic=automatic))
        except retag.EditRefused as e:
            raise PromotionError(str(e)) from e
        except bumper.BumpError as e:
            raise PromotionError(f"config repo: {e.reason}") from e
        store = self._sides[assessment.target].records
        promotion_id = store.record_promotion(
            image=ref.name, tag=verdict.tag, previous_tag=verdict.target_tag,
            source=assessment.source, target=assessment.target,
            source_revision=assessment.source_revision, commit=commit,
            requested_by=requested_by or AUTOMATIC, automatic=automatic,
            evidence=[{"app": a.app_id, "image": a.live_image, "health": a.health,
                       "healthySince": records.iso(a.healthy_since)}
                      for a in assessment.evidence])
        recorded = next(p for p in store.promotions() if p.promotion_id == promotion_id)
        telemetry.event(log, "promoted", image=ref.name, tag=verdict.tag,
                        source=assessment.source, target=assessment.target, commit=commit,
                        automatic=automatic)
        return Result(assessment, promotion=recorded)

    def _side(self, name: str) -> Side:
        side = self._sides.get(name)
        if side is None:
            known = ", ".join(sorted(self._sides)) or "none"
            raise PromotionError(f"no environment {name!r} (known: {known})")
        return side

    def _desired(self, env: config.Environment) -> model.DesiredState:
        folder = self._copy.directory / env.path if env.path != "." else self._copy.directory
        try:
            files, _ = directory.read_directory(folder)
            return loading.load_desired_state(files, revision="promotion")
        except directory.UnreadableDirectory as e:
            raise PromotionError(f"{env.name} ({env.path}): {e}") from e
        except model.InvalidDesiredState as e:
            first = "; ".join(str(p) for p in e.problems[:3])
            raise PromotionError(f"{env.name} ({env.path}) is invalid: "
                                 f"{posixpath.join(env.path, first)}") from e


def _tag(ref: model.ImageRef) -> str:
    return ref.tag + (f"@{ref.digest}" if ref.digest else "")


def _evidence(app_id: str, *, live: model.JSON | None, row: Any) -> promotion.AppEvidence:
    """One source app as the gate sees it: live image, health, and since when healthy (the
    status model's since counts only when the app is in sync). Without records of the app
    (nothing recorded it yet), its health is assessed from live alone."""
    in_sync = row is not None and row.state is model.AppState.IN_SYNC
    assessed = row.health if row is not None else str(health.assess(app_id, live).status)
    return promotion.AppEvidence(
        app_id=app_id,
        live_image=None if live is None else _image(live),
        health=assessed,
        healthy_since=promotion.healthy_since(live, in_state_since=row.since if in_sync
                                              else None),
        state=str(row.state) if row is not None else None)


def _image(live: model.JSON) -> str | None:
    docker = (live.get("container") or {}).get("docker") or {}
    image = docker.get("image")
    return image if isinstance(image, str) else None


def _source_release(store: records.RecordStore, *, image: str, tag: str,
                    apps: Sequence[promotion.AppEvidence]) -> str | None:
    """The source's release that rolled ``tag`` out: the newest one that moved the image to
    it, else the revision last applied to an app that runs it."""
    for release in store.releases(apps_shown=0):  # their images, not their apps
        if any(c.name == image and c.new == tag for c in release.images_changed):
            return release.revision
    applied = store.last_applied()
    for app in apps:
        if app.app_id in applied:
            return applied[app.app_id].revision
    return None


def _release_of(promoted: records.Promotion, releases: Sequence[records.Release]
                ) -> records.Release | None:
    """The target's release of the promotion's commit, or the first later one that moved the
    image to the promoted tag (commits pushed meanwhile can be rolled out together)."""
    for release in releases:
        if release.revision == promoted.commit:
            return release
    for release in releases:
        if release.started_at >= promoted.at and any(
                c.name == promoted.image and c.new == promoted.tag
                for c in release.images_changed):
            return release
    return None
