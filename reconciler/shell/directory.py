"""Read a plain directory (a config repo checkout or a working copy) into SourceFiles.

The revision of a directory is its content digest, ``dir:<sha256>`` over every file read
(path and bytes), so that the same content always gives the same revision. Only the files
the loader reads are read (``*.yaml``, ``*.yml``, ``*.json``, none hidden).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from reconciler.core import load as loading
from reconciler.core import model


class UnreadableDirectory(Exception):
    """The path is not a readable directory, or a file in it is not UTF-8 text."""


def read_directory(path: str | Path) -> tuple[list[model.SourceFile], str]:
    """The config files under ``path`` (relative POSIX paths, sorted) and ``dir:<digest>``."""
    root = Path(path)
    if not root.is_dir():
        raise UnreadableDirectory(f"{root}: not a directory")
    digest = hashlib.sha256()
    files: list[model.SourceFile] = []
    for relative in _config_paths(root):
        file = root / relative
        data = file.read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise UnreadableDirectory(f"{relative}: not UTF-8 text ({e.reason})") from e
        digest.update(relative.encode() + b"\0" + hashlib.sha256(data).digest())
        files.append(model.SourceFile(path=relative, text=text))
    return files, f"dir:{digest.hexdigest()}"


def _config_paths(root: Path) -> list[str]:
    """Config file paths under ``root``, sorted; hidden folders (``.git``) are not walked."""
    found: list[str] = []
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = [d for d in subfolders if not d.startswith(".")]
        base = Path(folder).relative_to(root)
        for name in names:
            relative = (base / name).as_posix()
            if loading.is_config_file(relative):
                found.append(relative)
    return sorted(found)
