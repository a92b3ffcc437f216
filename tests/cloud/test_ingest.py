"""Ingest on a real database: idempotent, order-insensitive, and nothing bad gets in."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from helmet_cloud.ingest import Ingestor
from helmet_cloud.models import DeadLetter, Helmet, Loan, Locker, RawEvent, Slot, Station
from helmet_protocol.messages import Event, State, new_event_id

T0 = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any], bool]] = []

    def __call__(self, topic: str, payload: bytes, retain: bool) -> None:
        self.sent.append((topic, json.loads(payload), retain))

    def acks(self, locker: str) -> list[int]:
        return [p["seq"] for t, p, _ in self.sent if t == f"helmet/v1/{locker}/ack"]


def register_two_lockers(engine: Engine) -> Engine:
    with Session(engine) as s:
        s.add(Station(id="ST-A", name="A", lat=47.0, lon=8.0))
        s.add(Station(id="ST-B", name="B", lat=47.1, lon=8.1))
        s.flush()
        s.add(Locker(id="LK-000A", station_id="ST-A", slot_count=4))
        s.add(Locker(id="LK-000B", station_id="ST-B", slot_count=4))
        s.commit()
    return engine


@pytest.fixture
def town(engine: Engine) -> Engine:
    return register_two_lockers(engine)


def ev(locker: str, seq: int, minutes: float, kind: str, **fields: Any) -> tuple[str, bytes]:
    event = Event(
        event_id=fields.pop("event_id", new_event_id()),
        locker_id=locker,
        seq=seq,
        ts=T0 + timedelta(minutes=minutes),
        kind=kind,
        **fields,
    )
    return f"helmet/v1/{locker}/events", event.to_json()


def test_duplicates_change_nothing_and_the_ack_follows_contiguous_seqs(town: Engine) -> None:
    out = Recorder()
    ingest = Ingestor(town, out)
    first = ev("LK-000A", 1, 0, "helmet.stocked", slot=1, helmet_id="H-1")
    second = ev("LK-000A", 2, 1, "helmet.borrowed", slot=1, helmet_id="H-1", resident_id="R-1", pass_id="p1")
    ingest.handle([first, second, first])
    ingest.handle([second])
    # Same (locker, seq) under a new event id: a locker bug, must not be applied twice.
    ingest.handle([ev("LK-000A", 2, 1, "helmet.borrowed", slot=1, helmet_id="H-1", resident_id="R-2")])
    with Session(town) as s:
        assert len(s.exec(select(RawEvent)).all()) == 2
        loans = s.exec(select(Loan)).all()
        assert [(ln.helmet_id, ln.resident_id, ln.status) for ln in loans] == [("H-1", "R-1", "open")]
    assert out.acks("LK-000A") == [2, 2, 2]


def test_a_gap_holds_the_ack_and_asks_the_locker_to_resend(town: Engine) -> None:
    out = Recorder()
    ingest = Ingestor(town, out)
    ingest.handle(
        [
            ev("LK-000A", 1, 0, "helmet.stocked", slot=1, helmet_id="H-1"),
            ev("LK-000A", 3, 2, "helmet.stocked", slot=3, helmet_id="H-3"),
        ]
    )
    assert out.acks("LK-000A") == [1]
    resend = [p for t, p, _ in out.sent if t == "helmet/v1/LK-000A/cmd"]
    assert resend and resend[0]["op"] == "resend" and resend[0]["from_seq"] == 2
    ingest.handle([ev("LK-000A", 2, 1, "helmet.stocked", slot=2, helmet_id="H-2")])
    assert out.acks("LK-000A")[-1] == 3


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        ("helmet/v1/LK-000A/events", b"{not json", "not JSON"),
        ("helmet/v1/LK-000A/events", b'{"v": 2}', "unsupported protocol version"),
        ("helmet/v1/LK-000A/events", b"x" * 20000, "limit is 16384"),
        ("helmet/v1/LK-9999/events", b"{}", "not registered"),
        ("helmet/v1/LK-000A/cmd", b"{}", "do not publish on cmd"),
        ("helmet/v1/LK-000A/events", b'{"v": 1, "event_id": "e1", "locker_id": "LK-000A", "seq": "x"}', "seq"),
    ],
)
def test_bad_payloads_are_dead_lettered_and_good_ones_still_stored(
    town: Engine, topic: str, payload: bytes, reason: str
) -> None:
    ingest = Ingestor(town, Recorder())
    good = ev("LK-000A", 1, 0, "helmet.stocked", slot=1, helmet_id="H-1")
    ingest.handle([(topic, payload), good])
    with Session(town) as s:
        dead = s.exec(select(DeadLetter)).all()
        assert len(dead) == 1 and reason in dead[0].reason
        assert len(s.exec(select(RawEvent)).all()) == 1


def test_a_payload_naming_another_locker_is_dead_lettered(town: Engine) -> None:
    _topic, payload = ev("LK-000B", 1, 0, "helmet.stocked", slot=1, helmet_id="H-1")
    Ingestor(town, Recorder()).handle([("helmet/v1/LK-000A/events", payload)])
    with Session(town) as s:
        assert "LK-000B" in s.exec(select(DeadLetter)).one().reason
        assert s.exec(select(RawEvent)).all() == []


def test_unknown_kinds_are_kept_and_flagged(town: Engine) -> None:
    Ingestor(town, Recorder()).handle([ev("LK-000A", 1, 0, "helmet.teleported", slot=1)])
    with Session(town) as s:
        row = s.exec(select(RawEvent)).one()
        assert row.kind == "helmet.teleported" and row.known is False


def _end_state(engine: Engine) -> tuple[Any, ...]:
    with Session(engine) as s:
        helmets = sorted((h.id, h.status, h.locker_id, h.slot) for h in s.exec(select(Helmet)).all())
        loans = [
            (ln.helmet_id, ln.status, ln.return_locker_id)
            for ln in sorted(s.exec(select(Loan)).all(), key=lambda ln: (ln.helmet_id, ln.borrowed_at))
        ]
        slots = sorted((x.locker_id, x.slot, x.state, x.helmet_id) for x in s.exec(select(Slot)).all())
    return helmets, loans, slots


def test_a_return_that_arrives_before_its_borrow_gives_the_same_end_state(town: Engine) -> None:
    stream = [
        ev("LK-000A", 1, 0, "helmet.stocked", slot=1, helmet_id="H-1"),
        ev("LK-000A", 2, 10, "helmet.borrowed", slot=1, helmet_id="H-1", resident_id="R-1"),
        ev("LK-000B", 1, 30, "helmet.returned", slot=2, helmet_id="H-1"),
        ev("LK-000B", 2, 40, "helmet.borrowed", slot=2, helmet_id="H-1", resident_id="R-2"),
    ]
    ingest = Ingestor(town, Recorder())
    # Locker A was offline: B's events arrive first, then A's, one by one and with a duplicate.
    for item in [stream[2], stream[3], stream[0], stream[2], stream[1]]:
        ingest.handle([item])
    helmets, loans, slots = _end_state(town)
    assert helmets == [("H-1", "on_loan", None, None)]
    assert loans == [("H-1", "returned", "LK-000B"), ("H-1", "open", None)]
    assert ("LK-000A", 1, "empty", None) in slots and ("LK-000B", 2, "empty", None) in slots


def test_shuffled_and_duplicated_streams_end_in_the_same_state(town: Engine) -> None:
    rng = random.Random(42)
    lockers, seqs, t = ["LK-000A", "LK-000B"], {"LK-000A": 0, "LK-000B": 0}, 0.0
    where: dict[str, tuple[str, int] | None] = {}
    stream = []
    for i, helmet in enumerate(["H-1", "H-2", "H-3"]):
        seqs["LK-000A"] += 1
        stream.append(ev("LK-000A", seqs["LK-000A"], t, "helmet.stocked", slot=i + 1, helmet_id=helmet))
        where[helmet] = ("LK-000A", i + 1)
    for _ in range(30):
        t += 1
        helmet = rng.choice(list(where))
        spot = where[helmet]
        if spot is not None:
            locker, slot = spot
            seqs[locker] += 1
            stream.append(
                ev(locker, seqs[locker], t, "helmet.borrowed", slot=slot, helmet_id=helmet, resident_id="R-1")
            )
            where[helmet] = None
        else:
            locker = rng.choice(lockers)
            used = {s for h, s2 in where.items() if s2 and s2[0] == locker for s in [s2[1]]}
            slot = min(set(range(1, 5)) - used)
            seqs[locker] += 1
            stream.append(ev(locker, seqs[locker], t, "helmet.returned", slot=slot, helmet_id=helmet))
            where[helmet] = (locker, slot)
    Ingestor(town, Recorder()).handle(stream)
    expected = _end_state(town)
    shuffled = stream + rng.sample(stream, 10)
    rng.shuffle(shuffled)
    # Forget everything derived and stored, then replay the shuffled, duplicated stream in small batches.
    with Session(town) as s:
        for model in (Loan, Helmet, Slot, RawEvent):
            for row in s.exec(select(model)).all():
                s.delete(row)
        for locker in s.exec(select(Locker)).all():
            locker.acked_seq = 0
            s.add(locker)
        s.commit()
    assert _end_state(town) == ([], [], [])
    ingest = Ingestor(town, Recorder())
    for i in range(0, len(shuffled), 3):
        ingest.handle(shuffled[i : i + 3])
    assert _end_state(town) == expected
    assert expected[0] and expected[1]


def test_a_state_snapshot_that_disagrees_is_flagged_not_applied(town: Engine) -> None:
    ingest = Ingestor(town, Recorder())
    ingest.handle([ev("LK-000A", 1, 0, "helmet.stocked", slot=1, helmet_id="H-1")])
    snap = State(locker_id="LK-000A", seq=1, ts=T0, slots=[{"slot": 1, "state": "empty"}])  # type: ignore[list-item]
    ingest.handle([("helmet/v1/LK-000A/state", snap.to_json())])
    with Session(town) as s:
        locker = s.get(Locker, "LK-000A")
        assert locker is not None and locker.snapshot_mismatch and "slot 1" in locker.snapshot_mismatch
        slot = s.get(Slot, ("LK-000A", 1))
        assert slot is not None and slot.state == "occupied" and slot.reported_state == "empty"
