"""After a commit: what changed, told to whatever in this process keeps something derived from it.

Ingest announces each committed batch (its newly stored events, the lockers
heard from, whether what the public feed shows changed, whether a pass was
used); the services do after registering or changing a station or a locker,
and after "open now" or withdrawing a pass. The feed cache drops its
documents, the alerter checks what the batch touched, the config publisher
tells the lockers which passes to refuse. A subscriber that fails
is logged and never holds up the others or the caller: the commit has
happened.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from helmet_cloud.ingest.records import StoredEvent

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Committed:
    events: Sequence[StoredEvent] = ()  # stored by this commit (not duplicates)
    lockers_heard: frozenset[str] = field(default_factory=frozenset)
    feed_changed: bool = False  # slots, a locker's status, a station or a locker: what the public feed shows
    passes_changed: bool = False  # a pass was used, claimed, released or withdrawn: what lockers must refuse


Subscriber = Callable[[Committed], None]


class CommitHook:
    """Subscribers, called in the order they subscribed, after each announced commit."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()

    def subscribe(self, fn: Subscriber) -> None:
        with self._lock:
            self._subscribers.append(fn)

    def __call__(self, change: Committed) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for fn in subscribers:
            try:
                fn(change)
            except Exception:  # the commit stands; one subscriber's failure is logged, the rest still run
                log.exception("after-commit subscriber %s failed", getattr(fn, "__qualname__", fn))
