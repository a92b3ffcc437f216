"""What lockers publish, as (topic, payload) pairs for ``helmet_cloud.ingest.Ingestor``."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from fastapi.testclient import TestClient

from helmet_protocol.messages import Event, Status, new_event_id


class Recorder:
    """Stands in for the MQTT publish of ingest's acks and resend commands."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any], bool]] = []

    def __call__(self, topic: str, payload: bytes, retain: bool) -> None:
        self.sent.append((topic, json.loads(payload), retain))


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
