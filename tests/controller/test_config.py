"""Configuration: file plus environment (environment wins), secrets from files, masked."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from reconciler.core import access
from reconciler.shell import config


def test_defaults_run_the_bundled_repo_on_an_embedded_cluster() -> None:
    settings = config.load({})
    assert settings.embedded_marathon
    assert Path(settings.repo_url) == config.BUNDLED_DESIRED_STATE
    assert (settings.repo_ref, settings.repo_path) == ("main", ".")
    assert (settings.poll_interval, settings.drift_interval) == (30.0, 60.0)
    assert (settings.listen_host, settings.listen_port) == ("127.0.0.1", 8000)
    assert (settings.flap_threshold, settings.flap_window) == (3, 600.0)


def test_environment_wins_over_the_file(tmp_path: Path) -> None:
    file = tmp_path / "reconciler.yaml"
    file.write_text("poll_interval: 5\nrepo_ref: 'v*'\nlisten: 0.0.0.0:9000\n")
    settings = config.load({"RECONCILER_POLL_INTERVAL": "2.5"}, config_file=file)
    assert settings.poll_interval == 2.5
    assert settings.repo_ref == "v*"
    assert (settings.listen_host, settings.listen_port) == ("0.0.0.0", 9000)  # noqa: S104 - a value read back, nothing binds


def test_secrets_come_from_files_and_never_show_in_repr(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("s3cr3t-api-token\n")
    settings = config.load({"RECONCILER_API_TOKEN_FILE": str(token_file),
                            "RECONCILER_WEBHOOK_SECRET": "hook-secret-1"})
    assert settings.api_token == "s3cr3t-api-token"
    assert settings.webhook_secret == "hook-secret-1"
    assert "s3cr3t" not in repr(settings) and "hook-secret" not in repr(settings)
    assert set(settings.secrets) == {"s3cr3t-api-token", "hook-secret-1"}


def test_credentials_in_the_file_are_refused(tmp_path: Path) -> None:
    file = tmp_path / "reconciler.yaml"
    file.write_text("api_token: oops\n")
    with pytest.raises(config.BadConfiguration, match="credential"):
        config.load({}, config_file=file)


@pytest.mark.parametrize(("name", "value", "message"), [
    ("RECONCILER_POLL_INTERVAL", "soon", "number"),
    ("RECONCILER_LISTEN", "8000", "host:port"),
    ("RECONCILER_FLAP_THRESHOLD", "2.5", "whole"),
    ("RECONCILER_REPO_PATH", "../elsewhere", "inside"),
    ("RECONCILER_API_TOKEN_FILE", "/nonexistent/token", "cannot read"),
    ("RECONCILER_PUBLIC_URL", "reconciler.example.org", "http"),
])
def test_bad_values_name_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(config.BadConfiguration, match=message) as error:
        config.load({name: value})
    assert name in str(error.value)


def test_bad_yaml_names_file_and_line(tmp_path: Path) -> None:
    file = tmp_path / "reconciler.yaml"
    file.write_text("poll_interval: 5\nrepo_ref: [unclosed\n")
    with pytest.raises(config.BadConfiguration, match=r"reconciler\.yaml:\d+"):
        config.load({}, config_file=file)


def test_known_hosts_beside_the_ssh_key_is_used_unless_one_is_named(tmp_path: Path) -> None:
    key = tmp_path / "ssh" / "id_ed25519"
    key.parent.mkdir()
    key.write_text("key\n")
    assert config.load({"RECONCILER_GIT_SSH_KEY_FILE": str(key)}).git_known_hosts_file is None
    (key.parent / "known_hosts").write_text("")
    settings = config.load({"RECONCILER_GIT_SSH_KEY_FILE": str(key)})
    assert settings.git_known_hosts_file == key.parent / "known_hosts"
    other = tmp_path / "hosts"
    other.write_text("")
    named = config.load({"RECONCILER_GIT_SSH_KEY_FILE": str(key),
                         "RECONCILER_GIT_KNOWN_HOSTS_FILE": str(other)})
    assert named.git_known_hosts_file == other
    with pytest.raises(config.BadConfiguration, match="GIT_KNOWN_HOSTS_FILE"):
        config.load({"RECONCILER_GIT_KNOWN_HOSTS_FILE": str(tmp_path / "missing")})


def test_state_dir_defaults_to_where_the_other_commands_look(tmp_path: Path) -> None:
    assert config.load({"XDG_STATE_HOME": str(tmp_path)}).state_dir == tmp_path / "reconciler"
    assert config.load({"HOME": str(tmp_path)}).state_dir == (
        tmp_path / ".local" / "state" / "reconciler")
    assert config.load({"HOME": str(tmp_path), "RECONCILER_STATE_DIR": "/srv/r"}).state_dir \
        == Path("/srv/r")


def test_public_url_is_kept_without_its_trailing_slash() -> None:
    assert config.load({}).public_url is None
    assert config.load({"RECONCILER_PUBLIC_URL": "https://ops.example.org/reconciler/"}) \
        .public_url == "https://ops.example.org/reconciler"


def test_the_readme_documents_every_variable() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    missing = [config.PREFIX + name for name in config.VARIABLES
               if f"`{config.PREFIX}{name}`" not in readme]
    assert not missing, f"README's configuration reference lacks {missing}"


def readme_reference() -> dict[str, tuple[bool, str]]:
    """The README's configuration table: variable (without the prefix) -> (marked ``_FILE``,
    the default column)."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Configuration reference", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, tuple[bool, str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`RECONCILER_"):
            continue
        for name, file_mark in re.findall(r"`RECONCILER_([A-Z_]+)`( \(`_FILE`\))?", cells[0]):
            rows[name] = (bool(file_mark), cells[2])
    return rows


def test_every_variable_of_the_readme_is_a_setting_and_credentials_are_the_file_ones() -> None:
    rows = readme_reference()
    assert set(rows) == set(config.VARIABLES)
    assert {name for name, (file_backed, _) in rows.items() if file_backed} == {
        name.upper() for name in config.CREDENTIALS}


def samples(tmp_path: Path) -> dict[str, tuple[str, str, object]]:
    """Variable -> (a value to set, the attribute it sets, the value read back)."""
    for name in ("ca.pem", "client.pem", "client.key", "id_ed25519", "known_hosts",
                 "registries.json", "tokens", "trusted.asc", "allowed_signers", "signing.asc"):
        (tmp_path / name).write_text("\n")
    return {
        "MARATHON_URL": ("http://m1:8080/, http://m2:8080", "marathon_url",
                         "http://m1:8080,http://m2:8080"),
        "MARATHON_USERNAME": ("ops", "marathon_username", "ops"),
        "MARATHON_PASSWORD": ("pa55word", "marathon_password", "pa55word"),
        "MARATHON_TOKEN": ("t0ken", "marathon_token", "t0ken"),
        "MARATHON_CA_BUNDLE": (str(tmp_path / "ca.pem"), "marathon_ca_bundle",
                               tmp_path / "ca.pem"),
        "MARATHON_CLIENT_CERT": (str(tmp_path / "client.pem"), "marathon_client_cert",
                                 tmp_path / "client.pem"),
        "MARATHON_CLIENT_KEY": (str(tmp_path / "client.key"), "marathon_client_key",
                                tmp_path / "client.key"),
        "MARATHON_TIMEOUT": ("2.5", "marathon_timeout", 2.5),
        "REPO_URL": ("https://git.example.org/r.git", "repo_url",
                     "https://git.example.org/r.git"),
        "REPO_REF": ("1.10", "repo_ref", "1.10"),
        "REPO_PATH": ("/apps/", "repo_path", "apps"),
        "POLL_INTERVAL": ("5", "poll_interval", 5.0),
        "DRIFT_INTERVAL": ("7.5", "drift_interval", 7.5),
        "REGISTRY_INTERVAL": ("45", "registry_interval", 45.0),
        "RESYNC_INTERVAL": ("120", "resync_interval", 120.0),
        "STATE_DIR": ("/srv/reconciler", "state_dir", Path("/srv/reconciler")),
        "LISTEN": (":9000", "listen", ":9000"),
        "API_TOKEN": ("api-t0ken", "api_token", "api-t0ken"),
        "WEBHOOK_SECRET": ("hook-s3cret", "webhook_secret", "hook-s3cret"),
        "GIT_SSH_KEY_FILE": (str(tmp_path / "id_ed25519"), "git_ssh_key_file",
                             tmp_path / "id_ed25519"),
        "GIT_KNOWN_HOSTS_FILE": (str(tmp_path / "known_hosts"), "git_known_hosts_file",
                                 tmp_path / "known_hosts"),
        "REGISTRY_AUTH_FILE": (str(tmp_path / "registries.json"), "registry_auth_file",
                               tmp_path / "registries.json"),
        "TRUSTED_KEYS_FILE": (str(tmp_path / "trusted.asc"), "trusted_keys_file",
                              tmp_path / "trusted.asc"),
        "ALLOWED_SIGNERS_FILE": (str(tmp_path / "allowed_signers"), "allowed_signers_file",
                                 tmp_path / "allowed_signers"),
        "SIGNING_KEY_FILE": (str(tmp_path / "signing.asc"), "signing_key_file",
                             tmp_path / "signing.asc"),
        "GIT_TOKEN": ("git-t0ken", "git_token", "git-t0ken"),
        "SENTRY_DSN": ("https://key@sentry.example.org/1", "sentry_dsn",
                       "https://key@sentry.example.org/1"),
        "DATABASE_URL": ("postgresql+psycopg://r:pw@db/r", "database_url",
                         "postgresql+psycopg://r:pw@db/r"),
        "NOTIFY_WEBHOOK_URL": ("https://chat.example.org/hooks/x", "notify_webhook_url",
                               "https://chat.example.org/hooks/x"),
        "FLAP_THRESHOLD": ("5", "flap_threshold", 5),
        "FLAP_WINDOW": ("120", "flap_window", 120.0),
        "LOG_LEVEL": ("debug", "log_level", "DEBUG"),
        "PUBLIC_URL": ("https://ops.example.org/r/", "public_url", "https://ops.example.org/r"),
        "TOKENS_FILE": (str(tmp_path / "tokens"), "tokens_file", tmp_path / "tokens"),
        "OIDC_ISSUER": ("https://sso.example.org/realms/lhcb/", "oidc_issuer",
                        "https://sso.example.org/realms/lhcb"),
        "OIDC_CLIENT_ID": ("reconciler", "oidc_client_id", "reconciler"),
        "OIDC_CLIENT_SECRET": ("client-s3cret", "oidc_client_secret", "client-s3cret"),
        "OIDC_SCOPES": ("openid email groups", "oidc_scopes", "openid email groups"),
        "OIDC_AUDIENCE": ("reconciler-api", "oidc_audience", "reconciler-api"),
        "OIDC_GROUPS_CLAIM": ("realm_access.roles", "oidc_groups_claim", "realm_access.roles"),
        "OIDC_ROLES": ("lhcb-oncall=operator, *=viewer", "oidc_roles",
                       {"lhcb-oncall": access.Role.OPERATOR, "*": access.Role.VIEWER}),
        "SESSION_SECRET": (SESSION_SECRET, "session_secret", SESSION_SECRET),
        "ANONYMOUS_READ": ("false", "anonymous_read", False),
        "ENVIRONMENTS": ('[{"name": "cert", "path": "/cert/"}]', "environments",
                         (config.Environment(name="cert", path="cert"),)),
        "ZK_URL": ("zk://zk1:2181,zk2:2181/reconciler", "zk_url",
                   "zk://zk1:2181,zk2:2181/reconciler"),
        "ZK_AUTH": ("reconciler:zk-s3cret", "zk_auth", "reconciler:zk-s3cret"),
        "ZK_SESSION_TIMEOUT": ("12", "zk_session_timeout", 12.0),
        "ADVERTISE_URL": ("http://10.0.0.7:31000/", "advertise_url", "http://10.0.0.7:31000"),
    }


SESSION_SECRET = "session-s3cret-0123456789abcdef-0123"


DEFAULTS: dict[str, tuple[str, object, str]] = {
    # variable: (attribute, default, how the README's default column says it)
    "MARATHON_URL": ("marathon_url", "embedded", "`embedded`"),
    "MARATHON_USERNAME": ("marathon_username", None, "none"),
    "MARATHON_PASSWORD": ("marathon_password", None, "none"),
    "MARATHON_TOKEN": ("marathon_token", None, "none"),
    "MARATHON_CA_BUNDLE": ("marathon_ca_bundle", None, "system CAs"),
    "MARATHON_CLIENT_CERT": ("marathon_client_cert", None, "none"),
    "MARATHON_CLIENT_KEY": ("marathon_client_key", None, "none"),
    "MARATHON_TIMEOUT": ("marathon_timeout", 10.0, "10"),
    "REPO_URL": ("repo_url", str(config.BUNDLED_DESIRED_STATE), "bundled `desired-state/`"),
    "REPO_REF": ("repo_ref", "main", "`main`"),
    "REPO_PATH": ("repo_path", ".", "`.`"),
    "POLL_INTERVAL": ("poll_interval", 30.0, "30"),
    "DRIFT_INTERVAL": ("drift_interval", 60.0, "60"),
    "REGISTRY_INTERVAL": ("registry_interval", 300.0, "300"),
    "RESYNC_INTERVAL": ("resync_interval", 600.0, "600"),
    "STATE_DIR": ("state_dir", None, "~/.local/state/reconciler"),  # checked below
    "LISTEN": ("listen", "127.0.0.1:8000", "`127.0.0.1:8000`"),
    "API_TOKEN": ("api_token", None, "none"),
    "WEBHOOK_SECRET": ("webhook_secret", None, "none"),
    "GIT_SSH_KEY_FILE": ("git_ssh_key_file", None, "none"),
    "GIT_KNOWN_HOSTS_FILE": ("git_known_hosts_file", None, "trusted on first use"),
    "REGISTRY_AUTH_FILE": ("registry_auth_file", None, "anonymous"),
    "TRUSTED_KEYS_FILE": ("trusted_keys_file", None, "commits are not verified"),
    "ALLOWED_SIGNERS_FILE": ("allowed_signers_file", None, "none"),
    "SIGNING_KEY_FILE": ("signing_key_file", None, "bump commits are unsigned"),
    "GIT_TOKEN": ("git_token", None, "none"),
    "SENTRY_DSN": ("sentry_dsn", None, "none"),
    "DATABASE_URL": ("database_url", None, "SQLite in the state dir"),
    "NOTIFY_WEBHOOK_URL": ("notify_webhook_url", None, "none"),
    "FLAP_THRESHOLD": ("flap_threshold", 3, "3"),
    "FLAP_WINDOW": ("flap_window", 600.0, "600"),
    "LOG_LEVEL": ("log_level", "INFO", "INFO"),
    "PUBLIC_URL": ("public_url", None, "none"),
    "TOKENS_FILE": ("tokens_file", None, "none"),
    "OIDC_ISSUER": ("oidc_issuer", None, "none"),
    "OIDC_CLIENT_ID": ("oidc_client_id", None, "none"),
    "OIDC_CLIENT_SECRET": ("oidc_client_secret", None, "none"),
    "OIDC_SCOPES": ("oidc_scopes", "openid email profile", "`openid email profile`"),
    "OIDC_AUDIENCE": ("oidc_audience", None, "the client id"),
    "OIDC_GROUPS_CLAIM": ("oidc_groups_claim", "groups", "`groups`"),
    "OIDC_ROLES": ("oidc_roles", {}, "none"),
    "SESSION_SECRET": ("session_secret", None, "none"),
    "ANONYMOUS_READ": ("anonymous_read", True, "true"),
    "ENVIRONMENTS": ("environments", (), "none: one environment"),
    "ZK_URL": ("zk_url", None, "none"),
    "ZK_AUTH": ("zk_auth", None, "none"),
    "ZK_SESSION_TIMEOUT": ("zk_session_timeout", 10.0, "10"),
    "ADVERTISE_URL": ("advertise_url", None, "`http://$HOST:$PORT0` under Marathon"),
}


def test_every_variable_has_its_documented_default(tmp_path: Path) -> None:
    assert set(DEFAULTS) == set(config.VARIABLES)
    rows = readme_reference()
    settings = config.load({"HOME": str(tmp_path)})
    for name, (attribute, default, documented) in DEFAULTS.items():
        if name == "STATE_DIR":
            default = tmp_path / ".local" / "state" / "reconciler"
        assert getattr(settings, attribute) == default, name
        assert documented in rows[name][1], f"README's default of {name}: {rows[name][1]}"
        assert "Default:" in config.VARIABLES[name], f"--help says no default for {name}"


def test_every_variable_is_read_from_the_environment(tmp_path: Path) -> None:
    cases = samples(tmp_path)
    assert set(cases) == set(config.VARIABLES)
    settings = config.load({config.PREFIX + name: value for name, (value, _, _) in cases.items()})
    for name, (_, attribute, expected) in cases.items():
        assert getattr(settings, attribute) == expected, name


def test_every_setting_but_the_credentials_is_read_from_the_file(tmp_path: Path) -> None:
    cases = samples(tmp_path)
    file = tmp_path / "reconciler.yaml"
    plain = {name: case for name, case in cases.items()
             if name.lower() not in config.CREDENTIALS}
    file.write_text(yaml.safe_dump({name.lower(): value for name, (value, _, _) in plain.items()}))
    # Sign-on needs its session secret, a credential: from the environment.
    settings = config.load({"RECONCILER_SESSION_SECRET": SESSION_SECRET}, config_file=file)
    for name, (_, attribute, expected) in plain.items():
        assert getattr(settings, attribute) == expected, name
    for credential in sorted(config.CREDENTIALS):
        file.write_text(f"{credential}: some-value\n")
        with pytest.raises(config.BadConfiguration, match="credential") as refused:
            config.load({}, config_file=file)
        assert f"{config.PREFIX}{credential.upper()}_FILE" in str(refused.value)
        assert "some-value" not in str(refused.value)


def test_marathon_settings_in_the_file_reach_the_client_and_the_environment_wins(
        tmp_path: Path) -> None:
    file = tmp_path / "reconciler.yaml"
    file.write_text("marathon_url: http://m1:8080\nmarathon_timeout: 20\n"
                    "marathon_username: ops\n")
    client = config.load({"RECONCILER_MARATHON_TIMEOUT": "3",
                          "RECONCILER_MARATHON_PASSWORD": "pa55word"},
                         config_file=file).client_settings()
    assert (client.urls, client.timeout) == (("http://m1:8080",), 3.0)
    assert (client.username, client.password) == ("ops", "pa55word")
    assert config.load({}, config_file=file).client_settings().timeout == 20.0


def test_credentials_come_from_their_files_and_never_show(tmp_path: Path) -> None:
    cases = {name: value for name, (value, _, _) in samples(tmp_path).items()
             if name.lower() in config.CREDENTIALS}
    environ = {}
    for name, value in cases.items():
        (tmp_path / name).write_text(value + "\n")
        environ[f"{config.PREFIX}{name}_FILE"] = str(tmp_path / name)
    settings = config.load(environ)
    assert sorted(settings.secrets) == sorted(cases.values())
    for value in cases.values():
        assert value not in repr(settings) and value not in str(settings)
        assert value not in repr(settings.client_settings(urls="http://m:8080"))


@pytest.mark.parametrize(("name", "value", "message"), [
    ("RECONCILER_MARATHON_TIMEOUT", "0", "more than 0"),
    ("RECONCILER_MARATHON_URL", "ops:pa55word@marathon:8080", "http"),
    ("RECONCILER_MARATHON_CA_BUNDLE", "/nonexistent/ca.pem", "no such file"),
    ("RECONCILER_MARATHON_PASSWORD_FILE", "/nonexistent/password", "cannot read"),
    ("RECONCILER_NOTIFY_WEBHOOK_URL", "chat.example.org/hooks/t0ken", "http"),
    ("RECONCILER_LOG_LEVEL", "loud", "DEBUG"),
])
def test_bad_marathon_and_notification_values_name_the_variable_never_a_secret(
        name: str, value: str, message: str) -> None:
    with pytest.raises(config.BadConfiguration, match=message) as error:
        config.load({name: value})
    assert name in str(error.value) and "\n" not in str(error.value)
    assert "pa55word" not in str(error.value) and "t0ken" not in str(error.value)


def test_a_bad_value_in_the_file_names_the_file_and_the_key(tmp_path: Path) -> None:
    file = tmp_path / "reconciler.yaml"
    file.write_text("marathon_timeout: soon\n")
    with pytest.raises(config.BadConfiguration, match=r"reconciler\.yaml: marathon_timeout"):
        config.load({}, config_file=file)
    file.write_text("marathon_timout: 20\n")
    with pytest.raises(config.BadConfiguration, match="unknown setting 'marathon_timout'"):
        config.load({}, config_file=file)
    with pytest.raises(config.BadConfiguration, match="no such file"):
        config.load({}, config_file=tmp_path / "missing.yaml")


def test_run_with_a_bad_setting_exits_1_with_one_line_naming_it(tmp_path: Path) -> None:
    file = tmp_path / "reconciler.yaml"
    file.write_text("marathon_timeout: 20\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
    env.update(RECONCILER_FLAP_WINDOW="soon", RECONCILER_STATE_DIR=str(tmp_path / "state"))
    result = subprocess.run(
        [sys.executable, "-m", "reconciler", "run", "--config", str(file)],
        capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "configuration: RECONCILER_FLAP_WINDOW='soon': expected a number of seconds"]


def test_a_listen_address_in_use_is_one_line_and_nothing_starts(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, "RECONCILER_STATE_DIR": str(tmp_path / "state"),
               "RECONCILER_LISTEN": f"127.0.0.1:{port}"}
        result = subprocess.run([sys.executable, "-m", "reconciler", "run"], env=env,
                                capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"cannot listen on 127.0.0.1:{port}: Address already in use "
        "(set RECONCILER_LISTEN to another host:port)"]
    assert not (tmp_path / "state" / "devcluster").exists(), "the dev cluster was started"


def test_sign_on_without_its_client_secret_session_or_public_url_names_what_is_missing(
        ) -> None:
    with pytest.raises(config.BadConfiguration) as error:
        config.load({"RECONCILER_OIDC_ISSUER": "https://sso.example.org/realms/lhcb",
                     "RECONCILER_SESSION_SECRET": "short-s3cret"})
    message = str(error.value)
    assert message == ("RECONCILER_OIDC_ISSUER needs RECONCILER_OIDC_CLIENT_ID, "
                       "RECONCILER_PUBLIC_URL")
    with pytest.raises(config.BadConfiguration, match="at least 32 characters") as short:
        config.load({"RECONCILER_OIDC_ISSUER": "https://sso.example.org/realms/lhcb",
                     "RECONCILER_OIDC_CLIENT_ID": "reconciler",
                     "RECONCILER_PUBLIC_URL": "https://reconciler.example.org",
                     "RECONCILER_SESSION_SECRET": "short-s3cret"})
    assert "short-s3cret" not in str(short.value)


def test_a_bad_tokens_file_stops_the_start_naming_the_file_and_line(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("ci operator the-plain-token-by-mistake\n")
    with pytest.raises(config.BadConfiguration, match=r"tokens: line 1: expected sha256") \
            as error:
        config.load({"RECONCILER_TOKENS_FILE": str(tokens)})
    assert "the-plain-token-by-mistake" not in str(error.value)


def test_a_bad_role_mapping_names_the_variable() -> None:
    with pytest.raises(config.BadConfiguration,
                       match=r"RECONCILER_OIDC_ROLES=.*unknown role 'root'"):
        config.load({"RECONCILER_OIDC_ROLES": "lhcb=root"})


@pytest.mark.parametrize(("url", "problem"), [
    ("http://zk:2181/reconciler", "expected zk://"),
    ("zk://zk:2181", "give the path"),
    ("zk://zk:2181,zk2/reconciler", "not host:port"),
    ("zk://user:pw@zk:2181/reconciler", "credentials do not belong in the URL"),
])
def test_a_bad_zookeeper_url_is_refused_naming_the_variable(url: str, problem: str) -> None:
    with pytest.raises(config.BadConfiguration, match=problem) as refused:
        config.load({"RECONCILER_ZK_URL": url})
    assert str(refused.value).startswith("RECONCILER_ZK_URL")
    assert "user:pw" not in str(refused.value)


def test_under_marathon_a_replica_advertises_its_agent_and_host_port() -> None:
    settings = config.load({"HOST": "agent7.example.org", "PORT0": "31005"})
    assert settings.advertise_url == "http://agent7.example.org:31005"
