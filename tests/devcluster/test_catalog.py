"""The image catalog: which stand-in command an image name and tag select, and bad files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.devcluster import catalog


def test_the_shipped_catalog_serves_lhcbdirac_from_any_registry() -> None:
    shipped = catalog.load()
    for image in ("lhcbdirac:v8r2p44", "some.registry/lhcb/lhcbdirac:v8r2p44",
                  "registry.example:5000/lhcbdirac:v8r2p46"):
        command = shipped.command_for(image)
        assert command == f"{sys.executable} -m reconciler.devcluster.standin", image


def test_a_broken_tag_selects_the_never_ready_stand_in() -> None:
    command = catalog.load().command_for("lhcbdirac:v8r2p46-broken")
    assert command is not None and command.endswith("--never-ready")


def test_a_reference_pinned_by_digest_selects_by_its_tag() -> None:
    # Marathon passes container.docker.image to Docker as is; it only checks that it is not
    # empty (marathon: api/v2/validation/AppValidation.scala, docker.image is notEmpty).
    digest = "sha256:" + "ab" * 32
    shipped = catalog.load()
    assert shipped.command_for(
        f"registry.example.org:5000/lhcb/lhcbdirac:v8r2p46@{digest}"
    ) == f"{sys.executable} -m reconciler.devcluster.standin"
    broken = shipped.command_for(f"lhcbdirac:v8r2p46-broken@{digest}")
    assert broken is not None and broken.endswith("--never-ready")
    with pytest.raises(catalog.UnknownImage):
        shipped.command_for(f"notlhcbdirac@{digest}")


def test_noop_images_run_no_process() -> None:
    assert catalog.load().command_for("noop:1") is None


def test_an_image_without_entry_fails_like_an_unpullable_image() -> None:
    with pytest.raises(catalog.UnknownImage, match="Failed to pull image 'nginx:1.25'"):
        catalog.load().command_for("nginx:1.25")
    with pytest.raises(catalog.UnknownImage):
        catalog.load().command_for("notlhcbdirac:v1")


def test_entries_are_tried_in_order_and_tags_are_globs(tmp_path: Path) -> None:
    path = tmp_path / "images.yaml"
    path.write_text("images:\n"
                    "  - {image: web, tags: 'v2*', command: new}\n"
                    "  - {image: web, command: old}\n")
    own = catalog.load(path)
    assert own.command_for("web:v2.1") == "new"
    assert own.command_for("web:v1") == "old"
    assert own.command_for("web") == "old"  # no tag means latest


@pytest.mark.parametrize(("text", "message"), [
    ("images: [\n", "line 2: not valid YAML"),
    ("apps: []\n", "top-level 'images:' list"),
    ("images:\n  - {tags: '*'}\n", "images[0] needs 'image"),
    ("images:\n  - {image: x, command: [a]}\n", "images[0] (x): 'command' must be"),
])
def test_a_bad_catalog_is_refused_with_its_path(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "images.yaml"
    path.write_text(text)
    with pytest.raises(catalog.CatalogError, match=r"images\.yaml") as error:
        catalog.load(path)
    assert message in str(error.value)


def test_the_command_refuses_a_bad_catalog_before_serving(tmp_path: Path) -> None:
    path = tmp_path / "images.yaml"
    path.write_text("images: {}\n")
    result = subprocess.run(
        [sys.executable, "-m", "reconciler", "devcluster", "--port", "0", "--images", str(path)],
        capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode != 0
    assert f"{path}: expected a top-level 'images:' list" in result.stderr
