"""Configuration: file plus environment (environment wins), secrets from files, masked."""

from __future__ import annotations

from pathlib import Path

import pytest

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
