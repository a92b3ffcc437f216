"""Property: whatever order events arrive in, and however often, the end state is the same.

Hypothesis builds a plausible history of helmets moving between two lockers
(each locker's events numbered by its own seq), then delivers it shuffled, with
duplicates, in batches of varying size. The helmets, loans and slots the cloud
derives must equal those from delivering the history in order.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from support.cloud_events import Recorder, at, event, inbound, insert_town

from helmet_cloud.ingest.ingestor import Ingestor
from helmet_cloud.models import Alert, Helmet, Loan, Locker, RawEvent, Slot

LOCKERS = ("LK-000A", "LK-000B")
HELMETS = ("H-1", "H-2", "H-3")
Message = tuple[str, bytes]


@st.composite
def histories(draw: st.DrawFn) -> list[Message]:
    """Stock three helmets at A, then borrow and return them at random lockers and slots."""
    seq = dict.fromkeys(LOCKERS, 0)
    where: dict[str, tuple[str, int] | None] = {}
    out: list[Message] = []
    minute = 0.0

    def emit(locker: str, kind: str, slot: int, helmet: str, **extra: Any) -> None:
        nonlocal minute
        seq[locker] += 1
        minute += draw(st.floats(min_value=0.5, max_value=30))
        out.append(event(locker, seq[locker], at(minute), kind, slot=slot, helmet_id=helmet, **extra))

    for n, helmet in enumerate(HELMETS, start=1):
        emit("LK-000A", "helmet.stocked", n, helmet)
        where[helmet] = ("LK-000A", n)
    for _ in range(draw(st.integers(min_value=1, max_value=14))):
        helmet = draw(st.sampled_from(HELMETS))
        spot = where[helmet]
        if spot is not None:
            emit(spot[0], "helmet.borrowed", spot[1], helmet, resident_id=draw(st.sampled_from(["R-1", "R-2"])))
            where[helmet] = None
        else:
            locker = draw(st.sampled_from(LOCKERS))
            taken = {s for s2 in where.values() if s2 and s2[0] == locker for s in [s2[1]]}
            slot = min(set(range(1, 5)) - taken)
            emit(locker, "helmet.returned", slot, helmet)
            where[helmet] = (locker, slot)
    return out


def end_state(engine: Engine) -> tuple[Any, ...]:
    with Session(engine) as s:
        helmets = sorted((h.id, h.status, h.locker_id, h.slot, h.holder_id) for h in s.exec(select(Helmet)).all())
        loans = sorted(
            (ln.id, ln.helmet_id, ln.resident_id, ln.status, ln.return_locker_id) for ln in s.exec(select(Loan)).all()
        )
        slots = sorted((x.locker_id, x.slot, x.state, x.helmet_id) for x in s.exec(select(Slot)).all())
    return helmets, loans, slots


def forget_everything(engine: Engine) -> None:
    with Session(engine) as s:
        for model in (Alert, Loan, Helmet, Slot, RawEvent):
            for row in s.exec(select(model)).all():
                s.delete(row)
        for locker in s.exec(select(Locker)).all():
            locker.acked_seq = 0
            s.add(locker)
        s.commit()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=histories(), data=st.data())
def test_arrival_order_and_duplicates_do_not_change_the_end_state(
    engine: Engine, history: list[Message], data: st.DataObject
) -> None:
    with Session(engine) as s:
        registered = s.get(Locker, "LK-000A") is not None
    if not registered:
        insert_town(engine, {lk: (f"ST-{lk[-1]}", 4) for lk in LOCKERS})
    forget_everything(engine)
    Ingestor(engine, Recorder()).handle(inbound(history))
    expected = end_state(engine)

    forget_everything(engine)
    duplicates = data.draw(st.lists(st.sampled_from(history), max_size=6), label="duplicates")
    arrival = data.draw(st.permutations(history + duplicates), label="arrival")
    ingest = Ingestor(engine, Recorder())
    i = 0
    while i < len(arrival):
        size = data.draw(st.integers(min_value=1, max_value=5), label="batch")
        ingest.handle(inbound(arrival[i : i + size]))
        i += size
    assert end_state(engine) == expected
