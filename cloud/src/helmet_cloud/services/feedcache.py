"""Serialised public feed documents, kept until ingest changes what they show or their ttl runs out.

The app subscribes :meth:`FeedCache.changed` to its commit hook
(:mod:`helmet_cloud.services.committed`): a commit of ingest in the same
process that changed slots or a locker's status, or a station or locker
registered, makes every document stale. An API replica in another process
never hears an ingest worker elsewhere, so there a document is rebuilt when
its ttl runs out, which is what the feed's ``ttl`` promises consumers anyway.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from helmet_cloud.services.committed import Committed


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
        self._generation = 0

    def invalidate(self) -> None:
        """Mark every cached document stale."""
        with self._lock:
            self._generation += 1

    def changed(self, change: Committed) -> None:
        """A commit hook subscriber: stale when the commit changed what the feed shows."""
        if change.feed_changed:
            self.invalidate()

    def _current(self) -> int:
        with self._lock:
            return self._generation

    def peek(self, key: str) -> bytes | None:
        """The cached bytes for ``key`` if they are still good; never builds (safe on the event loop)."""
        gen, now = self._current(), self._clock()
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None and entry.generation == gen and now < entry.expires:
            return entry.body
        return None

    def get(self, key: str, ttl: float, build: Callable[[], bytes]) -> bytes:
        """The cached bytes for ``key``, or ``build()``'s, stored for at most ``ttl`` seconds."""
        # Read the generation before building: a bump during the build leaves the new entry stale.
        gen, now = self._current(), self._clock()
        cached = self.peek(key)
        if cached is not None:
            return cached
        body = build()
        with self._lock:
            self._entries[key] = _Entry(gen, now + ttl, body)
        return body
