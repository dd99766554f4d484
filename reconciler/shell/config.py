"""Configuration: the one place that reads the environment, ``*_FILE`` secrets and the YAML file.

Every setting of every command comes from here: the controller's (``reconciler run``), the
Marathon client's (URLs, credentials, TLS, timeout) for ``diff``, ``sync``, ``rollback``,
``status`` and ``run``, and the notification webhook. pydantic-settings does the reading and
merging; this module adds the project's rules on top:

- the environment (``RECONCILER_*``) wins over the file, whose keys are the variable names in
  lower case without ``RECONCILER_`` (``--config FILE``)::

      marathon_url: http://marathon:8080
      marathon_timeout: 20
      repo_url: https://gitlab.example.org/lhcb/dirac-desired-state.git
      repo_ref: "v*"
      poll_interval: 30

- credentials (:data:`CREDENTIALS`) are refused in the file: they come from the environment
  or from a host file named by ``RECONCILER_<NAME>_FILE`` (the variable wins over its file);
- credentials never appear in a ``repr``, an error message or a log line
  (:attr:`Settings.secrets` lists them for masking).

``load(environ=None, *, config_file=None) -> Settings`` raises :class:`BadConfiguration`
(stalling: a human must fix the setting), one line naming the variable or the file and key.
The sources it reads, and that line, are in :mod:`config_sources`; the parsing of single
values in :mod:`config_values`.
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import pydantic
import pydantic_settings

from reconciler.core import access
from reconciler.shell import config_sources, marathon
from reconciler.shell import config_values as values

PREFIX = config_sources.PREFIX
CREDENTIALS = config_sources.CREDENTIALS
BadConfiguration = config_sources.BadConfiguration
EMBEDDED = values.EMBEDDED

BUNDLED_DESIRED_STATE = Path(__file__).resolve().parents[1] / "desired_state"
"""The example config repo shipped with the package (used when no repo is configured); the
checkout's ``desired-state/`` links here."""

_Optional = Annotated[str | None, pydantic.BeforeValidator(values.stripped)]
_Secret = Annotated[str | None, pydantic.BeforeValidator(values.stripped),
                    pydantic.Field(repr=False)]
_HostFile = Annotated[Path | None, values.host_path(directory_too=False)]


class Environment(pydantic.BaseModel):
    """One environment of the config repo (``dirac-cert``, ``dirac-prod``), declared on the
    host: its folder in the repo and the Marathon it runs on, with that Marathon's
    credentials from host files (URLs and credentials never come from the config repo).

    Without ``marathon_url`` the environment runs on ``RECONCILER_MARATHON_URL`` with its
    credentials; with one, only the credentials named here are sent to it."""

    model_config = pydantic.ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    name: Annotated[str, pydantic.BeforeValidator(values.environment_name)]
    path: Annotated[str, pydantic.BeforeValidator(values.repo_path)]
    marathon_url: Annotated[str | None, pydantic.BeforeValidator(
        lambda v: None if v is None or not str(v).strip() else ",".join(
            values.marathon_urls(str(v))))] = None
    marathon_username: _Optional = None
    marathon_password_file: _HostFile = None
    marathon_token_file: _HostFile = None
    database_url_file: _HostFile = None
    """This environment's record store (a SQLAlchemy URL in a host file); default: SQLite
    in ``<state dir>/environments/<name>``."""
    promote_from: _Optional = None
    """The environment whose releases this one takes (``reconciler promote``)."""
    soak: Annotated[float, pydantic.BeforeValidator(values.duration)] = 3600.0
    """Seconds a tag must have run healthy in ``promote_from`` before it may come here."""
    auto_promote: tuple[str, ...] = ()
    """Images promoted automatically once soaked (opt-in; empty: by hand only)."""

    def credentials(self) -> tuple[str | None, str | None]:
        """(password, token) from the host files named, read now."""
        return (self._secret("marathon_password_file", self.marathon_password_file),
                self._secret("marathon_token_file", self.marathon_token_file))

    def database_url(self) -> str | None:
        return self._secret("database_url_file", self.database_url_file)

    def _secret(self, name: str, path: Path | None) -> str | None:
        if path is None:
            return None
        return config_sources.read_secret_file(
            f"{PREFIX}ENVIRONMENTS: {self.name}: {name}", path) or None


class Settings(pydantic_settings.BaseSettings):
    """Every setting, with its meaning and default; build it with :func:`load`."""

    model_config = pydantic_settings.SettingsConfigDict(
        env_prefix=PREFIX, frozen=True, extra="forbid", hide_input_in_errors=True)

    marathon_url: Annotated[str, pydantic.BeforeValidator(values.marathon_url)] = pydantic.Field(
        EMBEDDED, description="Marathon base URL(s), comma separated for failover; `embedded` "
        "starts the dev cluster as a child process on a free port (state under the state "
        "dir); `status` finds the dev cluster a `run` started, the other commands need a URL "
        "here or --marathon. Default: embedded")
    marathon_username: _Optional = pydantic.Field(
        None, description="User of Marathon's HTTP basic auth. Default: none")
    marathon_password: _Secret = pydantic.Field(
        None, description="Password of Marathon's HTTP basic auth (or MARATHON_PASSWORD_FILE). "
        "Default: none")
    marathon_token: _Secret = pydantic.Field(
        None, description="DC/OS-style token, sent as `Authorization: token=...`, wins over "
        "basic auth (or MARATHON_TOKEN_FILE). Default: none")
    # requests also takes a directory of CA certificates.
    marathon_ca_bundle: Annotated[Path | None,
                                  values.host_path(directory_too=True)] = pydantic.Field(
        None, description="CA bundle to verify Marathon's TLS certificate. Default: the "
        "system CAs")
    marathon_client_cert: _HostFile = pydantic.Field(
        None, description="Client certificate for Marathon. Default: none")
    marathon_client_key: _HostFile = pydantic.Field(
        None, description="Key of the client certificate for Marathon. Default: none")
    marathon_timeout: Annotated[float, values.seconds(minimum=0, exclusive=True)] = pydantic.Field(
        10.0, description="Seconds per Marathon request. Default: 10")
    repo_url: Annotated[str, pydantic.BeforeValidator(str.strip)] = pydantic.Field(
        str(BUNDLED_DESIRED_STATE), description="Config repo: a Git URL (https, ssh, file), a "
        "local Git repository path, or a plain directory. Default: the bundled desired-state/ "
        "folder")
    repo_ref: Annotated[str, pydantic.BeforeValidator(str.strip)] = pydantic.Field(
        "main", description="Branch, tag, tag pattern such as `v*` (newest by version), or "
        "commit sha. Default: main")
    repo_path: Annotated[str, pydantic.BeforeValidator(values.repo_path)] = pydantic.Field(
        ".", description="Folder inside the repo holding the desired state. Default: . (root)")
    poll_interval: Annotated[float, values.seconds(minimum=0.1)] = pydantic.Field(
        30.0, description="Seconds between Git polls. Default: 30")
    drift_interval: Annotated[float, values.seconds(minimum=0.1)] = pydantic.Field(
        60.0, description="Seconds between drift checks of live Marathon. Default: 60")
    registry_interval: Annotated[float, values.seconds(minimum=0.1)] = pydantic.Field(
        300.0, description="Seconds between checks of the image registries named by update "
        "policies in images.yaml (only when the repo is a Git branch). Default: 300")
    resync_interval: Annotated[float, values.seconds(minimum=1)] = pydantic.Field(
        600.0, description="Seconds between full reads of Marathon's apps while its event "
        "stream is followed (the stream keeps them current in between; without the stream "
        "every drift check reads Marathon). Default: 600")
    state_dir: Annotated[Path, pydantic.BeforeValidator(lambda v: Path(str(v)).expanduser())
                         ] = pydantic.Field(
        description="Where the record store, the Git clone and the embedded cluster live; the "
        "same default as every other command, so `reconciler status`, `drift` and `history` "
        "read what `run` recorded. Default: $XDG_STATE_HOME/reconciler, else "
        "~/.local/state/reconciler")
    listen: Annotated[str, pydantic.BeforeValidator(values.listen)] = pydantic.Field(
        "127.0.0.1:8000", description="host:port of the web server (webhooks, API, dashboard, "
        "metrics). Default: 127.0.0.1:8000")
    api_token: _Secret = pydantic.Field(
        None, description="Bearer token for API actions (or API_TOKEN_FILE). Default: none, "
        "actions refused")
    tokens_file: _HostFile = pydantic.Field(
        None, description="Named machine tokens for automation, one `name role sha256:<hex>` "
        "a line (role: viewer, operator or admin); records name the token as `token:<name>`. "
        "Default: none (API_TOKEN still works, as `admin`)")
    oidc_issuer: Annotated[str | None, pydantic.BeforeValidator(values.public_url)
                           ] = pydantic.Field(
        None, description="OpenID Connect provider (issuer URL) for single sign-on of the "
        "dashboard and bearer JWTs of the API; needs OIDC_CLIENT_ID, SESSION_SECRET and "
        "PUBLIC_URL. Default: none, no sign-on")
    oidc_client_id: _Optional = pydantic.Field(
        None, description="This controller's client id at the provider. Default: none")
    oidc_client_secret: _Secret = pydantic.Field(
        None, description="Its client secret (or OIDC_CLIENT_SECRET_FILE). Default: none, a "
        "public client (PKCE only)")
    oidc_scopes: Annotated[str, pydantic.BeforeValidator(str.strip)] = pydantic.Field(
        "openid email profile", description="Scopes asked at sign-on (add the one that "
        "brings the groups claim, if the provider needs one). Default: openid email profile")
    oidc_audience: _Optional = pydantic.Field(
        None, description="Audience that API bearer JWTs must name. Default: OIDC_CLIENT_ID")
    oidc_groups_claim: Annotated[str, pydantic.BeforeValidator(str.strip)] = pydantic.Field(
        "groups", description="Claim holding the person's groups (dotted for nested claims, "
        "`realm_access.roles`). Default: groups")
    oidc_roles: Annotated[dict[str, access.Role], pydantic_settings.NoDecode,
                          pydantic.BeforeValidator(values.role_mapping)] = pydantic.Field(
        default_factory=dict, description="Groups to roles, `group=role` separated by commas "
        "(viewer: read; operator: sync, retry, rollback, acknowledge, promote; admin: all); "
        "`*` is any signed-in person. Default: none, a signed-in person has no role")
    session_secret: _Secret = pydantic.Field(
        None, description="Key that signs the dashboard's session cookie, at least 32 "
        "characters, the same on every replica (or SESSION_SECRET_FILE). Default: none")
    anonymous_read: Annotated[bool, pydantic.BeforeValidator(values.boolean)] = pydantic.Field(
        True, description="Whether people who are not signed in may read the dashboard and "
        "the API; `false`: pages send them to sign on, the API answers 401. Default: true")
    webhook_secret: _Secret = pydantic.Field(
        None, description="GitLab token / GitHub HMAC secret of webhooks (or "
        "WEBHOOK_SECRET_FILE). Default: none, webhooks refused")
    git_ssh_key_file: _HostFile = pydantic.Field(
        None, description="Private key for ssh:// repos. Default: none")
    git_known_hosts_file: _HostFile = pydantic.Field(
        None, description="known_hosts file the Git server's SSH host key is checked against "
        "(strictly). Default: known_hosts beside the key file if there is one, else a host is "
        "trusted on first use")
    registry_auth_file: _HostFile = pydantic.Field(
        None, description="image registry credentials, in Docker's config.json form, keyed by "
        "registry host (reconciler images). Default: anonymous")
    trusted_keys_file: _HostFile = pydantic.Field(
        None, description="Armored OpenPGP public keys whose signatures are trusted; set "
        "(or ALLOWED_SIGNERS_FILE), only commits signed by one of them are applied. Default: "
        "none, commits are not verified")
    allowed_signers_file: _HostFile = pydantic.Field(
        None, description="SSH signing keys trusted for commits, in ssh-keygen's allowed "
        "signers form (Git's gpg.ssh.allowedSignersFile); set, verification is on. Default: "
        "none")
    signing_key_file: _HostFile = pydantic.Field(
        None, description="Armored OpenPGP secret key (no passphrase) that signs the "
        "controller's registry-bump commits. Default: none, bump commits are unsigned")
    git_token: _Secret = pydantic.Field(
        None, description="HTTPS token for the repo (or GIT_TOKEN_FILE). Default: none")
    sentry_dsn: _Secret = pydantic.Field(
        None, description="Sentry DSN (or SENTRY_DSN_FILE). Default: none, Sentry off")
    database_url: _Secret = pydantic.Field(
        None, description="SQLAlchemy URL of the record store (or DATABASE_URL_FILE). "
        "Default: SQLite in the state dir")
    notify_webhook_url: Annotated[str | None, pydantic.BeforeValidator(values.webhook_url),
                                  pydantic.Field(repr=False)] = pydantic.Field(
        None, description="Mattermost/Slack-compatible webhook that is told of transitions "
        "(or NOTIFY_WEBHOOK_URL_FILE). Default: none")
    flap_threshold: Annotated[int, pydantic.BeforeValidator(values.whole_number)] = pydantic.Field(
        3, description="Corrections within FLAP_WINDOW after which drift is declared flapping "
        "and no longer corrected. Default: 3")
    flap_window: Annotated[float, values.seconds(minimum=1)] = pydantic.Field(
        600.0, description="Seconds of the flapping window. Default: 600")
    log_level: Annotated[str, pydantic.BeforeValidator(values.log_level)] = pydantic.Field(
        "INFO", description="DEBUG, INFO, WARNING or ERROR. Default: INFO")
    public_url: Annotated[str | None, pydantic.BeforeValidator(values.public_url)] = pydantic.Field(
        None, description="The dashboard's address as on-call reaches it (behind a proxy, "
        "say); notifications link to the app's page under it. Default: none, notifications "
        "carry no link")

    environments: Annotated[tuple[Environment, ...], pydantic_settings.NoDecode,
                            pydantic.BeforeValidator(values.environments)] = pydantic.Field(
        (), description="Several environments of the config repo, each a folder with its own "
        "images.yaml, on its own Marathon or a shared one: a YAML/JSON list of {name, path, "
        "marathon_url, marathon_username, marathon_password_file, marathon_token_file, "
        "promote_from, soak, auto_promote} (docs/environments.md). Default: none, one "
        "environment from REPO_PATH and MARATHON_URL")

    @pydantic.field_validator("environments")
    @classmethod
    def _environments_agree(cls, environments: tuple[Environment, ...]
                            ) -> tuple[Environment, ...]:
        names = [e.name for e in environments]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"environments: {name!r} is declared twice")
        paths = [e.path for e in environments]
        for env in environments:
            if paths.count(env.path) > 1:
                raise ValueError(f"environments: path {env.path!r} is used twice")
            if env.promote_from is not None and (env.promote_from not in names
                                                 or env.promote_from == env.name):
                raise ValueError(f"environments: {env.name}: promote_from "
                                 f"{env.promote_from!r} names no other environment")
            if env.auto_promote and env.promote_from is None:
                raise ValueError(f"environments: {env.name}: auto_promote needs promote_from")
        return environments

    zk_url: Annotated[str | None, pydantic.BeforeValidator(values.zk_url)] = pydantic.Field(
        None, description="ZooKeeper ensemble and path for leader election among replicas of "
        "`run`, e.g. zk://zk1:2181,zk2:2181/reconciler; only the leader writes to Marathon "
        "(docs/ha.md). Default: none, a single replica that always writes")
    zk_auth: _Secret = pydantic.Field(
        None, description="ZooKeeper digest credentials `user:password`; the nodes are "
        "created readable and writable by them only (or ZK_AUTH_FILE). Default: none")
    zk_session_timeout: Annotated[float, values.seconds(minimum=2)] = pydantic.Field(
        10.0, description="ZooKeeper session timeout in seconds: how long a dead leader "
        "holds leadership; must exceed 3 x (2 x MARATHON_TIMEOUT + 0.5), checked at start. "
        "Default: 10")
    advertise_url: Annotated[str | None, pydantic.BeforeValidator(values.public_url)
                             ] = pydantic.Field(
        None, description="Where other replicas and clients reach this replica's API, named "
        "by followers when they refuse an action. Default: http://$HOST:$PORT0 under "
        "Marathon, else http://<hostname>:<LISTEN port>")

    @pydantic.model_validator(mode="before")
    @classmethod
    def _known_hosts_beside_the_key(cls, data: Any) -> Any:
        """A ``known_hosts`` beside the SSH key is used unless one is named."""
        if isinstance(data, dict) and data.get("git_ssh_key_file") \
                and not data.get("git_known_hosts_file"):
            beside = Path(str(data["git_ssh_key_file"]).strip()).expanduser().parent \
                / "known_hosts"
            if beside.is_file():
                data = {**data, "git_known_hosts_file": str(beside)}
        return data

    @pydantic.model_validator(mode="after")
    def _sign_on_is_complete(self) -> Settings:
        self.machine_tokens()  # a bad tokens file stops the start, naming the line
        if self.oidc_issuer is None:
            return self
        missing = [f"{PREFIX}{n.upper()}" for n in ("oidc_client_id", "session_secret",
                                                     "public_url") if not getattr(self, n)]
        if missing:
            raise ValueError(f"{PREFIX}OIDC_ISSUER needs {', '.join(missing)}")
        if len(self.session_secret or "") < 32:
            raise ValueError(f"{PREFIX}SESSION_SECRET must be at least 32 characters")
        return self

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[pydantic_settings.BaseSettings],
        init_settings: pydantic_settings.PydanticBaseSettingsSource,
        env_settings: pydantic_settings.PydanticBaseSettingsSource,
        dotenv_settings: pydantic_settings.PydanticBaseSettingsSource,
        file_secret_settings: pydantic_settings.PydanticBaseSettingsSource,
    ) -> tuple[pydantic_settings.PydanticBaseSettingsSource, ...]:
        # ``Settings(...)`` takes its arguments only: reading the environment is load()'s job.
        return (init_settings,)

    @property
    def secrets(self) -> list[str]:
        """The secret values set, for masking them in any text that leaves the process."""
        found = [v for v in (getattr(self, n) for n in sorted(CREDENTIALS)) if v]
        for env in self.environments:
            found += [v for v in (*env.credentials(), env.database_url()) if v]
        return found

    @property
    def verify_signatures(self) -> bool:
        """Only signed commits are applied once a trusted set is configured."""
        return self.trusted_keys_file is not None or self.allowed_signers_file is not None

    @property
    def embedded_marathon(self) -> bool:
        return self.marathon_url == EMBEDDED

    @property
    def listen_host(self) -> str:
        # ":8000" means every address.
        return self.listen.rpartition(":")[0].strip("[]") or "0.0.0.0"  # noqa: S104 - asked for

    @property
    def listen_port(self) -> int:
        return int(self.listen.rpartition(":")[2])

    def machine_tokens(self) -> tuple[access.MachineToken, ...]:
        """The named tokens of TOKENS_FILE (none without one)."""
        if self.tokens_file is None:
            return ()
        try:
            text = self.tokens_file.read_text(encoding="utf-8")
        except OSError as e:
            raise BadConfiguration(f"{PREFIX}TOKENS_FILE={self.tokens_file}: cannot read "
                                   f"({e.strerror})") from e
        try:
            return access.parse_tokens(text)
        except ValueError as e:
            raise BadConfiguration(f"{self.tokens_file}: {e}") from e

    def client_settings(self, *, urls: str | None = None) -> marathon.ClientSettings:
        """The Marathon client's settings; ``urls`` (``--marathon``, or the embedded dev
        cluster's address) replaces ``RECONCILER_MARATHON_URL``."""
        text = self.marathon_url if urls is None else urls
        if text.strip() == EMBEDDED:
            raise BadConfiguration(
                f"no Marathon URL: pass --marathon or set {PREFIX}MARATHON_URL (`embedded` "
                "only means something to `run`, `status` and `promote`)")
        try:
            parsed = values.marathon_urls(text)
        except ValueError as e:
            source = "--marathon" if urls is not None else f"{PREFIX}MARATHON_URL"
            raise BadConfiguration(f"{source}: {e}") from e
        return marathon.ClientSettings(
            urls=parsed, username=self.marathon_username, password=self.marathon_password,
            token=self.marathon_token,
            ca_bundle=str(self.marathon_ca_bundle) if self.marathon_ca_bundle else None,
            client_cert=str(self.marathon_client_cert) if self.marathon_client_cert else None,
            client_key=str(self.marathon_client_key) if self.marathon_client_key else None,
            timeout=self.marathon_timeout)


VARIABLES: dict[str, str] = {
    name.upper(): field.description or "" for name, field in Settings.model_fields.items()}
"""``NAME`` (without the prefix) -> meaning and default: the configuration reference."""


def default_state_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_STATE_HOME/reconciler``, else ``~/.local/state/reconciler`` (as the CLIs)."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_STATE_HOME") or str(Path(env.get("HOME") or Path.home())
                                            / ".local" / "state")
    return Path(base) / "reconciler"


def operator(environ: Mapping[str, str] | None = None) -> str | None:
    """Who runs this command (``$USER``, else ``$LOGNAME``, else the name of the process's
    OS user), for the audit trail; None only when the user id has no name."""
    env = os.environ if environ is None else environ
    named = env.get("USER") or env.get("LOGNAME")
    if named:
        return named
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:  # a uid without a passwd entry (some containers)
        return None


def load(environ: Mapping[str, str] | None = None, *,
         config_file: Path | None = None) -> Settings:
    """Settings from ``config_file`` (optional) overridden by ``environ`` (default: this
    process's environment)."""
    env = os.environ if environ is None else environ
    environment = config_sources.EnvironmentVariables(Settings, environ=env)
    sources: list[pydantic_settings.PydanticBaseSettingsSource] = [
        environment, config_sources.SecretFiles(Settings, environ=env)]
    if config_file is not None:
        sources.append(config_sources.ConfigFile(Settings, path=config_file))
    defaults = {"state_dir": str(default_state_dir(env))}
    if env.get("HOST") and env.get("PORT0"):
        # Under Marathon: the agent's host name and the task's first host port.
        defaults["advertise_url"] = f"http://{env['HOST']}:{env['PORT0']}"
    sources.append(pydantic_settings.InitSettingsSource(Settings, init_kwargs=defaults))
    try:
        # pydantic-settings' documented way to build from sources made here, not its defaults.
        return Settings(_build_sources=(tuple(sources), {}))  # type: ignore[call-arg]
    except pydantic.ValidationError as e:
        raise BadConfiguration(config_sources.describe(e, from_environment=environment(),
                                         config_file=config_file)) from e
