"""Roles, groups to roles, the names records give people, and the machine tokens file."""

from __future__ import annotations

import pytest

from reconciler.core import access
from reconciler.core.access import Role

DIGEST = "sha256:" + access.token_digest("s3cret-token")


def test_the_highest_role_of_any_group_wins_and_star_means_anyone_signed_in() -> None:
    mapping = access.parse_role_mapping("lhcb-shifters=viewer, lhcb-oncall=Operator ,"
                                        " ops=admin")
    assert access.role_for_groups(["lhcb-shifters", "lhcb-oncall"], mapping) is Role.OPERATOR
    assert access.role_for_groups(["ops"], mapping) is Role.ADMIN
    assert access.role_for_groups(["elsewhere"], mapping) is None
    assert access.role_for_groups([], {**mapping, "*": Role.VIEWER}) is Role.VIEWER
    assert Role.ADMIN > Role.OPERATOR > Role.VIEWER


@pytest.mark.parametrize(("text", "message"), [
    ("lhcb-oncall", "expected group=role"),
    ("=viewer", "expected group=role"),
    ("lhcb=root", "unknown role 'root'"),
])
def test_a_bad_role_mapping_says_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        access.parse_role_mapping(text)


def test_groups_come_from_a_list_a_single_name_or_a_nested_claim() -> None:
    assert access.groups_of({"groups": ["a", 3, "b"]}, "groups") == ["a", "b"]
    assert access.groups_of({"groups": "a"}, "groups") == ["a"]
    assert access.groups_of({"realm_access": {"roles": ["ops"]}}, "realm_access.roles") \
        == ["ops"]
    assert access.groups_of({"groups": {"a": 1}}, "groups") == []
    assert access.groups_of({}, "realm_access.roles") == []


def test_a_person_is_named_by_email_then_username_then_subject_without_odd_characters() -> None:
    assert access.person_name({"sub": "1", "email": "oscar@example.org",
                               "preferred_username": "oscar"}) == "oscar@example.org"
    assert access.person_name({"sub": "1", "preferred_username": "oscar"}) == "oscar"
    assert access.person_name({"sub": "f81d4fae"}) == "f81d4fae"
    assert access.person_name({"email": "<script>x</script>@evil"}) == "scriptxscript@evil"
    assert len(access.person_name({"sub": "x" * 10_000})) == 120


def test_identity_may_act_only_at_or_below_its_role() -> None:
    viewer = access.Identity(name="vera", role=Role.VIEWER, via="jwt")
    assert viewer.may(Role.VIEWER) and not viewer.may(Role.OPERATOR)
    assert not access.Identity(name="nina", role=None, via="session").may(Role.VIEWER)


def test_the_tokens_file_maps_a_digest_to_a_named_role() -> None:
    tokens = access.parse_tokens(f"# automation\n\nci  operator  {DIGEST}  # GitLab\n"
                                 f"grafana viewer sha256:{'0' * 64}\n")
    assert [(t.name, t.role) for t in tokens] == [("ci", Role.OPERATOR),
                                                  ("grafana", Role.VIEWER)]
    found = access.match_token(tokens, "s3cret-token")
    assert found is not None and found.who == "token:ci"
    assert access.match_token(tokens, "s3cret-tokeN") is None


@pytest.mark.parametrize(("text", "message"), [
    ("ci operator", "line 1: expected `name role sha256:<hex>`"),
    (f"# c\nci root {DIGEST}", "line 2: unknown role"),
    ("ci operator s3cret-token", "line 1: expected sha256:<64 hex digits>, not the token"),
    (f"ci operator {DIGEST}\nci viewer {DIGEST}", "line 2: token 'ci' named twice"),
    (f"../ci operator {DIGEST}", "line 1: bad token name"),
])
def test_a_bad_tokens_file_names_the_line_and_never_echoes_a_token(text: str,
                                                                   message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")) as error:
        access.parse_tokens(text)
    assert "s3cret-token" not in str(error.value)
