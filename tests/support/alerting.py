"""A small town fed straight into ingest, with the alerter on a clock the test moves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from helmet_cloud.alerter import Alerter, Notify
from helmet_cloud.ingest import Ingestor
from helmet_cloud.lockers import ensure_slots
from helmet_cloud.models import Alert, Locker, Station
from helmet_cloud.settings import CloudSettings
from helmet_protocol.messages import Event, Status, new_event_id

T0 = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)


def event(locker: str, seq: int, minutes: float, kind: str, **fields: Any) -> tuple[str, bytes]:
    """One event on its topic, ``minutes`` after T0 by the locker's clock."""
    ev = Event(
        event_id=fields.pop("event_id", new_event_id()),
        locker_id=locker,
        seq=seq,
        ts=T0 + timedelta(minutes=minutes),
        kind=kind,
        **fields,
    )
    return f"helmet/v1/{locker}/events", ev.to_json()


def status(locker: str, minutes: float, *, online: bool, boot_id: str = "b-1") -> tuple[str, bytes]:
    st = Status(locker_id=locker, online=online, boot_id=boot_id, fw="0.1.0", ts=T0 + timedelta(minutes=minutes))
    return f"helmet/v1/{locker}/status", st.to_json()


class Town:
    """Stations ST-A and ST-B with one four-slot locker each, ingest, and an alerter on a movable clock."""

    def __init__(self, engine: Engine, settings: CloudSettings, notify: Notify | None = None) -> None:
        self.engine = engine
        self.now = T0
        self.alerter = Alerter(settings, engine, notify=notify, clock=lambda: self.now)
        self.ingestor = Ingestor(engine, lambda *_: None, on_commit=self.alerter.after_ingest)
        self.seqs: dict[str, int] = {}
        with Session(engine) as s:
            for sid in ("ST-A", "ST-B"):
                s.add(Station(id=sid, name=f"Station {sid[3:]}", lat=47.0, lon=8.0))
            s.flush()
            for lid, sid in (("LK-000A", "ST-A"), ("LK-000B", "ST-B")):
                locker = Locker(id=lid, station_id=sid, slot_count=4)
                s.add(locker)
                s.flush()
                ensure_slots(s, locker)
            s.commit()

    def feed(self, *items: tuple[str, bytes]) -> None:
        """One ingest batch."""
        self.ingestor.handle(list(items))

    def next(self, locker: str, minutes: float, kind: str, **fields: Any) -> tuple[str, bytes]:
        """The locker's next event in seq order."""
        self.seqs[locker] = self.seqs.get(locker, 0) + 1
        return event(locker, self.seqs[locker], minutes, kind, **fields)

    def sweep(self, after: timedelta) -> None:
        self.now = T0 + after
        self.alerter.sweep()

    def alerts(self, kind: str | None = None) -> list[Alert]:
        with Session(self.engine) as s:
            q = select(Alert).order_by(col(Alert.id))
            if kind is not None:
                q = q.where(Alert.kind == kind)
            return list(s.exec(q).all())
