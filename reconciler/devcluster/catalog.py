"""The image catalog: which local command stands in for a Docker image (there is no engine)."""

from __future__ import annotations

import fnmatch
import importlib.resources
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml


class UnknownImage(Exception):
    """No catalog entry: the task fails like an image that cannot be pulled."""


@dataclass(frozen=True)
class Entry:
    image: str
    tags: str
    command: str | None


@dataclass(frozen=True)
class Catalog:
    entries: tuple[Entry, ...]

    def command_for(self, image: str) -> str | None:
        """The shell command standing in for ``image``; None runs no process."""
        # Marathon checks only that container.docker.image is not empty
        # (api/v2/validation/AppValidation.scala, ``docker.image is notEmpty``) and Docker
        # takes ``repo:tag@sha256:...``: the digest pins the content, the tag still names it.
        reference = image.split("@", 1)[0]
        repository, _, tag = reference.rpartition(":")
        if not repository or "/" in tag:
            repository, tag = reference, "latest"
        name = repository.rsplit("/", 1)[-1]
        for entry in self.entries:
            if entry.image == name and fnmatch.fnmatchcase(tag, entry.tags):
                if entry.command is None:
                    return None
                return entry.command.replace("{python}", sys.executable)
        raise UnknownImage(
            f"Failed to launch container: Failed to pull image '{image}': "
            f"no entry for '{name}:{tag}' in the dev cluster's image catalog"
        )


class CatalogError(Exception):
    """The catalog file cannot be used: the dev cluster does not start (fix the file)."""


def load(path: Path | None = None) -> Catalog:
    """The catalog at ``path``, or the one shipped for the example config."""
    if path is None:
        where = "reconciler/devcluster/catalog.yaml"
        text = importlib.resources.files("reconciler.devcluster").joinpath("catalog.yaml")
        source = text.read_text(encoding="utf-8")
    else:
        where = str(path)
        try:
            source = path.read_text(encoding="utf-8")
        except OSError as e:
            raise CatalogError(f"{where}: cannot read the image catalog: {e}") from e
    try:
        raw = yaml.safe_load(source)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f", line {mark.line + 1}" if mark is not None else ""
        raise CatalogError(f"{where}{line}: not valid YAML: {e}") from e
    images = (raw or {}).get("images") if isinstance(raw or {}, dict) else None
    if not isinstance(images, list):
        raise CatalogError(f"{where}: expected a top-level 'images:' list of entries")
    entries = []
    for index, item in enumerate(images):
        if not isinstance(item, dict) or not isinstance(item.get("image"), str):
            raise CatalogError(f"{where}: images[{index}] needs 'image: <repository name>'")
        command = item.get("command")
        if command is not None and not isinstance(command, str):
            raise CatalogError(
                f"{where}: images[{index}] ({item['image']}): 'command' must be a string or null"
            )
        entries.append(Entry(image=item["image"], tags=str(item.get("tags", "*")),
                             command=command))
    return Catalog(entries=tuple(entries))
