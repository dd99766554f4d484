"""Fixtures of the browser tests: the running stack (one per module) and a fresh Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver

from tests.browser import chrome
from tests.browser.stack import Stack


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    """Dev cluster, config repo in Git and ``reconciler run`` (answering /healthz)."""
    running = Stack.start(tmp_path / "stack")
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    why = chrome.missing()
    if why is not None:
        pytest.fail(why)
    with chrome.chromium(tmp_path / "chromium-profile") as driver:
        yield driver
