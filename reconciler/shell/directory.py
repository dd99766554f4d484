"""Read a plain directory (a config repo checkout or a working copy) into SourceFiles.

The revision of a directory is its content digest, ``dir:<sha256>`` over every file read
(path and bytes), so that the same content always gives the same revision. Only the files
the loader reads are read (``*.yaml``, ``*.yml``, ``*.json``, none hidden).

The folder is untrusted: only regular files inside it are read. A symbolic link (to a file
or a folder, broken or not) is refused and never followed, so a link to ``/etc/shadow`` or to
a file outside the repo is neither printed nor loaded as an app; a FIFO, device or socket is
refused from ``lstat`` without being opened; a file over :data:`parse.MAX_FILE_BYTES` (or a
repo over :data:`parse.MAX_REPO_BYTES`) is refused before its content is read. Every such
problem, and every OS or decoding error, is reported as ``path: message``, all at once.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from reconciler.core import load as loading
from reconciler.core import model, parse

_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
"""Never follow a link swapped in after ``lstat``, never block on a FIFO."""


class UnreadableDirectory(Exception):
    """The path is not a readable directory, or files in it cannot be read as config files.

    ``problems`` holds one ``path: message`` per file refused.
    """

    def __init__(self, problems: list[model.Problem] | str) -> None:
        if isinstance(problems, str):
            problems = [model.Problem("", None, problems)]
        self.problems: tuple[model.Problem, ...] = tuple(problems)
        super().__init__("\n".join(_line(p) for p in self.problems))


def _line(problem: model.Problem) -> str:
    return str(problem) if problem.path else problem.message


def read_directory(path: str | Path) -> tuple[list[model.SourceFile], str]:
    """The config files under ``path`` (relative POSIX paths, sorted) and ``dir:<digest>``."""
    root = Path(path)
    if not root.is_dir():
        raise UnreadableDirectory(f"{root}: not a directory")
    digest = hashlib.sha256()
    files: list[model.SourceFile] = []
    problems: list[model.Problem] = []
    paths, link_problems = _config_paths(root)
    problems.extend(link_problems)
    total = 0
    for relative in paths:
        try:
            data = _read_regular(root / relative, total=total)
        except _Refused as e:
            problems.append(model.Problem(relative, None, str(e)))
            continue
        except OSError as e:
            problems.append(model.Problem(relative, None, e.strerror or type(e).__name__))
            continue
        total += len(data)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            line = data.count(b"\n", 0, e.start) + 1
            problems.append(model.Problem(relative, line, f"not UTF-8 text ({e.reason} at "
                                                          f"byte {e.start})"))
            continue
        digest.update(relative.encode() + b"\0" + hashlib.sha256(data).digest())
        files.append(model.SourceFile(path=relative, text=text))
    if problems:
        raise UnreadableDirectory(sorted(problems, key=lambda p: p.path))
    return files, f"dir:{digest.hexdigest()}"


class _Refused(Exception):
    """A file that is no regular file, or too large: its content is not read."""


def _read_regular(file: Path, *, total: int) -> bytes:
    """The bytes of ``file`` if it is a regular file within the size limits."""
    info = os.lstat(file)
    _check_regular(info, total=total)
    descriptor = os.open(file, _OPEN_FLAGS)
    with os.fdopen(descriptor, "rb") as handle:
        opened = os.fstat(handle.fileno())
        if (opened.st_dev, opened.st_ino) != (info.st_dev, info.st_ino):
            raise _Refused("changed while being read")
        _check_regular(opened, total=total)
        data = handle.read(parse.MAX_FILE_BYTES + 1)
    if len(data) > parse.MAX_FILE_BYTES:
        raise _Refused(f"file too large: over {parse.MAX_FILE_BYTES} bytes")
    return data


def _check_regular(info: os.stat_result, *, total: int) -> None:
    if stat.S_ISLNK(info.st_mode):
        raise _Refused("symbolic link not allowed: commit the file itself")
    if not stat.S_ISREG(info.st_mode):
        raise _Refused(f"not a regular file ({_kind(info.st_mode)}): not read")
    if info.st_size > parse.MAX_FILE_BYTES:
        raise _Refused(f"file too large: {info.st_size} bytes, the limit is "
                       f"{parse.MAX_FILE_BYTES}")
    if total + info.st_size > parse.MAX_REPO_BYTES:
        raise _Refused(f"the config files exceed {parse.MAX_REPO_BYTES} bytes in total")


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISDIR, "a folder")):
        if test(mode):
            return name
    return "a special file"


def _config_paths(root: Path) -> tuple[list[str], list[model.Problem]]:
    """Config file paths under ``root``, sorted; hidden folders (``.git``) are not walked.

    A folder that is a symbolic link is not walked either, and is a problem: the files it
    seems to hold are not the repo's.
    """
    found: list[str] = []
    problems: list[model.Problem] = []

    def refuse(error: OSError) -> None:
        where = Path(error.filename or root)
        relative = where.relative_to(root).as_posix() if where != root else str(root)
        problems.append(model.Problem(relative, None, error.strerror or "cannot be listed"))

    for folder, subfolders, names in os.walk(root, onerror=refuse):
        base = Path(folder).relative_to(root)
        kept = []
        for name in subfolders:
            if name.startswith("."):
                continue
            if os.path.islink(Path(folder) / name):
                problems.append(model.Problem((base / name).as_posix(), None,
                                              "symbolic link not allowed: not followed"))
                continue
            kept.append(name)
        subfolders[:] = kept
        for name in names:
            relative = (base / name).as_posix()
            if loading.is_config_file(relative):
                found.append(relative)
    return sorted(found), problems
