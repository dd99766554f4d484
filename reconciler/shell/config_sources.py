"""Where the settings of :mod:`reconciler.shell.config` come from, highest priority first.

The ``RECONCILER_*`` environment, the credentials' host files (``RECONCILER_<NAME>_FILE``)
and the YAML file of ``--config``, as pydantic-settings sources; and :func:`describe`, which
turns a validation error into the one line the operator reads. The names every source shares
live here too (the prefix, the credentials, :class:`BadConfiguration`); :mod:`config`
re-exports them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pydantic
import pydantic_settings
import yaml

PREFIX = "RECONCILER_"

CREDENTIALS = frozenset({
    "marathon_password", "marathon_token", "api_token", "webhook_secret", "git_token",
    "sentry_dsn", "database_url", "notify_webhook_url", "oidc_client_secret", "session_secret",
    "zk_auth",
})
"""Settings refused in the file, readable from ``RECONCILER_<NAME>_FILE``, always masked."""


class BadConfiguration(Exception):
    """A setting is invalid or a secret file cannot be read: stop and tell the operator."""


# -- the sources, highest priority first --------------------------------------------------------


class EnvironmentVariables(pydantic_settings.EnvSettingsSource):
    """``RECONCILER_*`` variables of ``environ``; empty ones count as unset."""

    def __init__(self, settings_cls: type[pydantic_settings.BaseSettings], *,
                 environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls, env_ignore_empty=True)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        # pydantic-settings reads os.environ here; load() may be given another mapping.
        return {k.lower(): v for k, v in self._environ.items() if v != ""}


class SecretFiles(pydantic_settings.PydanticBaseSettingsSource):
    """Credentials from the host files named by ``RECONCILER_<NAME>_FILE``."""

    def __init__(self, settings_cls: type[pydantic_settings.BaseSettings], *,
                 environ: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self._environ = environ

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self().get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name in sorted(CREDENTIALS):
            variable = f"{PREFIX}{name.upper()}"
            path = self._environ.get(f"{variable}_FILE")
            if path and not self._environ.get(variable):
                content = read_secret_file(f"{variable}_FILE", Path(path))
                if content:
                    values[name] = content
        return values


class ConfigFile(pydantic_settings.YamlConfigSettingsSource):
    """The YAML file of ``--config``: known keys only, and no credential."""

    def __init__(self, settings_cls: type[pydantic_settings.BaseSettings], *,
                 path: Path) -> None:
        if not path.is_file():
            # pydantic-settings skips a missing file; a file asked for must exist.
            raise BadConfiguration(f"{path}: cannot read the configuration file (no such file)")
        # Set before pydantic-settings' __init__, which reads the file (and sets settings_cls).
        self._known = frozenset(settings_cls.model_fields)
        super().__init__(settings_cls, yaml_file=path)

    def _read_file(self, file_path: Any) -> dict[str, Any]:
        path = Path(str(file_path))
        try:
            # BaseLoader keeps every scalar as written (`repo_ref: 1.10` stays "1.10"): the
            # settings are text, as variables are, and parsed the same way. It builds only
            # strings, lists and mappings, so it is as safe as safe_load.
            data = yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.BaseLoader)
        except OSError as e:
            raise BadConfiguration(f"{path}: cannot read the configuration file ({e.strerror})"
                                   ) from e
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
            raise BadConfiguration(f"{where}: not valid YAML") from e
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise BadConfiguration(f"{path}: expected a mapping of settings")
        out: dict[str, Any] = {}
        for key, value in data.items():
            name = str(key).lower().removeprefix(PREFIX.lower())
            if name not in self._known:
                known = ", ".join(sorted(self._known - CREDENTIALS))
                raise BadConfiguration(f"{path}: unknown setting {key!r} (known: {known})")
            if name in CREDENTIALS:
                raise BadConfiguration(
                    f"{path}: {key!r} is a credential: set {PREFIX}{name.upper()} or "
                    f"{PREFIX}{name.upper()}_FILE in the environment instead")
            if name == "environments" and isinstance(value, list):
                out[name] = value  # the one setting that is a list of mappings
                continue
            if not isinstance(value, str):
                raise BadConfiguration(f"{path}: {key!r}: expected a single value")
            if value != "":  # ``key:`` with no value leaves the default, as an empty variable
                out[name] = value
        return out


def read_secret_file(variable: str, path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as e:
        # The message names the file, never its content.
        raise BadConfiguration(f"{variable}={path}: cannot read ({e.strerror})") from e


def describe(error: pydantic.ValidationError, *, from_environment: Mapping[str, Any],
              config_file: Path | None) -> str:
    """The first problem as one line naming the variable (or the file and key); never the
    value of a credential."""
    first = error.errors()[0]
    name = str(first["loc"][0]) if first["loc"] else ""
    message = first["msg"].removeprefix("Value error, ")
    if not name:  # a rule across settings: its message names them, and no value is shown
        return message
    inner = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"][1:])
    if inner:
        message = f"{inner.lstrip('.')}: {message}"
    # A Marathon URL may hold user:password@ (an environment's too), a ZooKeeper URL too.
    shown = "" if name in CREDENTIALS | {"marathon_url", "environments", "zk_url"} \
        else f"={first.get('input')!r}"
    if config_file is not None and name not in from_environment and name not in CREDENTIALS:
        return f"{config_file}: {name}{shown}: {message}"
    return f"{PREFIX}{name.upper()}{shown}: {message}"
