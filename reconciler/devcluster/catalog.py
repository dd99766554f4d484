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
        repository, _, tag = image.rpartition(":")
        if not repository or "/" in tag:
            repository, tag = image, "latest"
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


def load(path: Path | None = None) -> Catalog:
    """The catalog at ``path``, or the one shipped for the example config."""
    if path is None:
        text = importlib.resources.files("reconciler.devcluster").joinpath("catalog.yaml")
        raw = yaml.safe_load(text.read_text(encoding="utf-8"))
    else:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    entries = tuple(
        Entry(image=str(e["image"]), tags=str(e.get("tags", "*")), command=e.get("command"))
        for e in (raw or {}).get("images", [])
    )
    return Catalog(entries=entries)
