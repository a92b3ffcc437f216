"""Waiting for something that happens asynchronously (MQTT, other processes)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(check: Callable[[], T], timeout: float = 15.0, interval: float = 0.05) -> T:
    """Poll ``check()`` until it returns something truthy; fail with its last value."""
    deadline = time.monotonic() + timeout
    last = check()
    while not last and time.monotonic() < deadline:
        time.sleep(interval)
        last = check()
    if not last:
        raise AssertionError(f"condition not met within {timeout} s; last value: {last!r}")
    return last
