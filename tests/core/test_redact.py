"""Secret masking: what counts as secret, and that structure survives."""

from __future__ import annotations

import pytest

from reconciler.core import redact


@pytest.mark.parametrize("pointer", [
    "/secrets/db", "/secrets/db/source", "/env/DB_PASSWORD", "/env/api_token",
    "/env/AWS_SECRET_ACCESS_KEY", "/env/SSH_KEY", "/container/docker/credential/secret",
])
def test_secret_pointers(pointer: str) -> None:
    assert redact.is_secret_pointer(pointer)


@pytest.mark.parametrize("pointer", ["/env/DIRAC_SETUP", "/labels/team", "/secrets", "/env"])
def test_plain_pointers(pointer: str) -> None:
    assert not redact.is_secret_pointer(pointer)


def test_mask_keeps_structure_and_never_mutates() -> None:
    app = {"id": "/a", "env": {"DB_PASSWORD": "hunter2", "REF": {"secret": "db"}, "MODE": "x"},
           "secrets": {"db": {"source": "/vault/db"}}}
    masked = redact.mask(app)
    assert masked == {"id": "/a", "env": {"DB_PASSWORD": "***", "REF": "***", "MODE": "x"},
                      "secrets": {"db": {"source": "***"}}}
    assert app["env"]["DB_PASSWORD"] == "hunter2"


def test_mask_returns_the_same_object_when_nothing_is_secret() -> None:
    app = {"id": "/a", "env": {"MODE": "x"}, "labels": {"team": "t"}}
    assert redact.mask(app) is app


def test_mask_patch_masks_values_by_path() -> None:
    ops = redact.mask_patch([
        {"op": "replace", "path": "/env/FTS_TOKEN", "value": "abc"},
        {"op": "add", "path": "/env", "value": {"X_KEY": "k", "Y": "y"}},
        {"op": "remove", "path": "/secrets/db"},
    ])
    assert ops == ({"op": "replace", "path": "/env/FTS_TOKEN", "value": "***"},
                   {"op": "add", "path": "/env", "value": {"X_KEY": "***", "Y": "y"}},
                   {"op": "remove", "path": "/secrets/db"})


def test_mask_text_replaces_known_secrets() -> None:
    assert redact.mask_text("token=abcdef in url", ["abcdef"]) == "token=*** in url"


@pytest.mark.parametrize("name", [
    "MYSQL_PWD", "PGPASSWORD", "db_passwd", "REDIS_PASS", "SMTP_PASSPHRASE", "GITLAB_TOKEN",
    "AWS_SECRET_ACCESS_KEY", "X_API_KEY", "GOOGLE_APPLICATION_CREDENTIALS", "BASIC_AUTH",
    "PRIVATE_PEM", "SENTRY_DSN", "Session_Cookie", "HASH_SALT",
])
def test_common_spellings_of_secret_names_are_masked(name: str) -> None:
    assert redact.is_secret_name(name)
    assert redact.mask({"env": {name: "hunter2"}}) == {"env": {name: "***"}}


def test_extra_patterns_from_configuration_extend_the_list_without_replacing_it() -> None:
    app = {"env": {"DIRAC_X509_PROXY": "-----BEGIN", "MYSQL_PWD": "pw", "MODE": "prod"}}
    assert redact.mask(app) == {"env": {"DIRAC_X509_PROXY": "-----BEGIN", "MYSQL_PWD": "***",
                                        "MODE": "prod"}}
    assert redact.mask(app, extra=["x509", "^MODE$"]) == {
        "env": {"DIRAC_X509_PROXY": "***", "MYSQL_PWD": "***", "MODE": "***"}}
    patch = redact.mask_patch([{"op": "add", "path": "/env/DIRAC_X509_PROXY", "value": "p"}],
                              extra=["X509"])
    assert patch == ({"op": "add", "path": "/env/DIRAC_X509_PROXY", "value": "***"},)
