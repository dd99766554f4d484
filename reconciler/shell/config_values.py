"""Parsing of single setting values for :mod:`reconciler.shell.config`.

Each parser takes what a variable or the file holds (text) and returns the setting's value,
or raises ValueError saying what was expected (pydantic reports it, naming the variable).
"""

from __future__ import annotations

import math
import re
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import pydantic
import yaml

from reconciler.core import access

EMBEDDED = "embedded"
"""``RECONCILER_MARATHON_URL=embedded``: run the dev cluster as a child process."""


def seconds(*, minimum: float, exclusive: bool = False) -> pydantic.BeforeValidator:
    def parse(value: object) -> float:
        try:
            number = float(str(value))
        except ValueError:
            raise ValueError("expected a number of seconds") from None
        too_small = number <= minimum if exclusive else number < minimum
        if not math.isfinite(number) or too_small:
            raise ValueError(f"must be {'more than' if exclusive else 'at least'} {minimum:g}")
        return number
    return pydantic.BeforeValidator(parse)


def whole_number(value: object) -> int:
    try:
        number = float(str(value))
    except ValueError:
        raise ValueError("expected a whole number") from None
    if not number.is_integer():
        raise ValueError("expected a whole number")
    if number < 1:
        raise ValueError("must be at least 1")
    return int(number)


def http_url(value: str) -> bool:
    parts = urllib.parse.urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def marathon_urls(text: str) -> tuple[str, ...]:
    """``http://m1:8080, http://m2:8080/`` -> both base URLs, in failover order."""
    urls = tuple(u.strip().rstrip("/") for u in text.split(",") if u.strip())
    if not urls:
        raise ValueError("no Marathon URL")
    if not all(http_url(u) for u in urls):
        # The text may hold user:password@: say what is expected, not what was given.
        raise ValueError("expected http(s) URLs separated by commas, or `embedded`")
    return urls


def marathon_url(value: object) -> str:
    text = str(value).strip()
    if text == EMBEDDED:
        return text
    return ",".join(marathon_urls(text))


def repo_path(value: object) -> str:
    path = str(value).strip().strip("/") or "."
    if ".." in Path(path).parts:
        raise ValueError("must stay inside the repo")
    return path


def listen(value: object) -> str:
    text = str(value).strip()
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("expected host:port such as 127.0.0.1:8000")
    return text


def public_url(value: object) -> str | None:
    text = str(value).strip().rstrip("/") if value is not None else ""
    if not text:
        return None
    if not http_url(text):
        raise ValueError("expected an http:// or https:// URL")
    return text


def webhook_url(value: object) -> str | None:
    text = str(value).strip() if value is not None else ""
    if not text:
        return None
    if not http_url(text):
        raise ValueError("must be an http(s) URL")  # the URL holds a token: never repeat it
    return text


def log_level(value: object) -> str:
    level = str(value).strip().upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ValueError("expected DEBUG, INFO, WARNING or ERROR")
    return level


def host_path(*, directory_too: bool) -> pydantic.BeforeValidator:
    def check(value: object) -> Path | None:
        if value is None or not str(value).strip():
            return None
        path = Path(str(value).strip()).expanduser()
        if not (path.is_file() or (directory_too and path.is_dir())):
            raise ValueError("no such file")
        return path
    return pydantic.BeforeValidator(check)


def stripped(value: object) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


def role_mapping(value: object) -> dict[str, access.Role]:
    if isinstance(value, dict):  # already parsed (a Settings built in code)
        return {str(k): access.Role.parse(str(v)) for k, v in value.items()}
    return access.parse_role_mapping(str(value))


def boolean(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0"):
        return False
    raise ValueError("expected true or false")


_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def duration(value: object) -> float:
    """``3600``, ``90s``, ``30m``, ``24h``, ``2d``, ``1w`` -> seconds (0 or more)."""
    text = str(value).strip().lower()
    unit = _DURATION_UNITS.get(text[-1:]) if text else None
    try:
        number = float(text[:-1] if unit else text) * (unit or 1)
    except ValueError:
        raise ValueError("expected seconds or a duration such as 30m, 24h, 2d") from None
    if not math.isfinite(number) or number < 0:
        raise ValueError("must be 0 or more")
    return number


MAX_ENVIRONMENTS_TEXT = 64 * 1024
"""Bound on RECONCILER_ENVIRONMENTS before it is parsed."""


def environments(value: object) -> object:
    """``RECONCILER_ENVIRONMENTS`` as YAML (or JSON) text, or already a list (the file)."""
    if value is None:
        return ()
    if not isinstance(value, str):
        return value
    if len(value) > MAX_ENVIRONMENTS_TEXT:
        raise ValueError(f"longer than {MAX_ENVIRONMENTS_TEXT} characters")
    if not value.strip():
        return ()
    try:
        # BaseLoader: scalars stay text, parsed by each field as a variable would be.
        parsed = yaml.load(value, Loader=yaml.BaseLoader)
    except yaml.YAMLError:
        raise ValueError("expected a YAML or JSON list of environments") from None
    if not isinstance(parsed, list):
        raise ValueError("expected a list of environments (name, path, marathon_url...)")
    return parsed


def environment_name(value: object) -> str:
    text = str(value).strip()
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,39}", text):
        raise ValueError("expected a short name of lower-case letters, digits and -")
    return text


@dataclass(frozen=True)
class ZooKeeperTarget:
    hosts: str
    """``host1:2181,host2:2181`` as kazoo takes it."""
    path: str
    """The chroot-like base path of this controller's nodes, e.g. ``/reconciler``."""


def parse_zk_url(url: str) -> ZooKeeperTarget:
    """``zk://host1:2181,host2:2181/reconciler`` -> hosts and path (the path is required)."""
    parsed = urllib.parse.urlsplit(url.strip())
    if parsed.scheme != "zk" or not parsed.netloc:
        raise ValueError("expected zk://host:port[,host:port...]/path")
    if "@" in parsed.netloc:
        raise ValueError("credentials do not belong in the URL: use RECONCILER_ZK_AUTH_FILE")
    hosts = parsed.netloc.split(",")
    for host in hosts:
        name, _, port = host.rpartition(":")
        if not name or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{host!r} is not host:port")
    path = "/" + parsed.path.strip("/")
    if path == "/" or parsed.query or parsed.fragment:
        raise ValueError("give the path of this controller's nodes, e.g. zk://host:2181/"
                              "reconciler (and no query)")
    return ZooKeeperTarget(hosts=",".join(hosts), path=path)


def zk_url(value: object) -> str | None:
    text = str(value).strip() if value is not None else ""
    if not text:
        return None
    parse_zk_url(text)
    return text
