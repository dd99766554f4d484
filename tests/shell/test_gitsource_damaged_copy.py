"""A local copy left without some objects (a fetch cut short by kill -9 of the controller) is
cleared and fetched anew, instead of failing every poll forever (seen in the kill -9 chaos
test: 'SHA ... could not be resolved ... missing' at each poll after the restart)."""

from __future__ import annotations

from pathlib import Path

import git
import pytest

from reconciler.shell import gitsource
from testbed.gitrepos import Upstream


def test_a_copy_missing_a_blob_is_cleared_then_read_again(tmp_path: Path) -> None:
    upstream = Upstream.create(tmp_path / "git", {"apps/a.yaml": "instances: 1\n"})
    cache = tmp_path / "cache"
    source = gitsource.open_source(upstream.url, ref="main", path=".", cache_dir=cache)
    revision = source.check()
    assert source.read(revision).revision == revision

    # Remove the blob of apps/a.yaml from the copy, as an interrupted fetch can leave it.
    blob = git.Repo(upstream.bare).commit(revision).tree / "apps" / "a.yaml"
    loose = cache / "objects" / blob.hexsha[:2] / blob.hexsha[2:]
    if not loose.exists():  # packed: unpack nothing, drop every pack instead
        for pack in (cache / "objects" / "pack").glob("*"):
            pack.unlink()
    else:
        loose.unlink()
    damaged = gitsource.open_source(upstream.url, ref="main", path=".", cache_dir=cache)
    assert damaged.check() == revision
    with pytest.raises(gitsource.SourceUnavailable, match="fetched again at the next poll"):
        damaged.read(revision)
    assert damaged.read(revision).revision == revision  # the next poll: fetched anew
