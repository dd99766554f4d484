"""RECONCILER_ENVIRONMENTS: declared on the host, each environment's Marathon and credentials
from host files, never from the config repo, never shown in an error."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.shell import config, environments


def test_environments_read_from_a_variable_or_as_a_list_in_the_file(tmp_path: Path) -> None:
    password = tmp_path / "prod-password"
    password.write_text("pr0d-pa55\n")
    file = tmp_path / "reconciler.yaml"
    file.write_text(
        "marathon_url: http://cert-marathon:8080\n"
        "environments:\n"
        "  - {name: cert, path: dirac-cert}\n"
        "  - name: prod\n"
        "    path: dirac-prod\n"
        "    marathon_url: https://prod-marathon:8443/\n"
        "    marathon_username: reconciler\n"
        f"    marathon_password_file: {password}\n"
        "    promote_from: cert\n"
        "    soak: 24h\n"
        "    auto_promote: [lhcbdirac]\n")
    settings = config.load({"RECONCILER_PUBLIC_URL": "https://ops.example.org/r"},
                           config_file=file)
    cert, prod = settings.environments
    assert (prod.soak, prod.auto_promote, prod.promote_from) == (86400.0, ("lhcbdirac",), "cert")
    assert cert.soak == 3600.0
    shared = environments.environment_settings(settings, cert).client_settings()
    assert shared.urls == ("http://cert-marathon:8080",)
    own = environments.environment_settings(settings, prod).client_settings()
    assert (own.urls, own.username, own.password) == (
        ("https://prod-marathon:8443",), "reconciler", "pr0d-pa55")
    assert "pr0d-pa55" in settings.secrets
    controller = environments.environment_settings(settings, prod)
    assert (controller.repo_path, controller.marathon_password) == ("dirac-prod", "pr0d-pa55")
    assert controller.state_dir == settings.state_dir / "environments" / "prod"
    assert controller.public_url == "https://ops.example.org/r/environments/prod"
    # An environment with a Marathon of its own is not sent the shared one's credentials.
    with_token = config.load({"RECONCILER_MARATHON_TOKEN": "shared-t0ken"}, config_file=file)
    assert environments.environment_settings(
        with_token, with_token.environments[1]).client_settings().token is None


@pytest.mark.parametrize(("declared", "message"), [
    ('[{"name": "cert", "path": "a"}, {"name": "cert", "path": "b"}]', "declared twice"),
    ('[{"name": "cert", "path": "a"}, {"name": "prod", "path": "a"}]', "used twice"),
    ('[{"name": "prod", "path": "p", "promote_from": "cert"}]', "names no other"),
    ('[{"name": "prod", "path": "p", "auto_promote": ["x"]}]', "needs promote_from"),
    ('[{"name": "Prod!", "path": "p"}]', "lower-case"),
    ('[{"name": "prod", "path": "../p"}]', "inside the repo"),
    ('[{"name": "prod", "path": "p", "marathon_password": "x"}]', "Extra inputs"),
    ('[{"name": "prod", "path": "p", "soak": "soon"}]', "duration"),
    ("{name: prod}", "a list of environments"),
])
def test_a_bad_declaration_is_refused_naming_what(declared: str, message: str) -> None:
    with pytest.raises(config.BadConfiguration, match=message) as refused:
        config.load({"RECONCILER_ENVIRONMENTS": declared})
    assert str(refused.value).startswith("RECONCILER_ENVIRONMENTS")


def test_a_marathon_url_with_a_password_is_never_repeated_in_an_error() -> None:
    with pytest.raises(config.BadConfiguration) as refused:
        config.load({"RECONCILER_ENVIRONMENTS":
                     '[{"name": "p", "path": "p", "marathon_url": "ftp://u:hunter2@m"}]'})
    assert "hunter2" not in str(refused.value)


def test_one_shared_database_url_is_refused_for_several_environments(tmp_path: Path) -> None:
    settings = config.load({"RECONCILER_DATABASE_URL": "postgresql+psycopg://r:pw@db/r",
                            "RECONCILER_ENVIRONMENTS": '[{"name": "cert", "path": "c"}]',
                            "HOME": str(tmp_path)})
    with pytest.raises(config.BadConfiguration, match="needs its own"):
        environments.environment_settings(settings, settings.environments[0])
