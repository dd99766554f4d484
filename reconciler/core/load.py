"""Load the desired state from the files of one config repo revision: all or nothing.

Pure: it gets the files as text (:class:`model.SourceFile`), never reads the disk. Layout::

    images.yaml                          the image catalog (optional)
    reconciler.yaml                      the repo's settings (optional)
    dirac-cert/web/portal.yaml           the app /dirac-cert/web/portal (YAML or JSON)

The folder path is the Marathon group, the file name (without extension) the app's name.
Files other than ``*.yaml``/``*.yml``/``*.json`` are not read, nor hidden ones. Any problem
anywhere (YAML, schema, Marathon's rules, images, dependencies) makes the whole revision
invalid: :class:`model.InvalidDesiredState` lists every problem, sorted by file and line.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence

from reconciler.core import images as imaging
from reconciler.core import model, parse, sharing, validate
from reconciler.core import settings as repo_settings
from reconciler.core import waves as release_waves
from reconciler.core import windows as sync_windows

IMAGES_FILES = ("images.yaml", "images.yml", "images.json")
SETTINGS_FILES = ("reconciler.yaml", "reconciler.yml", "reconciler.json")
APP_EXTENSIONS = (".yaml", ".yml", ".json")


def is_config_file(path: str) -> bool:
    """True for the files this loader reads (the directory reader uses it too)."""
    parts = path.split("/")
    return path.endswith(APP_EXTENSIONS) and not any(p.startswith(".") for p in parts)


def app_id_for(path: str) -> str:
    """``dirac-cert/web/portal.yaml`` -> ``/dirac-cert/web/portal``."""
    stem, _ = posixpath.splitext(path)
    return "/" + stem.strip("/")


def load_desired_state(files: Sequence[model.SourceFile], *, revision: str,
                       like: model.DesiredState | None = None) -> model.DesiredState:
    """The desired state of ``files``; raises InvalidDesiredState with every problem found.

    ``like``: the revision before (the controller's). Every top-level value equal to one of
    its apps' is that value: a release changes a field or two of each app and both
    revisions live until it is over, so the rest is held once for both, not twice."""
    problems: list[model.Problem] = []
    parsed: dict[str, parse.ParsedFile] = {}
    shared = sharing.Shared()
    if like is not None:
        shared.seen_first(app.definition for app in like.apps.values())
    total = 0
    for source in sorted(files, key=lambda f: f.path):
        if not is_config_file(source.path):
            continue
        total += len(source.text)
        if total > parse.MAX_REPO_BYTES:
            problems.append(model.Problem(source.path, None, (
                f"not read: the config files exceed {parse.MAX_REPO_BYTES} bytes in total")))
            continue
        try:
            parsed[source.path] = file = parse.parse(source)
        except parse.ParseError as e:
            problems.extend(e.problems)
            continue
        if isinstance(file.data, dict):
            # Equal values held once (core/sharing.py: 30 -> 8 MB for 10,000 apps), as each
            # file is read, so that the revision is never held unshared (a peak that would
            # leave the process's memory fragmented long after).
            shared.top_level(file.data)

    def special(names: tuple[str, ...], schema: str) -> parse.ParsedFile | None:
        present = [parsed.pop(n) for n in names if n in parsed]
        for extra in present[1:]:
            problems.append(model.Problem(extra.path, None,
                                          f"{present[0].path} already holds these settings"))
        if not present:
            return None
        schema_problems = validate.check_schema(present[0], schema=schema)
        problems.extend(schema_problems)
        return None if schema_problems else present[0]

    images_present = any(n in parsed for n in IMAGES_FILES)
    images_file = special(IMAGES_FILES, validate.IMAGES_SCHEMA)
    if images_file is not None and (catalog_problems := imaging.check_catalog(images_file)):
        problems.extend(catalog_problems)
        images_file = None
    # A broken catalog is reported once, not again on every app that names an image.
    check_images = images_file is not None or not images_present
    settings_file = special(SETTINGS_FILES, validate.SETTINGS_SCHEMA)
    if settings_file is not None and (window_problems := sync_windows.check(settings_file)):
        problems.extend(window_problems)
        settings_file = None
    catalog = imaging.catalog(images_file.data) if images_file else {}
    settings = repo_settings.from_data(settings_file.data if settings_file else None)

    apps: dict[str, tuple[model.JSON, parse.ParsedFile]] = {}
    desired: dict[str, model.DesiredApp] = {}
    first_path: dict[str, str] = {}
    for path, file in parsed.items():
        app_id = app_id_for(path)
        if file.data is None:
            problems.append(model.Problem(path, 1, "empty file: expected a Marathon app"))
            continue
        if not isinstance(file.data, dict):
            problems.append(model.Problem(path, 1, "expected one Marathon app (a mapping)"))
            continue
        schema_problems = validate.check_schema(file, schema=validate.APP_SCHEMA)
        file_problems = schema_problems + validate.check_id(
            derived=app_id, explicit=file.data.get("id"), parsed=file)
        if app_id in first_path:
            file_problems.append(model.Problem(path, file.line_of("/id") or 1, (
                f"{app_id} is also defined by {first_path[app_id]}: one file per app")))
        first_path.setdefault(app_id, path)
        # Every app counts for dependencies, so one broken file neither hides its own
        # dependency problems nor makes its dependents' references look dangling.
        if schema_problems:
            # Marathon's rules and the image lookup read the app's shape: only a valid one.
            apps.setdefault(app_id, ({}, file))
            problems.extend(file_problems)
            continue
        apps.setdefault(app_id, (file.data, file))
        file_problems += validate.check_app(file.data, app_id=app_id, parsed=file,
                                            settings=settings)
        try:
            definition, image_name = imaging.resolve({**file.data, "id": app_id}, catalog)
        except imaging.UnknownImage as e:
            # Not reported again when images.yaml itself is broken: that error says why.
            if check_images:
                file_problems.append(model.Problem(
                    path, file.line_of("/container/docker/image"), str(e)))
            definition = None
        problems.extend(file_problems)
        if file_problems or definition is None:
            continue
        desired[app_id] = model.DesiredApp(app_id=app_id,
                                           definition=shared.top_level(definition),
                                           source_path=path, image_name=image_name)
    problems.extend(validate.check_dependencies(apps, settings))
    if settings_file is not None:
        problems.extend(release_waves.check(settings_file, settings, apps))
    if problems:
        raise model.InvalidDesiredState(sorted(problems, key=_problem_order))
    return model.DesiredState(revision=revision, apps=dict(sorted(desired.items())),
                              images=catalog, settings=settings)


def _problem_order(problem: model.Problem) -> tuple[str, int]:
    return problem.path, problem.line or 0

