"""Serialised public feed documents, kept until ingest changes what they show or their ttl runs out.

Ingest calls :func:`bump` after a commit that changed slots or a locker's
status; the API does after registering a station or a locker. The counter
lives in this process only: an API replica in another process never sees the
bumps of an ingest worker elsewhere, so there a document is rebuilt when its
ttl runs out, which is what the feed's ``ttl`` promises consumers anyway.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

_lock = threading.Lock()
_generation = 0


def bump() -> None:
    """Mark every cached document stale."""
    global _generation
    with _lock:
        _generation += 1


def generation() -> int:
    with _lock:
        return _generation


@dataclass(frozen=True, slots=True)
class _Entry:
    generation: int
    expires: float
    body: bytes


class FeedCache:
    """One cache per app: tests build several apps on different databases in one process."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def peek(self, key: str) -> bytes | None:
        """The cached bytes for ``key`` if they are still good; never builds (safe on the event loop)."""
        gen, now = generation(), self._clock()
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None and entry.generation == gen and now < entry.expires:
            return entry.body
        return None

    def get(self, key: str, ttl: float, build: Callable[[], bytes]) -> bytes:
        """The cached bytes for ``key``, or ``build()``'s, stored for at most ``ttl`` seconds."""
        # Read the generation before building: a bump during the build leaves the new entry stale.
        gen, now = generation(), self._clock()
        cached = self.peek(key)
        if cached is not None:
            return cached
        body = build()
        with self._lock:
            self._entries[key] = _Entry(gen, now + ttl, body)
        return body
