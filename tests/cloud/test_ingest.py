"""Ingest on a real database: idempotent, order-insensitive, and nothing bad gets in."""

from __future__ import annotations

import random
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from support.cloud_events import T0, Recorder, at, event, inbound, insert_town

from helmet_cloud.ingest.ingestor import Ingestor
from helmet_cloud.models import DeadLetter, Helmet, Loan, Locker, RawEvent, Slot
from helmet_protocol.messages import State


@pytest.fixture
def town(engine: Engine) -> Engine:
    insert_town(engine, {"LK-000A": ("ST-A", 4), "LK-000B": ("ST-B", 4)})
    return engine


def test_duplicates_change_nothing_and_the_ack_follows_contiguous_seqs(town: Engine) -> None:
    out = Recorder()
    ingest = Ingestor(town, out)
    first = event("LK-000A", 1, at(0), "helmet.stocked", slot=1, helmet_id="H-1")
    second = event("LK-000A", 2, at(1), "helmet.borrowed", slot=1, helmet_id="H-1", resident_id="R-1", pass_id="p1")
    ingest.handle(inbound([first, second, first]))
    ingest.handle(inbound([second]))
    # Same (locker, seq) under a new event id: a locker bug, must not be applied twice.
    ingest.handle(inbound([event("LK-000A", 2, at(1), "helmet.borrowed", slot=1, helmet_id="H-1", resident_id="R-2")]))
    with Session(town) as s:
        assert len(s.exec(select(RawEvent)).all()) == 2
        loans = s.exec(select(Loan)).all()
        assert [(ln.helmet_id, ln.resident_id, ln.status) for ln in loans] == [("H-1", "R-1", "open")]
    assert out.acks("LK-000A") == [2, 2, 2]


def test_a_gap_holds_the_ack_and_asks_the_locker_to_resend(town: Engine) -> None:
    out = Recorder()
    ingest = Ingestor(town, out)
    ingest.handle(
        inbound(
            [
                event("LK-000A", 1, at(0), "helmet.stocked", slot=1, helmet_id="H-1"),
                event("LK-000A", 3, at(2), "helmet.stocked", slot=3, helmet_id="H-3"),
            ]
        )
    )
    assert out.acks("LK-000A") == [1]
    resend = [p for t, p, _ in out.sent if t == "helmet/v1/LK-000A/cmd"]
    assert resend and resend[0]["op"] == "resend" and resend[0]["from_seq"] == 2
    ingest.handle(inbound([event("LK-000A", 2, at(1), "helmet.stocked", slot=2, helmet_id="H-2")]))
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
        # Issue 16, finding 9: wrong JSON types are refused, not converted ("yes" and 0 were read as booleans).
        (
            "helmet/v1/LK-000A/status",
            b'{"v": 1, "locker_id": "LK-000A", "online": "yes", "boot_id": "b", "fw": "1", '
            b'"ts": "2026-11-28T08:00:00Z"}',
            "online: Input should be a valid boolean",
        ),
        (
            "helmet/v1/LK-000A/status",
            b'{"v": 1, "locker_id": "LK-000A", "online": 0, "boot_id": "b", "fw": "1", "ts": "2026-11-28T08:00:00Z"}',
            "online: Input should be a valid boolean",
        ),
    ],
)
def test_bad_payloads_are_dead_lettered_and_good_ones_still_stored(
    town: Engine, topic: str, payload: bytes, reason: str
) -> None:
    ingest = Ingestor(town, Recorder())
    good = event("LK-000A", 1, at(0), "helmet.stocked", slot=1, helmet_id="H-1")
    ingest.handle(inbound([(topic, payload), good]))
    with Session(town) as s:
        dead = s.exec(select(DeadLetter)).all()
        assert len(dead) == 1 and reason in dead[0].reason
        assert len(s.exec(select(RawEvent)).all()) == 1


def test_a_payload_naming_another_locker_is_dead_lettered(town: Engine) -> None:
    _topic, payload = event("LK-000B", 1, at(0), "helmet.stocked", slot=1, helmet_id="H-1")
    Ingestor(town, Recorder()).handle(inbound([("helmet/v1/LK-000A/events", payload)]))
    with Session(town) as s:
        assert "LK-000B" in s.exec(select(DeadLetter)).one().reason
        assert s.exec(select(RawEvent)).all() == []


def test_unknown_kinds_are_kept_and_flagged(town: Engine) -> None:
    Ingestor(town, Recorder()).handle(inbound([event("LK-000A", 1, at(0), "helmet.teleported", slot=1)]))
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
        event("LK-000A", 1, at(0), "helmet.stocked", slot=1, helmet_id="H-1"),
        event("LK-000A", 2, at(10), "helmet.borrowed", slot=1, helmet_id="H-1", resident_id="R-1"),
        event("LK-000B", 1, at(30), "helmet.returned", slot=2, helmet_id="H-1"),
        event("LK-000B", 2, at(40), "helmet.borrowed", slot=2, helmet_id="H-1", resident_id="R-2"),
    ]
    ingest = Ingestor(town, Recorder())
    # Locker A was offline: B's events arrive first, then A's, one by one and with a duplicate.
    for item in [stream[2], stream[3], stream[0], stream[2], stream[1]]:
        ingest.handle(inbound([item]))
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
        stream.append(event("LK-000A", seqs["LK-000A"], at(t), "helmet.stocked", slot=i + 1, helmet_id=helmet))
        where[helmet] = ("LK-000A", i + 1)
    for _ in range(30):
        t += 1
        helmet = rng.choice(list(where))
        spot = where[helmet]
        if spot is not None:
            locker, slot = spot
            seqs[locker] += 1
            stream.append(
                event(locker, seqs[locker], at(t), "helmet.borrowed", slot=slot, helmet_id=helmet, resident_id="R-1")
            )
            where[helmet] = None
        else:
            locker = rng.choice(lockers)
            used = {s for h, s2 in where.items() if s2 and s2[0] == locker for s in [s2[1]]}
            slot = min(set(range(1, 5)) - used)
            seqs[locker] += 1
            stream.append(event(locker, seqs[locker], at(t), "helmet.returned", slot=slot, helmet_id=helmet))
            where[helmet] = (locker, slot)
    Ingestor(town, Recorder()).handle(inbound(stream))
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
        ingest.handle(inbound(shuffled[i : i + 3]))
    assert _end_state(town) == expected
    assert expected[0] and expected[1]


def test_a_state_snapshot_that_disagrees_is_flagged_not_applied(town: Engine) -> None:
    ingest = Ingestor(town, Recorder())
    ingest.handle(inbound([event("LK-000A", 1, at(0), "helmet.stocked", slot=1, helmet_id="H-1")]))
    snap = State(locker_id="LK-000A", seq=1, ts=T0, slots=[{"slot": 1, "state": "empty"}])  # type: ignore[list-item]
    ingest.handle(inbound([("helmet/v1/LK-000A/state", snap.to_json())]))
    with Session(town) as s:
        locker = s.get(Locker, "LK-000A")
        assert locker is not None and locker.snapshot_mismatch and "slot 1" in locker.snapshot_mismatch
        slot = s.get(Slot, ("LK-000A", 1))
        assert slot is not None and slot.state == "occupied" and slot.reported_state == "empty"


def test_a_helmet_on_loan_stocked_by_a_technician_closes_the_loan(town: Engine) -> None:
    """A resident's helmet handed to a technician (a return in maintenance mode) ends the resident's loan."""
    ingest = Ingestor(town, Recorder())
    ingest.handle(inbound([event("LK-000A", 1, at(0), "helmet.stocked", slot=1, helmet_id="H-1")]))
    ingest.handle(inbound([event("LK-000A", 2, at(5), "helmet.borrowed", slot=1, helmet_id="H-1", resident_id="R-1")]))
    ingest.handle(inbound([event("LK-000B", 1, at(40), "helmet.stocked", slot=3, helmet_id="H-1")]))
    with Session(town) as s:
        (loan,) = s.exec(select(Loan)).all()
        assert (loan.status, loan.return_locker_id) == ("returned", "LK-000B")
        helmet = s.get(Helmet, "H-1")
        assert helmet is not None and (helmet.status, helmet.locker_id, helmet.slot) == ("in_slot", "LK-000B", 3)


def test_a_locker_wired_with_other_slots_than_registered_is_flagged(town: Engine) -> None:
    ingest = Ingestor(town, Recorder())
    slots = [{"slot": n, "state": "empty"} for n in range(1, 7)]  # six wired; registered with four
    ingest.handle(
        inbound([("helmet/v1/LK-000A/state", State(locker_id="LK-000A", seq=0, ts=T0, slots=slots).to_json())])
    )  # type: ignore[arg-type]
    with Session(town) as s:
        locker = s.get(Locker, "LK-000A")
        assert locker is not None and locker.snapshot_mismatch == "locker reports 6 slots, registered with 4"


def test_late_events_after_many_small_in_order_batches_end_as_a_full_recompute(
    town: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In-order batches continue each helmet's and slot's stored fold; a late event makes it fold everything again."""
    from helmet_cloud.ingest import inventory, slot_state

    refolded: list[object] = []
    real_helmets, real_slots = inventory.recompute_helmets, slot_state.recompute_slots

    def helmets_spy(session: Session, ids: Any) -> None:
        refolded.extend(ids)
        real_helmets(session, ids)

    def slots_spy(session: Session, keys: Any) -> None:
        refolded.extend(keys)
        real_slots(session, keys)

    monkeypatch.setattr(inventory, "recompute_helmets", helmets_spy)
    monkeypatch.setattr(slot_state, "recompute_slots", slots_spy)
    a: list[tuple[str, bytes]] = []

    def at_a(minutes: float, kind: str, n: int, **fields: Any) -> None:
        a.append(event("LK-000A", len(a) + 1, at(minutes), kind, slot=n, helmet_id=f"H-{n}", **fields))

    for n in (1, 2, 3):
        at_a(0, "helmet.stocked", n)
    for r in range(8):  # every helmet borrowed and returned at A, round after round
        for n in (1, 2, 3):
            at_a(100 * r + 10 * n, "helmet.borrowed", n, resident_id=f"R-{r}")
            at_a(100 * r + 10 * n + 5, "helmet.returned", n)
    # Locker B was offline: H-1, borrowed at A at 310, came back at B at 312 and left again with R-9 at 313,
    # who returned it to A at 315. B's two events arrive only at the end.
    late_b = [
        event("LK-000B", 1, at(312), "helmet.returned", slot=1, helmet_id="H-1"),
        event("LK-000B", 2, at(313), "helmet.borrowed", slot=1, helmet_id="H-1", resident_id="R-9"),
    ]
    held_back = a[3 + 6 * 5 + 2]  # A's borrow of H-2 in round 5 (3 stockings, 6 events a round), resent last
    ingest = Ingestor(town, Recorder())
    in_order = [m for m in a if m is not held_back]
    for i in range(0, len(in_order), 2):
        ingest.handle(inbound(in_order[i : i + 2]))
    # Only what was new was folded from the start; everything else continued from its stored state.
    assert sorted(map(str, refolded)) == sorted(["H-1", "H-2", "H-3", *(str(("LK-000A", n)) for n in (1, 2, 3))])
    refolded.clear()
    ingest.handle(inbound(late_b))
    ingest.handle(inbound([held_back]))
    assert {"H-1", "H-2", ("LK-000A", 2)} <= set(refolded)

    def state() -> list[list[dict[str, Any]]]:
        with Session(town) as s:
            return [sorted((r.model_dump() for r in s.exec(select(m)).all()), key=repr) for m in (Helmet, Loan, Slot)]

    got = state()
    loans = got[1]
    h1 = [(x["resident_id"], x["borrow_locker_id"], x["return_locker_id"]) for x in loans if x["helmet_id"] == "H-1"]
    assert ("R-3", "LK-000A", "LK-000B") in h1 and ("R-9", "LK-000B", "LK-000A") in h1
    assert len(loans) == 8 * 3 + 1 and all(x["status"] == "returned" for x in loans)
    # The reference: forget every derived row and fold each helmet's and slot's whole history once.
    with Session(town) as s:
        for model in (Loan, Helmet, Slot):
            for row in s.exec(select(model)).all():
                s.delete(row)
        s.commit()
        real_helmets(s, ["H-1", "H-2", "H-3"])
        real_slots(s, [("LK-000A", 1), ("LK-000A", 2), ("LK-000A", 3), ("LK-000B", 1)])
        s.commit()
    assert state() == got
