"""A locker offline for an hour through 200 borrows and returns (docs/reliability.md, scenario 2).

The locker's real decisions and store run on an accelerated clock (an hour of
kiosk use in seconds) while its network cable is pulled; its real forwarder
and MQTT link then deliver the outbox over a real broker to the cloud's real
ingest. Every event arrives once and in seq order, and every loan comes out
right: who, which helmet, when borrowed and when returned, by the locker's
clock.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from support.cloud_events import insert_town
from support.synthetic_locker import SyntheticLocker
from support.waiting import eventually

from helmet_cloud.ingest.worker import IngestWorker
from helmet_cloud.models import Helmet, Loan, Locker, RawEvent
from helmet_cloud.settings import CloudSettings
from helmet_cloud.timeutil import aware
from helmet_sim.broker import Broker
from helmet_sim.network import Cable
from reliability.kiosk import Kiosk, genuine
from reliability.sizes import scale

pytestmark = pytest.mark.slow
LOCKER = "LK-000A"
HELMETS = {n: f"H-{n:03d}" for n in range(1, 7)}


@pytest.fixture
def ingest(settings: CloudSettings, engine: Engine) -> Iterator[IngestWorker]:
    insert_town(engine, {LOCKER: ("ST-A", 6)}, slots=True)
    w = IngestWorker(settings, engine, worker_id="ingest-offline")
    w.start()
    assert w.mqtt.connected.wait(10)
    yield w
    w.stop()


def test_an_hour_offline_through_200_borrows_and_returns_loses_nothing(
    tmp_path: Path, mosquitto: Broker, engine: Engine, ingest: IngestWorker
) -> None:
    cycles = scale("offline_cycles", 200)
    rng = random.Random(3)
    kiosk = Kiosk(LOCKER, tmp_path, dict(HELMETS))
    cable = Cable(mosquitto.port)
    # The locker's network side: the edge's forwarder and MQTT link on the same outbox file.
    link = SyntheticLocker(LOCKER, tmp_path, cable.port, resend_after=3.0)
    link.start()
    try:
        assert link.link.wait_connected(10)
        cable.unplug()
        eventually(lambda: not link.link.connected)
        expected: list[tuple[str, str, str]] = []  # (helmet, resident, kind) in the order they happened
        out_now: dict[str, str] = {}
        gap = max(1.0, 3600.0 / (2 * cycles) - 6.5)  # about an hour of use (a show and a door take 6.5 s)
        borrows = 0
        while borrows < cycles or out_now:
            # Residents keep up to four helmets out at once and bring them back in any order.
            if borrows < cycles and (not out_now or (len(out_now) < 4 and rng.random() < 0.55)):
                resident = f"R-{borrows % 25}"
                out = kiosk.show(genuine(holder=resident, now=kiosk.wall))
                assert out is not None and len(out.opened) == 1, out
                slot = out.opened[0]
                helmet = kiosk.locker.machines[slot].record.helmet_id or ""
                kiosk.take(slot)
                expected.append((helmet, resident, "helmet.borrowed"))
                out_now[helmet] = resident
                borrows += 1
            else:
                back = rng.choice(sorted(out_now))
                out = kiosk.show(f"https://helmets.example.org/h/{back}")
                assert out is not None and len(out.opened) == 1, out
                kiosk.put(out.opened[0])
                expected.append((back, out_now.pop(back), "helmet.returned"))
            kiosk.run(gap * rng.uniform(0.5, 1.5), step=1.0)
        offline_for = kiosk.mono
        assert link.store.outbox_size() == 2 * cycles  # all of it waited on the locker
        cable.plug()
        eventually(lambda: link.store.outbox_size() == 0, timeout=60)
        with Session(engine) as s:
            rows = s.exec(select(RawEvent).where(RawEvent.locker_id == LOCKER).order_by(col(RawEvent.seq))).all()
            loans = s.exec(select(Loan).order_by(col(Loan.borrowed_at))).all()
            helmets = {h.id: (h.status, h.locker_id) for h in s.exec(select(Helmet)).all()}
            locker = s.get(Locker, LOCKER)
        assert [r.seq for r in rows] == list(range(1, 2 * cycles + 1))
        assert locker is not None and locker.acked_seq == 2 * cycles
        received = [aware(r.received_at) for r in rows]
        assert received == sorted(received)  # they arrived in seq order
        assert [(r.helmet_id, r.kind) for r in rows] == [(h, k) for h, _, k in expected]
        # Loans: one per borrow, each closed by the next return of that helmet, at the locker's times.
        assert len(loans) == cycles and {loan.status for loan in loans} == {"returned"}
        by_event = {r.event_id: r for r in rows}
        for loan in loans:
            borrow = by_event[loan.id]
            assert (loan.helmet_id, loan.resident_id) == (borrow.helmet_id, borrow.resident_id)
            ret = next(
                r for r in rows if r.seq > borrow.seq and r.helmet_id == loan.helmet_id and r.kind == "helmet.returned"
            )
            assert aware(loan.returned_at) == aware(ret.ts)  # type: ignore[arg-type]
        assert helmets == {h: ("in_slot", LOCKER) for h, _, _ in expected}  # every one back in a slot
        assert offline_for >= 3600 * 0.9
        print(f"\n{2 * cycles} events over {timedelta(seconds=int(offline_for))} offline; all stored once, in order")
    finally:
        link.stop()
        cable.close()
        kiosk.store.close()
