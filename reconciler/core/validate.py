"""Validate the desired state: JSON Schemas first, then Marathon's own rules on top.

The only module that imports ``jsonschema`` and ``jsonschema_rs``. Every check returns
problems (never raises), each with the file path and the line of the offending value, so that
one run reports all of them. A file is first checked by the compiled validator
(``jsonschema_rs``, about 20 times faster); only a file it refuses goes through ``jsonschema``,
whose errors carry what the messages need (the schema of an unknown field, say).
Schemas live in the top-level ``schemas/`` folder (package data ``reconciler/schemas``).
"""

from __future__ import annotations

import difflib
import functools
import importlib.resources
import json
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

import jsonschema
import jsonschema_rs

from reconciler.core import model, parse
from reconciler.core import normalize as normalizing

APP_SCHEMA = "app.schema.json"
IMAGES_SCHEMA = "images.schema.json"
SETTINGS_SCHEMA = "reconciler.schema.json"

_LABEL = r"([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])"
_NAME = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")
"""One segment of a Marathon path id (``PathId`` in raml/v2/types/stringTypes.raml)."""
_MAX_MESSAGE = 200


@functools.cache
def _schema(schema_name: str) -> dict[str, Any]:
    text = importlib.resources.files("reconciler").joinpath("schemas", schema_name).read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


@functools.cache
def _validator(schema_name: str) -> jsonschema.protocols.Validator:
    schema = _schema(schema_name)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    validator: jsonschema.protocols.Validator = cls(schema)
    return validator


@functools.cache
def _compiled(schema_name: str) -> Any:
    return jsonschema_rs.validator_for(_schema(schema_name))


def check_schema(parsed: parse.ParsedFile, *, schema: str) -> list[model.Problem]:
    """Every schema violation of the file, located at the offending field's line.

    A number that is not finite (``.nan``, ``.inf``) is one too, wherever it is: JSON has no
    such value and Marathon's doubles must compare (``cpus should be >= 0.0``), which NaN
    never does, so a JSON Schema ``minimum`` cannot catch it.
    """
    if not _has_non_finite(parsed.data) and _compiled(schema).is_valid(parsed.data):
        return []
    problems = _non_finite(parsed.data, "", parsed)
    errors = sorted(_validator(schema).iter_errors(parsed.data),
                    key=lambda e: [str(p) for p in e.absolute_path])
    for error in errors:
        at = parse.pointer(*error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = list(error.schema.get("properties", {}))
            for key in error.instance:
                if key not in allowed:
                    child = f"{at}/{parse.escape(key)}"
                    problems.append(model.Problem(
                        parsed.path, parsed.line_of(child), _unknown_field(key, at, allowed)))
            continue
        message = error.message if len(error.message) <= _MAX_MESSAGE else (
            error.message[:_MAX_MESSAGE] + "...")
        problems.append(model.Problem(parsed.path, parsed.line_of(at), f"{at or '/'}: {message}"))
    return problems


def _has_non_finite(value: Any) -> bool:
    """Any NaN or infinity in ``value`` (no pointers built: the common answer is no)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float):
            if not math.isfinite(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _non_finite(value: Any, at: str, parsed: parse.ParsedFile) -> list[model.Problem]:
    if isinstance(value, float) and not math.isfinite(value):
        return [model.Problem(parsed.path, parsed.line_of(at),
                              f"{at or '/'}: {value} is not a finite number")]
    if isinstance(value, dict):
        return [p for k, v in value.items()
                for p in _non_finite(v, f"{at}/{parse.escape(str(k))}", parsed)]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _non_finite(v, f"{at}/{i}", parsed)]
    return []


def _unknown_field(key: str, at: str, allowed: list[str]) -> str:
    if key in normalizing.SERVER_FIELDS:
        return f"{at}/{key}: set by Marathon, not part of a definition; remove it"
    message = f"{at}/{key}: unknown field"
    close = difflib.get_close_matches(key, allowed, n=1)
    return message + (f" (did you mean {close[0]!r}?)" if close else "")


def check_id(*, derived: str, explicit: Any, parsed: parse.ParsedFile) -> list[model.Problem]:
    """The folder path gives the id; an explicit ``id`` must agree with it."""
    problems = []
    for segment in derived.strip("/").split("/"):
        if not _NAME.match(segment):
            problems.append(model.Problem(parsed.path, 1, (
                f"app id {derived} (from the file path) is not a valid Marathon id: segment "
                f"{segment!r} may hold only lowercase letters, digits, '-' and '.', and may "
                "not start or end with '-'")))
            break
    if isinstance(explicit, str):
        leaf = derived.rsplit("/", 1)[-1]
        if explicit not in (derived, leaf) and normalizing.absolute_id(explicit, base="/") != (
                derived):
            problems.append(model.Problem(parsed.path, parsed.line_of("/id"), (
                f"id {explicit!r} disagrees with the file's place, which makes it {derived}: "
                f"write id: {derived} (or leave it out)")))
    return problems


def check_app(app: model.JSON, *, app_id: str, parsed: parse.ParsedFile,
              settings: model.RepoSettings) -> list[model.Problem]:
    """Marathon's rules that a schema cannot say, for one schema-valid app."""
    problems: list[model.Problem] = []

    def problem(pointer: str, message: str) -> None:
        problems.append(model.Problem(parsed.path, parsed.line_of(pointer), message))

    if not settings.manages(app_id):
        prefixes = ", ".join(settings.managed_prefixes)
        problem("/id" if "id" in app else "", (
            f"{app_id} is outside the managed prefixes ({prefixes}) of reconciler.yaml"))
    if "cmd" in app and "args" in app:
        problem("/args", "cmd and args are mutually exclusive: keep one")
    container = app.get("container") or {}
    if container.get("type", "DOCKER") == "DOCKER" and "docker" not in container and container:
        problem("/container", "a DOCKER container needs container.docker.image")
    _check_ports(app, problem)
    secrets = app.get("secrets") or {}
    for name, value in (app.get("env") or {}).items():
        if isinstance(value, dict) and value.get("secret") not in secrets:
            problem(f"/env/{parse.escape(name)}", (
                f"env {name} refers to secret {value.get('secret')!r}, which is not declared "
                "in secrets"))
    mesos_checks = [i for i, c in enumerate(app.get("healthChecks") or ())
                    if str(c.get("protocol", "")).startswith("MESOS_")]
    if len(mesos_checks) > 1:
        problem(f"/healthChecks/{mesos_checks[1]}",
                "an app can have at most one Mesos health check (MESOS_HTTP/HTTPS/TCP)")
    for index, check in enumerate(app.get("healthChecks") or ()):
        protocol = check.get("protocol", "HTTP")
        if protocol == "COMMAND" and "command" not in check:
            problem(f"/healthChecks/{index}", "a COMMAND health check needs command.value")
        if protocol != "COMMAND" and "command" in check:
            problem(f"/healthChecks/{index}/command",
                    f"command is only for COMMAND health checks, not {protocol}")
        if "port" in check and "portIndex" in check:
            problem(f"/healthChecks/{index}", "give port or portIndex, not both")
    return problems


def _check_ports(app: model.JSON, problem: Any) -> None:
    host = normalizing.is_host_networking(app)
    container = app.get("container") or {}
    mappings = container.get("portMappings") or (container.get("docker") or {}).get(
        "portMappings")
    if host:
        if mappings:
            where = "/container/portMappings" if "portMappings" in container else (
                "/container/docker/portMappings")
            problem(where, "portMappings need bridge or container networking; with host "
                           "networking declare portDefinitions")
        if "portDefinitions" in app:
            ports, where = app["portDefinitions"], "/portDefinitions"
        elif "ports" in app:
            ports, where = [{"port": p} for p in app["ports"]], "/ports"
        else:
            ports, where = [{"name": "default"}], ""
    else:
        if app.get("portDefinitions"):
            problem("/portDefinitions", "portDefinitions are for host networking; with bridge "
                                        "or container networking declare portMappings")
        ports = mappings if mappings is not None else [{"name": "default"}]
        where = "/container/portMappings" if "portMappings" in container else (
            "/container/docker/portMappings")
    seen: dict[str, int] = {}
    for index, port in enumerate(ports):
        name = port.get("name")
        if name is None:
            continue
        if name in seen:
            problem(f"{where}/{index}/name",
                    f"port name {name!r} is used twice (also port {seen[name]}): names must "
                    "be unique")
        seen.setdefault(name, index)
    for index, check in enumerate(app.get("healthChecks") or ()):
        port_index = check.get("portIndex")
        if port_index is not None and port_index >= len(ports):
            problem(f"/healthChecks/{index}/portIndex", (
                f"portIndex {port_index} points past the app's {len(ports)} port(s)"))
    for index, check in enumerate(app.get("readinessChecks") or ()):
        port_name = check.get("portName", "http-api")
        if port_name not in seen:
            problem(f"/readinessChecks/{index}/portName",
                    f"portName {port_name!r} names no port of this app")


def check_dependencies(apps: Mapping[str, tuple[model.JSON, parse.ParsedFile]],
                       settings: model.RepoSettings) -> list[model.Problem]:
    """Dependencies must exist in the repo, or lie outside what we manage."""
    problems: list[model.Problem] = []
    for app_id, (app, parsed) in apps.items():
        group = app_id.rsplit("/", 1)[0] or "/"
        for index, dependency in enumerate(app.get("dependencies") or ()):
            target = normalizing.absolute_id(dependency, base=group)
            if target == app_id:
                problems.append(model.Problem(parsed.path, parsed.line_of(
                    f"/dependencies/{index}"), f"{app_id} depends on itself"))
            elif target not in apps and not _has_apps_under(target, apps) and settings.manages(
                    target):
                problems.append(model.Problem(parsed.path, parsed.line_of(
                    f"/dependencies/{index}"),
                    f"dependency {dependency!r} ({target}) is in a managed prefix but no app "
                    "or group of this repo has that id"))
    problems.extend(_cycles(apps))
    return problems


def _has_apps_under(group: str, apps: Iterable[str]) -> bool:
    return any(model.is_under(a, group) for a in apps)


def _cycles(apps: Mapping[str, tuple[model.JSON, parse.ParsedFile]]) -> list[model.Problem]:
    graph = {
        app_id: [normalizing.absolute_id(d, base=app_id.rsplit("/", 1)[0] or "/")
                 for d in (app.get("dependencies") or ())]
        for app_id, (app, _) in apps.items()}
    state: dict[str, int] = {}  # 1: its dependencies are being walked; 2: all were
    problems: list[model.Problem] = []
    # Depth first without recursion: a chain of thousands of apps stays under the recursion
    # limit, and no recursive closure forms a reference cycle that would keep ``apps``
    # (every parsed file, with its text) alive after the load, until a full collection.
    for root in sorted(graph):
        if root in state:
            continue
        state[root] = 1
        walking = [(root, [root], iter(graph[root]))]
        while walking:
            node, trail, targets = walking[-1]
            for target in targets:
                if target not in graph or target == node:
                    continue
                if state.get(target) == 1:
                    cycle = trail[trail.index(target):] + [target] if target in trail else [target]
                    _, parsed = apps[node]
                    problems.append(model.Problem(parsed.path, parsed.line_of("/dependencies"),
                                                  "dependency cycle: " + " -> ".join(cycle)))
                elif target not in state:
                    state[target] = 1
                    walking.append((target, [*trail, target], iter(graph[target])))
                    break
            else:
                state[node] = 2
                walking.pop()
    return problems
