"""The bump's text edit of images.yaml, against golden files: only the tag (and digest) of
one image change; comments, order, quoting and layout stay byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.core import model, retag

GOLDEN = Path(__file__).parent / "golden" / "retag"
DIGEST = "sha256:" + "ab" * 32


def source(name: str) -> model.SourceFile:
    path = GOLDEN / name
    return model.SourceFile(path=f"images{path.suffix}", text=path.read_text())


@pytest.mark.parametrize(("given", "image", "tag", "digest", "expected"), [
    ("block-input.yaml", "lhcbdirac", "v8r2p46", None, "block-lhcbdirac-v8r2p46.yaml"),
    ("block-input.yaml", "nginx", "1.27", None, "block-nginx-1.27.yaml"),
    ("block-input.yaml", "lhcbdirac", "v8r2p46", DIGEST, "block-lhcbdirac-v8r2p46-digest.yaml"),
    ("pinned-input.yaml", "lhcbdirac", "v8r2p46", DIGEST,
     "pinned-lhcbdirac-v8r2p46-digest.yaml"),
    ("json-input.json", "lhcbdirac", "v8r2p46", None, "json-lhcbdirac-v8r2p46.json"),
])
def test_only_the_tag_line_changes(given: str, image: str, tag: str, digest: str | None,
                                   expected: str) -> None:
    edited = retag.set_tag(source(given), image=image, tag=tag, digest=digest)
    assert edited == (GOLDEN / expected).read_text()


def test_a_file_without_a_final_newline_keeps_it_missing() -> None:
    text = "images:\n  lhcbdirac:\n    repository: lhcbdirac\n    tag: v8r2p44"
    edited = retag.set_tag(model.SourceFile(path="images.yaml", text=text),
                           image="lhcbdirac", tag="v8r2p46", digest=DIGEST)
    assert edited == text.replace("v8r2p44", "v8r2p46") + f"\n    digest: {DIGEST}"


def test_an_unknown_image_is_refused() -> None:
    with pytest.raises(retag.EditRefused, match="no image 'dirac'"):
        retag.set_tag(source("block-input.yaml"), image="dirac", tag="v1")


def test_a_digest_is_not_added_to_a_flow_style_entry() -> None:
    with pytest.raises(retag.EditRefused, match="by hand once"):
        retag.set_tag(source("block-input.yaml"), image="nginx", tag="1.27", digest=DIGEST)


def test_a_tag_value_on_its_own_line_is_refused_rather_than_guessed() -> None:
    text = "images:\n  lhcbdirac:\n    repository: lhcbdirac\n    tag:\n      v8r2p44\n"
    with pytest.raises(retag.EditRefused, match="cannot find one tag value"):
        retag.set_tag(model.SourceFile(path="images.yaml", text=text),
                      image="lhcbdirac", tag="v8r2p46")
