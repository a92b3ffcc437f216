"""A small town fed straight into ingest, with the alerter on a clock the test moves."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from helmet_cloud.ingest.ingestor import Ingestor
from helmet_cloud.models import Alert
from helmet_cloud.services.alerter import Alerter, Notify
from helmet_cloud.settings import CloudSettings
from support.cloud_events import T0, at, event, inbound, insert_town


class Town:
    """Stations ST-A and ST-B with one four-slot locker each, ingest, and an alerter on a movable clock."""

    def __init__(self, engine: Engine, settings: CloudSettings, notify: Notify | None = None) -> None:
        self.engine = engine
        self.now = T0
        self.alerter = Alerter(settings, engine, notify=notify, clock=lambda: self.now)
        self.ingestor = Ingestor(engine, lambda *_: None, after_commit=self.alerter.after_commit)
        self.seqs: dict[str, int] = {}
        insert_town(engine, {"LK-000A": ("ST-A", 4), "LK-000B": ("ST-B", 4)}, slots=True)

    def feed(self, *items: tuple[str, bytes]) -> None:
        """One ingest batch."""
        self.ingestor.handle(inbound(list(items)))

    def next(self, locker: str, minutes: float, kind: str, **fields: Any) -> tuple[str, bytes]:
        """The locker's next event in seq order, ``minutes`` after T0 by its clock."""
        self.seqs[locker] = self.seqs.get(locker, 0) + 1
        return event(locker, self.seqs[locker], at(minutes), kind, **fields)

    def sweep(self, after: timedelta) -> None:
        self.now = T0 + after
        self.alerter.sweep()

    def alerts(self, kind: str | None = None) -> list[Alert]:
        with Session(self.engine) as s:
            q = select(Alert).order_by(col(Alert.id))
            if kind is not None:
                q = q.where(Alert.kind == kind)
            return list(s.exec(q).all())
