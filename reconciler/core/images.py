"""The image catalog (``images.yaml``) and how app files refer to it.

An app's ``container.docker.image`` either names a catalog entry (``lhcbdirac``: no tag) and
gets that entry's ``repository:tag``, or pins an image itself with a tag or digest
(``nginx:1.25``), used as written. An untagged name that is not in the catalog is an error:
it would silently mean ``latest``. So one tag bump in ``images.yaml`` reaches every app that
names the image, and nothing else changes.

An entry's optional ``update:`` block (:class:`model.UpdatePolicy`) lets the registry
watcher move ``tag`` forward itself (docs/releases.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.core import model, parse, patterns


class UnknownImage(Exception):
    """The app names an image that ``images.yaml`` does not declare."""


def catalog(data: Mapping[str, Any]) -> dict[str, model.ImageRef]:
    """The entries of a schema-valid ``images.yaml``."""
    return {name: model.ImageRef(name=name, repository=entry["repository"], tag=entry["tag"],
                                 digest=entry.get("digest"),
                                 update=_policy(entry["update"], repository=entry["repository"])
                                 if "update" in entry else None)
            for name, entry in (data.get("images") or {}).items()}


def _policy(update: Mapping[str, Any], *, repository: str) -> model.UpdatePolicy:
    registry = update["registry"].rstrip("/")
    host = registry.split("://", 1)[-1]
    return model.UpdatePolicy(
        registry=registry,
        # registry.example.org/lhcb/lhcbdirac in registry.example.org is lhcb/lhcbdirac there.
        repository=update.get("repository") or repository.removeprefix(f"{host}/"),
        order=model.TagOrder(update["order"]), pattern=update.get("pattern"),
        prereleases=update.get("prereleases", False),
        pin_digest=update.get("pinDigest", False),
        push=model.PushMode(update.get("push", "direct")))


def check_catalog(parsed: parse.ParsedFile) -> list[model.Problem]:
    """What the schema cannot say about a schema-valid ``images.yaml``: patterns compile."""
    problems = []
    for name, entry in (parsed.data.get("images") or {}).items():
        pattern = (entry.get("update") or {}).get("pattern")
        if pattern is None:
            continue
        try:
            patterns.Pattern(pattern)
        except patterns.BadPattern as e:
            at = parse.pointer("images", name, "update", "pattern")
            problems.append(model.Problem(parsed.path, parsed.line_of(at), f"{at}: {e}"))
    return problems


def is_pinned(image: str) -> bool:
    """True when ``image`` carries its own tag or digest (``repo:tag``, ``repo@sha256:...``)."""
    return "@" in image or ":" in image.rsplit("/", 1)[-1]


def image_of(app: Mapping[str, Any]) -> str | None:
    docker = (app.get("container") or {}).get("docker") or {}
    image = docker.get("image")
    return image if isinstance(image, str) else None


def resolve(app: model.JSON, images: Mapping[str, model.ImageRef]
            ) -> tuple[model.JSON, str | None]:
    """``app`` with its image reference resolved, and the catalog name it used (if any).

    Never mutates ``app``; raises :class:`UnknownImage` for an untagged unknown name.
    """
    image = image_of(app)
    if image is None or is_pinned(image):
        return app, None
    ref = images.get(image)
    if ref is None:
        known = ", ".join(sorted(images)) or "none"
        raise UnknownImage(
            f"unknown image {image!r}: name it in images.yaml (known: {known}) "
            f"or pin a tag here ({image}:<tag>)")
    container = app["container"]
    docker = {**container["docker"], "image": ref.reference}
    return {**app, "container": {**container, "docker": docker}}, ref.name
