"""The controller's configuration: one optional YAML file plus environment variables.

Environment variables win over the file. Credentials (API token, webhook secret, Git token,
Sentry DSN, database URL) come from the environment or from host files named by
``*_FILE`` variables, never from the config repo; they never appear in a ``repr``.

``load(environ, config_file=None) -> Settings`` raises :class:`BadConfiguration` (stalling:
a human must fix the setting) with the variable or file it is about.

The YAML file uses the variable names without the ``RECONCILER_`` prefix, lower case::

    marathon_url: http://marathon:8080
    repo_url: https://gitlab.example.org/lhcb/dirac-desired-state.git
    repo_ref: "v*"
    poll_interval: 30
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

PREFIX = "RECONCILER_"
EMBEDDED = "embedded"
"""``RECONCILER_MARATHON_URL=embedded``: run the dev cluster as a child process."""

BUNDLED_DESIRED_STATE = Path(__file__).resolve().parents[1] / "desired_state"
"""The example config repo shipped with the package (used when no repo is configured); the
checkout's ``desired-state/`` links here."""

_SECRET_FIELDS = ("api_token", "webhook_secret", "git_token", "sentry_dsn", "database_url")


class BadConfiguration(Exception):
    """A setting is invalid or a secret file cannot be read: stop and tell the operator."""


@dataclass(frozen=True)
class Settings:
    """Everything ``reconciler run`` needs; see :data:`VARIABLES` for meanings and defaults."""

    marathon_url: str = EMBEDDED
    repo_url: str = str(BUNDLED_DESIRED_STATE)
    repo_ref: str = "main"
    repo_path: str = "."
    poll_interval: float = 30.0
    drift_interval: float = 60.0
    state_dir: Path = dataclasses.field(
        default_factory=lambda: default_state_dir(os.environ))
    listen_host: str = "127.0.0.1"
    listen_port: int = 8000
    api_token: str | None = dataclasses.field(default=None, repr=False)
    webhook_secret: str | None = dataclasses.field(default=None, repr=False)
    git_ssh_key_file: Path | None = None
    git_known_hosts_file: Path | None = None
    git_token: str | None = dataclasses.field(default=None, repr=False)
    sentry_dsn: str | None = dataclasses.field(default=None, repr=False)
    database_url: str | None = dataclasses.field(default=None, repr=False)
    flap_threshold: int = 3
    flap_window: float = 600.0
    log_level: str = "INFO"
    public_url: str | None = None

    def __repr__(self) -> str:
        shown = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in _SECRET_FIELDS:
                shown.append(f"{f.name}={'***' if value else None}")
            else:
                shown.append(f"{f.name}={value!r}")
        return f"Settings({', '.join(shown)})"

    @property
    def secrets(self) -> list[str]:
        """The secret values set, for masking them in any text that leaves the process."""
        return [v for v in (getattr(self, n) for n in _SECRET_FIELDS) if v]

    @property
    def embedded_marathon(self) -> bool:
        return self.marathon_url == EMBEDDED


VARIABLES: dict[str, str] = {
    "MARATHON_URL": "Marathon base URL(s), comma separated for failover; `embedded` starts "
                    "the dev cluster as a child process on a free port (state under the "
                    "state dir). Default: embedded",
    "REPO_URL": "Config repo: a Git URL (https, ssh, file), a local Git repository path, or a "
                "plain directory. Default: the bundled desired-state/ folder",
    "REPO_REF": "Branch, tag, tag pattern such as `v*` (newest by version), or commit sha. "
                "Default: main",
    "REPO_PATH": "Folder inside the repo holding the desired state. Default: . (root)",
    "POLL_INTERVAL": "Seconds between Git polls. Default: 30",
    "DRIFT_INTERVAL": "Seconds between drift checks of live Marathon. Default: 60",
    "STATE_DIR": "Where the record store, the Git clone and the embedded cluster live; the "
                 "same default as every other command, so `reconciler status`, `drift` and "
                 "`history` read what `run` recorded. Default: $XDG_STATE_HOME/reconciler, "
                 "else ~/.local/state/reconciler",
    "LISTEN": "host:port of the web server (webhooks, API, dashboard, metrics). "
              "Default: 127.0.0.1:8000",
    "API_TOKEN": "Bearer token for API actions (or API_TOKEN_FILE). Default: none, actions "
                 "refused",
    "WEBHOOK_SECRET": "GitLab token / GitHub HMAC secret of webhooks (or WEBHOOK_SECRET_FILE). "
                      "Default: none, webhooks refused",
    "GIT_SSH_KEY_FILE": "Private key for ssh:// repos. Default: none",
    "GIT_KNOWN_HOSTS_FILE": "known_hosts file the Git server's SSH host key is checked "
                            "against (strictly). Default: known_hosts beside the key file if "
                            "there is one, else a host is trusted on first use",
    "GIT_TOKEN": "HTTPS token for the repo (or GIT_TOKEN_FILE). Default: none",
    "SENTRY_DSN": "Sentry DSN (or SENTRY_DSN_FILE). Default: none, Sentry off",
    "DATABASE_URL": "SQLAlchemy URL of the record store. Default: SQLite in the state dir",
    "FLAP_THRESHOLD": "Corrections within FLAP_WINDOW after which drift is declared flapping "
                      "and no longer corrected. Default: 3",
    "FLAP_WINDOW": "Seconds of the flapping window. Default: 600",
    "LOG_LEVEL": "DEBUG, INFO, WARNING or ERROR. Default: INFO",
    "PUBLIC_URL": "The dashboard's address as on-call reaches it (behind a proxy, say); "
                  "notifications link to the app's page under it. Default: none, "
                  "notifications carry no link",
}

_FILE_BACKED = {"API_TOKEN", "WEBHOOK_SECRET", "GIT_TOKEN", "SENTRY_DSN"}


def default_state_dir(environ: Mapping[str, str]) -> Path:
    """``$XDG_STATE_HOME/reconciler``, else ``~/.local/state/reconciler`` (as the CLIs)."""
    base = environ.get("XDG_STATE_HOME") or str(Path(environ.get("HOME") or Path.home())
                                                 / ".local" / "state")
    return Path(base) / "reconciler"


def load(environ: Mapping[str, str], *, config_file: Path | None = None) -> Settings:
    """Settings from ``config_file`` (optional) overridden by ``environ``."""
    raw: dict[str, str] = {}
    if config_file is not None:
        raw.update(_read_file(config_file))
    for name in VARIABLES:
        if environ.get(PREFIX + name):
            raw[name] = environ[PREFIX + name]
    for name in _FILE_BACKED:
        file_variable = f"{PREFIX}{name}_FILE"
        if not environ.get(PREFIX + name) and environ.get(file_variable):
            raw[name] = _read_secret_file(file_variable, Path(environ[file_variable]))
    return _settings(raw, environ)


def _read_file(path: Path) -> dict[str, str]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
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
    out: dict[str, str] = {}
    for key, value in data.items():
        name = str(key).upper().removeprefix(PREFIX)
        if name not in VARIABLES:
            raise BadConfiguration(f"{path}: unknown setting {key!r} (known: "
                                   f"{', '.join(n.lower() for n in VARIABLES)})")
        if name in _FILE_BACKED or name == "DATABASE_URL":
            raise BadConfiguration(f"{path}: {key!r} is a credential: set {PREFIX}{name} or "
                                   f"{PREFIX}{name}_FILE in the environment instead")
        out[name] = str(value)
    return out


def _read_secret_file(variable: str, path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as e:
        raise BadConfiguration(f"{variable}={path}: cannot read ({e.strerror})") from e


def _number(raw: Mapping[str, str], name: str, default: float, *, minimum: float) -> float:
    if name not in raw:
        return default
    try:
        value = float(raw[name])
    except ValueError:
        raise BadConfiguration(f"{PREFIX}{name}={raw[name]!r}: expected a number of seconds"
                               ) from None
    if not math.isfinite(value) or value < minimum:
        raise BadConfiguration(f"{PREFIX}{name}={raw[name]!r}: must be at least {minimum}")
    return value


def _listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise BadConfiguration(f"{PREFIX}LISTEN={text!r}: expected host:port such as "
                               "127.0.0.1:8000")
    return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104 - ":8000" means every address


def _settings(raw: Mapping[str, str], environ: Mapping[str, str]) -> Settings:
    defaults = Settings()
    values: dict[str, Any] = {}
    for name in ("MARATHON_URL", "REPO_URL", "REPO_REF", "API_TOKEN", "WEBHOOK_SECRET",
                 "GIT_TOKEN", "SENTRY_DSN", "DATABASE_URL"):
        if name in raw:
            values[name.lower()] = raw[name].strip()
    if "REPO_PATH" in raw:
        path = raw["REPO_PATH"].strip().strip("/") or "."
        if ".." in Path(path).parts:
            raise BadConfiguration(f"{PREFIX}REPO_PATH={raw['REPO_PATH']!r}: must stay inside "
                                   "the repo")
        values["repo_path"] = path
    values["poll_interval"] = _number(raw, "POLL_INTERVAL", defaults.poll_interval, minimum=0.1)
    values["drift_interval"] = _number(raw, "DRIFT_INTERVAL", defaults.drift_interval,
                                       minimum=0.1)
    values["flap_window"] = _number(raw, "FLAP_WINDOW", defaults.flap_window, minimum=1)
    threshold = _number(raw, "FLAP_THRESHOLD", defaults.flap_threshold, minimum=1)
    if threshold != int(threshold):
        raise BadConfiguration(f"{PREFIX}FLAP_THRESHOLD={raw['FLAP_THRESHOLD']!r}: expected a "
                               "whole number")
    values["flap_threshold"] = int(threshold)
    if "STATE_DIR" in raw:
        values["state_dir"] = Path(raw["STATE_DIR"]).expanduser()
    else:
        values["state_dir"] = default_state_dir(environ)
    if "LISTEN" in raw:
        values["listen_host"], values["listen_port"] = _listen(raw["LISTEN"].strip())
    if "GIT_SSH_KEY_FILE" in raw:
        key = Path(raw["GIT_SSH_KEY_FILE"]).expanduser()
        if not key.is_file():
            raise BadConfiguration(f"{PREFIX}GIT_SSH_KEY_FILE={key}: no such file")
        values["git_ssh_key_file"] = key
        beside = key.parent / "known_hosts"
        if "GIT_KNOWN_HOSTS_FILE" not in raw and beside.is_file():
            values["git_known_hosts_file"] = beside
    if "GIT_KNOWN_HOSTS_FILE" in raw:
        known = Path(raw["GIT_KNOWN_HOSTS_FILE"]).expanduser()
        if not known.is_file():
            raise BadConfiguration(f"{PREFIX}GIT_KNOWN_HOSTS_FILE={known}: no such file")
        values["git_known_hosts_file"] = known
    if raw.get("PUBLIC_URL", "").strip():
        public = raw["PUBLIC_URL"].strip().rstrip("/")
        if not public.startswith(("http://", "https://")):
            raise BadConfiguration(f"{PREFIX}PUBLIC_URL={raw['PUBLIC_URL']!r}: expected an "
                                   "http:// or https:// URL")
        values["public_url"] = public
    if "LOG_LEVEL" in raw:
        level = raw["LOG_LEVEL"].strip().upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise BadConfiguration(f"{PREFIX}LOG_LEVEL={raw['LOG_LEVEL']!r}: expected DEBUG, "
                                   "INFO, WARNING or ERROR")
        values["log_level"] = level
    if not values.get("marathon_url", defaults.marathon_url):
        raise BadConfiguration(f"{PREFIX}MARATHON_URL is empty")
    return Settings(**values)
