"""A cheap digest of what the live pages show, read from the database at most once per ``POLL_SECONDS``.

Every ingest batch stamps the lockers it heard from (``Locker.last_heard_at``);
status messages flip ``Locker.online``; staff actions and the alert sweep
change the alerts; commands are recorded; rebalancing moves are ticked done. The watermark reads those few small
aggregates in one query, so it moves whichever process made the change.
"""

from __future__ import annotations

import hashlib
import threading
import time

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import col

from helmet_cloud.models import Alert, Locker, LockerCommand, RebalanceMove, Station

POLL_SECONDS = 0.5


def read_watermark(engine: Engine) -> str:
    """A short digest of everything the live pages show that can change without a page's own request."""
    q = select(
        select(func.max(Locker.last_heard_at)).scalar_subquery(),
        select(func.count()).select_from(Locker).where(col(Locker.online)).scalar_subquery(),
        select(func.count()).select_from(Locker).scalar_subquery(),
        select(func.count()).select_from(Station).scalar_subquery(),
        select(func.count()).select_from(Alert).scalar_subquery(),
        select(func.count()).select_from(Alert).where(col(Alert.acknowledged_at).is_not(None)).scalar_subquery(),
        select(func.count()).select_from(Alert).where(col(Alert.resolved_at).is_not(None)).scalar_subquery(),
        select(func.count()).select_from(LockerCommand).scalar_subquery(),
        select(func.max(RebalanceMove.done_at)).scalar_subquery(),  # a move ticked done or corrected
    )
    with engine.connect() as conn:
        row = conn.execute(q).one()
    return hashlib.sha256(repr(tuple(row)).encode()).hexdigest()[:16]


class Watermark:
    """The current watermark, read from the database at most once per ``POLL_SECONDS`` for all streams."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._lock = threading.Lock()
        self._value = ""
        self._read_at = 0.0

    def current(self) -> str:
        with self._lock:
            if time.monotonic() - self._read_at >= POLL_SECONDS * 0.9:
                self._value = read_watermark(self.engine)
                self._read_at = time.monotonic()
            return self._value
