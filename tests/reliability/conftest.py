"""Reliability and security scenarios (docs/reliability.md).

Scenarios marked ``long`` are the full-size versions of the CI ones; they run
only with ``HELMET_LONG=1`` (``HELMET_LONG=1 .venv/bin/pytest tests/reliability -m long``).
"""

from __future__ import annotations

import os

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "long: full-size reliability scenario; runs only with HELMET_LONG=1")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("HELMET_LONG") == "1":
        return
    skip = pytest.mark.skip(reason="full-size scenario: set HELMET_LONG=1 (see docs/reliability.md)")
    for item in items:
        if "long" in item.keywords:
            item.add_marker(skip)
