"""What lockers publish, as (topic, payload) pairs for the cloud's ``Ingestor``, and the town they are in."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from helmet_cloud.ingest.records import Inbound
from helmet_cloud.models import Locker, Station
from helmet_cloud.services.lockers import ensure_slots
from helmet_protocol.messages import Event, Status, new_event_id

T0 = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)  # the morning the tests' lockers record their events


def at(minutes: float) -> datetime:
    """``minutes`` after T0 by the locker's clock."""
    return T0 + timedelta(minutes=minutes)


class Recorder:
    """Stands in for the MQTT publish of ingest's acks and resend commands."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any], bool]] = []

    def __call__(self, topic: str, payload: bytes, retain: bool) -> None:
        self.sent.append((topic, json.loads(payload), retain))

    def acks(self, locker: str) -> list[int]:
        """The seqs acknowledged to ``locker``, in order."""
        return [p["seq"] for t, p, _ in self.sent if t == f"helmet/v1/{locker}/ack"]


def inbound(messages: Iterable[tuple[str, bytes] | tuple[str, bytes, datetime]]) -> list[Inbound]:
    """Messages as ingest receives them: (topic, payload) as a retained copy, (topic, payload, when) live."""
    return [Inbound(*m) for m in messages]


def event(locker: str, seq: int, ts: datetime, kind: str, **fields: Any) -> tuple[str, bytes]:
    ev = Event(event_id=fields.pop("event_id", new_event_id()), locker_id=locker, seq=seq, ts=ts, kind=kind, **fields)
    return f"helmet/v1/{locker}/events", ev.to_json()


def status(locker: str, ts: datetime, *, online: bool, boot_id: str = "b-1") -> tuple[str, bytes]:
    st = Status(locker_id=locker, online=online, boot_id=boot_id, fw="0.1.0", ts=ts)
    return f"helmet/v1/{locker}/status", st.to_json()


def register_town(api: TestClient, staff: dict[str, str], lockers: dict[str, tuple[str, int]]) -> None:
    """Register stations and lockers through the API, as staff and technicians do.

    ``lockers`` maps a locker id to (station id, slot count); stations are
    named after their id, ``ST-A`` gets an address.
    """
    for i, station_id in enumerate(sorted({st for st, _ in lockers.values()})):
        body = {"id": station_id, "name": f"Station {station_id[3:]}", "lat": 47.37 + i / 100, "lon": 8.54}
        if station_id == "ST-A":
            body["address"] = "Town hall square 1"
        resp = api.post("/api/stations", headers=staff, json=body)
        assert resp.status_code == 201, resp.text
    for locker_id, (station_id, slots) in lockers.items():
        body = {"id": locker_id, "station_id": station_id, "slot_count": slots}
        resp = api.post("/api/lockers", headers=staff, json=body)
        assert resp.status_code == 201, resp.text


def insert_town(engine: Engine, lockers: dict[str, tuple[str, int]], *, slots: bool = False) -> None:
    """Write stations and lockers straight into the database, for tests that run ingest without the API.

    ``lockers`` is as for ``register_town``. With ``slots`` each locker gets its
    empty slot rows, as registering through the API gives it; without, a slot
    row appears only once ingest hears of that slot.
    """
    with Session(engine) as s:
        for station_id in sorted({st for st, _ in lockers.values()}):
            s.add(Station(id=station_id, name=f"Station {station_id[3:]}", lat=47.0, lon=8.0))
        s.flush()
        for locker_id, (station_id, slot_count) in lockers.items():
            locker = Locker(id=locker_id, station_id=station_id, slot_count=slot_count)
            s.add(locker)
            if slots:
                s.flush()
                ensure_slots(s, locker)
        s.commit()
