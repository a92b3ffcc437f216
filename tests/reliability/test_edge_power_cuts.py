"""The locker process SIGKILLed at random points through 500 borrows and returns (docs/reliability.md, scenario 3).

The full-size version of ``tests/edge/test_power_cut.py`` (12 cuts, in CI),
against the cloud's real ingest instead of a test double: ``helmet-sim locker``
runs the real edge on simulated pins and camera in its own process; people
borrow and return through the camera; the process is killed in the middle of
about a third of them and restarted. In the end the cloud's events account
for every physical change exactly once, the cloud's slots match what the
slots physically hold, and no lock is left released.

    HELMET_LONG=1 .venv/bin/pytest tests/reliability/test_edge_power_cuts.py -q -s

``HELMET_POWER_CUT_OPS`` sets the number of borrows and returns (500).
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from support.cloud_events import insert_town
from support.processes import LockerProcess
from support.waiting import eventually

from helmet_cloud.ingest.worker import IngestWorker
from helmet_cloud.models import Locker, RawEvent, Slot
from helmet_cloud.settings import CloudSettings
from helmet_protocol.passes import Role
from helmet_sim.broker import Broker
from reliability.kiosk import KEY, genuine
from reliability.sizes import scale
from reliability.test_clock_skew import send_configs

pytestmark = [pytest.mark.long, pytest.mark.slow, pytest.mark.timeout(4 * 3600)]
LOCKER = "LK-0001"
HELMETS = ["H-1", "H-2", "H-3", "H-4", "H-5"]


def replay(events: list[dict[str, Any]]) -> dict[int, str | None]:
    """Fold the events per slot in seq order; refuse any impossible step (a change recorded twice or missed)."""
    slots: dict[int, str | None] = dict.fromkeys(range(1, 7))
    for e in events:
        kind, slot, helmet = e["kind"], e["slot"], e["helmet_id"]
        if kind in ("helmet.borrowed", "helmet.removed"):
            assert slots[slot] == helmet is not None, f"seq {e['seq']}: {kind} of {helmet} from {slots[slot]}"
            slots[slot] = None
        elif kind in ("helmet.returned", "helmet.stocked"):
            assert slots[slot] is None, f"seq {e['seq']}: {kind} into slot {slot} holding {slots[slot]}"
            slots[slot] = helmet
    return slots


@pytest.fixture
def ingest(settings: CloudSettings, engine: Engine, mosquitto: Broker) -> Iterator[IngestWorker]:
    insert_town(engine, {LOCKER: ("ST-A", 6)}, slots=True)
    send_configs(mosquitto.port, [LOCKER], KEY)  # the pass keys, as the cloud's retained config
    w = IngestWorker(settings, engine, worker_id="ingest-power")
    w.start()
    yield w
    w.stop()


def test_power_cuts_through_500_borrows_and_returns(
    tmp_path: Path, mosquitto: Broker, engine: Engine, ingest: IngestWorker
) -> None:
    ops = scale("power_cut_ops", 500)
    rng = random.Random(2026)
    workdir = tmp_path / "lockers"
    locker = LockerProcess(LOCKER, workdir, mosquitto.port)
    cuts = borrows = returns = 0
    started = time.monotonic()
    try:
        locker.wait_for_keys()
        assert locker.ask(op="show", text=genuine(role=Role.TECHNICIAN, now=datetime.now(UTC)), seconds=0.6)["ok"]
        for h in HELMETS:
            assert locker.ask(op="insert", helmet_id=h)["ok"]
        time.sleep(4)  # the stickers' repeat window
        last_sticker: dict[str, float] = {}
        for _ in range(ops):
            state = locker.ask(op="state")
            in_slots = {h for h in state["helmets"].values() if h}
            outside = [h for h in HELMETS if h not in in_slots and time.monotonic() - last_sticker.get(h, 0) > 4.5]
            returning = bool(outside) and (rng.random() < 0.5 or not in_slots)
            if returning:
                helmet = rng.choice(outside)
                last_sticker[helmet] = time.monotonic()
                request: list[dict[str, Any]] = [{"op": "insert", "helmet_id": helmet, "timeout": 3}]
                returns += 1
            else:
                text = genuine(holder=f"R-{rng.randint(1, 50)}", now=datetime.now(UTC))
                request = [{"op": "show", "text": text, "seconds": 0.5}, {"op": "take", "count": 1, "timeout": 3}]
                borrows += 1
            if rng.random() < 1 / 3:  # the power goes at a random point of this one
                for r in request:
                    locker.send(**r)
                time.sleep(rng.uniform(0.05, 2.0))
                locker.kill()
                cuts += 1
                locker = LockerProcess(LOCKER, workdir, mosquitto.port)
                assert locker.ask(op="close_all")["ok"]  # whoever stood there shuts the door
                eventually(lambda lk=locker: (s := lk.ask(op="state"))["released"] == [] and s, timeout=25)
            else:
                for r in request:
                    locker.ask(**r)
        final = locker.ask(op="state")
        assert final["released"] == [] and final["doors_open"] == []
        eventually(lambda: locker.ask(op="state")["outbox"] == 0, timeout=60)
        physical = {int(k): v for k, v in final["helmets"].items()}
        with Session(engine) as s:
            rows = s.exec(select(RawEvent).where(RawEvent.locker_id == LOCKER).order_by(col(RawEvent.seq))).all()
            slots = {sl.slot: sl.helmet_id for sl in s.exec(select(Slot).where(Slot.locker_id == LOCKER)).all()}
            acked = s.get(Locker, LOCKER)
        events = [{"seq": r.seq, "kind": r.kind, "slot": r.slot, "helmet_id": r.helmet_id} for r in rows]
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
        assert acked is not None and acked.acked_seq == len(events)
        assert replay(events) == physical
        assert slots == physical  # the cloud's derived slots agree with the physical world
        kinds = [e["kind"] for e in events]
        assert kinds.count("helmet.borrowed") >= borrows // 3 and kinds.count("helmet.returned") >= returns // 3
        print(
            f"\n{ops} attempts ({borrows} borrows, {returns} returns), {cuts} power cuts, "
            f"{kinds.count('helmet.borrowed')} helmet.borrowed, {kinds.count('helmet.returned')} helmet.returned, "
            f"{kinds.count('unlock.timeout')} unlock.timeout, {len(events)} events in all, "
            f"{time.monotonic() - started:.0f} s"
        )
    finally:
        locker.stop()
