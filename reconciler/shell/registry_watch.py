"""The registry watcher: each image with an update policy, compared with its registry, and a
bump commit for each newer qualifying tag. One call is one check; the scheduler repeats it.

Steps of :func:`check_once`: refresh the working copy, read ``images.yaml`` from it (not the
desired state the controller applied: the branch may have moved), :func:`survey` every
policy's registry, then one commit per image that has a newer tag (``push: direct``), or
one branch per proposed tag (``push: branch``, proposed once: an existing branch is left
alone). An image whose registry fails is an outcome with its reason, never a crash, and
does not stop the other images; a config repo that cannot be read or pushed raises
:class:`bumper.BumpError` (retry next time, or a human fixes images.yaml).
"""

from __future__ import annotations

import enum
import logging
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass

from reconciler.core import images as imaging
from reconciler.core import load as loading
from reconciler.core import model, parse, patterns, retag, tags, validate
from reconciler.shell import bumper, registry

log = logging.getLogger(__name__)


class Action(enum.StrEnum):
    """What a check did for one image (a closed set)."""

    BUMPED = "bumped"
    """A commit on the followed branch."""
    PROPOSED = "proposed"
    """A new branch ``reconciler/bump-<image>-<tag>``."""
    ALREADY_PROPOSED = "already-proposed"
    UP_TO_DATE = "up-to-date"
    FAILED = "failed"
    """The registry (or the edit) failed: ``reason`` says why; retry at the next check."""


@dataclass(frozen=True)
class ImageReport:
    """One image compared with its registry (``reconciler images`` prints these)."""

    image: str
    current: str
    registry: str
    repository: str
    newest: str | None = None
    candidate: str | None = None
    skipped: tuple[tags.Skipped, ...] = ()
    error: str | None = None
    """Why the registry could not be asked, or the tags not ordered."""


@dataclass(frozen=True)
class Outcome:
    image: str
    action: Action
    current: str
    newest: str | None
    reason: str
    commit: str | None = None
    branch: str | None = None
    digest: str | None = None


def clients_for(catalog: Mapping[str, model.ImageRef], *,
                credentials: Mapping[str, registry.Credentials],
                session: registry.Session | None = None,
                timeout: float = 10.0) -> dict[str, registry.Client]:
    """One client per registry a policy names, with that host's credentials (if any)."""
    clients: dict[str, registry.Client] = {}
    for ref in catalog.values():
        if ref.update is not None and ref.update.registry not in clients:
            clients[ref.update.registry] = registry.Client(
                ref.update.registry, credentials=credentials.get(
                    registry.host_of(ref.update.registry)), session=session, timeout=timeout)
    return clients


def survey(catalog: Mapping[str, model.ImageRef], *,
           clients: Mapping[str, registry.Client]) -> tuple[ImageReport, ...]:
    """Every image with an update policy, against its registry's tags. Never raises for one
    image's registry: the report carries the reason."""
    reports = []
    for name, ref in sorted(catalog.items()):
        policy = ref.update
        if policy is None:
            continue
        report = ImageReport(image=name, current=ref.tag, registry=policy.registry,
                             repository=policy.repository)
        try:
            listing = clients[policy.registry].tags(policy.repository)
            choice = tags.choose(listing, current=ref.tag, policy=policy)
        except registry.RegistryError as e:
            reports.append(_with(report, error=e.reason))
            continue
        except (tags.UnorderedTag, patterns.BadPattern) as e:
            reports.append(_with(report, error=str(e)))
            continue
        reports.append(ImageReport(
            image=name, current=ref.tag, registry=policy.registry,
            repository=policy.repository, newest=choice.newest, candidate=choice.candidate,
            skipped=choice.skipped))
    return tuple(reports)


def _with(report: ImageReport, *, error: str) -> ImageReport:
    return ImageReport(image=report.image, current=report.current, registry=report.registry,
                       repository=report.repository, error=error)


def read_catalog(copy: bumper.WorkingCopy, *, repo_path: str) -> tuple[
        str, dict[str, model.ImageRef]]:
    """The images file of the working copy (its path from the repo root) and its entries.

    Raises :class:`bumper.BumpRefused` with every located problem when it is invalid.
    """
    for name in loading.IMAGES_FILES:
        relative = posixpath.normpath(posixpath.join(repo_path, name))
        if copy.exists(relative):
            break
    else:
        return "", {}
    try:
        parsed = parse.parse(model.SourceFile(path=relative, text=copy.read(relative)))
    except parse.ParseError as e:
        raise bumper.BumpRefused(str(e)) from e
    problems = validate.check_schema(parsed, schema=validate.IMAGES_SCHEMA)
    problems = problems or imaging.check_catalog(parsed)
    if problems:
        raise bumper.BumpRefused("; ".join(str(p) for p in problems))
    return relative, imaging.catalog(parsed.data)


def check_once(copy: bumper.WorkingCopy, *, repo_path: str = ".",
               credentials: Mapping[str, registry.Credentials] | None = None,
               session: registry.Session | None = None,
               timeout: float = 10.0) -> tuple[Outcome, ...]:
    """One check of every image's registry; a bump commit (or branch) per newer tag.

    ``repo_path`` is the config repo's folder inside the Git repository (the controller's
    ``RECONCILER_REPO_PATH``); ``credentials`` are per registry host
    (:func:`registry.read_auth_file`). Raises :class:`bumper.BumpError` when the config
    repo cannot be read, edited or pushed.
    """
    copy.refresh()
    images_path, catalog = read_catalog(copy, repo_path=repo_path)
    clients = clients_for(catalog, credentials=credentials or {}, session=session,
                          timeout=timeout)
    outcomes = []
    for report in survey(catalog, clients=clients):
        outcome = _act(copy, report=report, ref=catalog[report.image],
                       client=clients[report.registry], images_path=images_path)
        log.info("registry watch: %s %s (%s)", outcome.image, outcome.action, outcome.reason)
        outcomes.append(outcome)
    return tuple(outcomes)


def _act(copy: bumper.WorkingCopy, *, report: ImageReport, ref: model.ImageRef,
         client: registry.Client, images_path: str) -> Outcome:
    policy = ref.update
    assert policy is not None
    def outcome(action: Action, reason: str, **facts: str) -> Outcome:
        return Outcome(image=report.image, current=report.current, newest=report.newest,
                       action=action, reason=reason, **facts)

    if report.error is not None:
        return outcome(Action.FAILED, report.error)
    candidate = report.candidate
    if candidate is None:
        return outcome(Action.UP_TO_DATE, f"{report.current} is the newest qualifying tag")
    if policy.push == model.PushMode.BRANCH:
        branch = retag.bump_branch(image=report.image, tag=candidate)
        if copy.has_remote_branch(branch):
            return outcome(Action.ALREADY_PROPOSED, f"{candidate} is proposed on branch {branch}",
                           branch=branch)
    try:
        digest = client.digest(policy.repository, candidate)
    except registry.RegistryError as e:
        return outcome(Action.FAILED, e.reason)
    # A digest already in the file is kept true, even if the policy no longer pins.
    pin = policy.pin_digest or ref.digest is not None
    pushed = bumper.bump(copy, images_path=images_path, change=bumper.Bump(
        image=report.image, old_tag=report.current, new_tag=candidate, digest=digest,
        pin=pin, push=policy.push))
    action = Action.BUMPED if policy.push == model.PushMode.DIRECT else Action.PROPOSED
    return outcome(action, f"{report.current} -> {candidate} ({digest})",
                   commit=pushed.commit, branch=pushed.branch, digest=digest)
