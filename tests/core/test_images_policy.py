"""The ``update:`` policy of images.yaml: read into the catalog, and every mistake reported
with images.yaml's path and line like any other config-repo problem."""

from __future__ import annotations

import pytest

from reconciler.core import load as loading
from reconciler.core import model
from tests.core import repo

POLICY = """\
images:
  lhcbdirac:
    repository: registry.example.org/lhcb/lhcbdirac
    tag: v8r2p44
    update:
{update}
"""


def images_yaml(update: str) -> dict[str, str | None]:
    return {"images.yaml": POLICY.format(update=update)}


def problems_of(update: str) -> list[str]:
    with pytest.raises(model.InvalidDesiredState) as caught:
        loading.load_desired_state(repo.with_files(images_yaml(update)), revision="r1")
    return [str(p) for p in caught.value.problems]


def test_a_policy_is_read_with_its_defaults() -> None:
    desired = loading.load_desired_state(repo.with_files(images_yaml(
        "      registry: registry.example.org\n      order: lhcbdirac")), revision="r1")
    ref = desired.images["lhcbdirac"]
    assert ref.update == model.UpdatePolicy(
        registry="registry.example.org", repository="lhcb/lhcbdirac",
        order=model.TagOrder.LHCBDIRAC, pattern=None, prereleases=False, pin_digest=False,
        push=model.PushMode.DIRECT)
    assert ref.reference == "registry.example.org/lhcb/lhcbdirac:v8r2p44"


def test_every_option_is_read() -> None:
    desired = loading.load_desired_state(repo.with_files(images_yaml(
        "      registry: http://127.0.0.1:5000/\n      repository: lhcb/dirac\n"
        "      order: regex\n      pattern: 'v8r2p(?P<key>\\d+)'\n      prereleases: true\n"
        "      pinDigest: true\n      push: branch")), revision="r1")
    assert desired.images["lhcbdirac"].update == model.UpdatePolicy(
        registry="http://127.0.0.1:5000", repository="lhcb/dirac", order=model.TagOrder.REGEX,
        pattern="v8r2p(?P<key>\\d+)", prereleases=True, pin_digest=True,
        push=model.PushMode.BRANCH)


def test_a_pinned_digest_goes_into_the_reference() -> None:
    files = {"images.yaml": "images:\n  lhcbdirac:\n    repository: lhcbdirac\n"
                            f"    tag: v8r2p44\n    digest: sha256:{'ab' * 32}\n"}
    desired = loading.load_desired_state(repo.with_files(files), revision="r1")
    app = next(iter(desired.apps.values()))
    assert app.definition["container"]["docker"]["image"] == (
        f"lhcbdirac:v8r2p44@sha256:{'ab' * 32}")


@pytest.mark.parametrize(("update", "expected"), [
    ("      order: lhcbdirac", "images.yaml:5: /images/lhcbdirac/update: 'registry' is a "
                               "required property"),
    ("      registry: r.example.org\n      order: calver",
     "images.yaml:7: /images/lhcbdirac/update/order: 'calver' is not one of"),
    ("      registry: r.example.org\n      order: regex",
     "images.yaml:5: /images/lhcbdirac/update: 'pattern' is a required property"),
    ("      registry: r.example.org\n      order: regex\n      pattern: 'v8r2p(\\d+'",
     "images.yaml:8: /images/lhcbdirac/update/pattern: not a regular expression: "
     "missing ) at position 9"),
    ("      registry: r.example.org\n      order: regex\n      pattern: '" + "a" * 201 + "'",
     "images.yaml:8: /images/lhcbdirac/update/pattern: 'aaaa"),
    ("      registry: r.example.org\n      order: semver\n      push: merge-request",
     "images.yaml:8: /images/lhcbdirac/update/push: 'merge-request' is not one of"),
    ("      registry: r.example.org\n      order: semver\n      pin_digest: true",
     "images.yaml:8: /images/lhcbdirac/update/pin_digest: unknown field (did you mean "
     "'pinDigest'?)"),
    ("      registry: r.example.org\n      order: semver\n      prereleases: 'no'",
     "images.yaml:8: /images/lhcbdirac/update/prereleases: 'no' is not of type 'boolean'"),
])
def test_policy_mistakes_are_located(update: str, expected: str) -> None:
    problems = problems_of(update)
    assert any(p.startswith(expected) for p in problems), problems


def test_a_broken_policy_is_reported_once_not_on_every_app() -> None:
    problems = problems_of("      registry: r.example.org\n      order: regex\n"
                           "      pattern: '('")
    assert len(problems) == 1
