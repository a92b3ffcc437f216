"""Bouncing sensors, doors held open, helmets never returned (docs/reliability.md, scenario 7).

The locker's real decision code and store on an accelerated clock, its events
into the cloud's real ingest and alerter: one event per real change however
much the contacts bounce, ``door_ajar`` after 90 s and once, and a helmet that
never comes back goes overdue, missing and lost at the configured ages, not
before.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select
from support.alerting import Town
from support.cloud_events import T0

from helmet_cloud.adapters.database import make_engine, migrate
from helmet_cloud.models import Loan
from helmet_cloud.settings import CloudSettings
from helmet_cloud.timeutil import aware
from reliability.kiosk import Kiosk, genuine

DEBOUNCE = 0.05  # the edge default: a reading must hold 50 ms


@pytest.fixture
def town(database_url: str, tmp_path: Path) -> Iterator[Town]:
    settings = CloudSettings(database_url=database_url, data_dir=tmp_path / "cloud")
    migrate(settings.database_url)
    engine = make_engine(settings.database_url)
    yield Town(engine, settings)
    engine.dispose()


@pytest.fixture
def kiosk(tmp_path: Path) -> Kiosk:
    """LK-000A (one of the town's lockers): helmets in slots 1 to 3, slot 4 empty."""
    return Kiosk("LK-000A", tmp_path, {1: "H-1", 2: "H-2", 3: "H-3", 4: None})


def bounce(kiosk: Kiosk, slot: int, field: str, final: bool, rng: random.Random) -> None:
    """A contact chatters (each blip shorter than the debounce time) before it settles on ``final``."""
    for _ in range(rng.randint(3, 8)):
        kiosk.sense(slot, **{field: final})
        kiosk.run(rng.uniform(0.002, DEBOUNCE * 0.8), step=0.002)
        kiosk.sense(slot, **{field: not final})
        kiosk.run(rng.uniform(0.002, DEBOUNCE * 0.8), step=0.002)
    kiosk.sense(slot, **{field: final})
    kiosk.run(0.5, step=0.005)


def test_bouncing_contacts_give_one_event_per_real_change(kiosk: Kiosk, town: Town) -> None:
    rng = random.Random(7)
    # Idle slots whose door contact and presence sensor chatter: no change, no event.
    for _ in range(50):
        bounce(kiosk, 1, "door_closed", True, rng)
        bounce(kiosk, 2, "present", True, rng)
        bounce(kiosk, 4, "present", False, rng)
    assert kiosk.events() == []
    # Ten borrows and returns, every contact bouncing at every real change.
    for round_ in range(10):
        out = kiosk.show(genuine(holder=f"R-{round_}"))
        assert out is not None and out.opened
        slot = out.opened[0]
        bounce(kiosk, slot, "door_closed", False, rng)
        bounce(kiosk, slot, "present", False, rng)
        bounce(kiosk, slot, "door_closed", True, rng)
        helmet = f"H-{slot}"
        out = kiosk.show(f"https://helmets.example.org/h/{helmet}")
        assert out is not None and out.opened
        back = out.opened[0]
        bounce(kiosk, back, "door_closed", False, rng)
        bounce(kiosk, back, "present", True, rng)
        bounce(kiosk, back, "door_closed", True, rng)
    kinds = [e["kind"] for e in kiosk.events()]
    assert kinds == ["helmet.borrowed", "helmet.returned"] * 10
    town.feed(*kiosk.published())
    with Session(town.engine) as s:
        loans = s.exec(select(Loan)).all()
    assert len(loans) == 10 and {loan.status for loan in loans} == {"returned"}


def test_a_door_held_open_faults_once_after_90_s_and_its_alert_follows(kiosk: Kiosk, town: Town) -> None:
    out = kiosk.show(genuine())
    assert out is not None and out.opened == [1]
    kiosk.sense(1, door_closed=False)
    kiosk.run(0.5)
    kiosk.sense(1, present=False)  # the helmet is taken; the door stays open
    kiosk.run(89.0, step=0.1)
    assert [e["kind"] for e in kiosk.events()] == []  # 89.5 s: not yet
    kiosk.run(1.0, step=0.1)
    kiosk.run(600, step=0.5)  # and ten more minutes open
    faults = [e for e in kiosk.events() if e["kind"] == "slot.fault"]
    assert [(e["slot"], e["reason"]) for e in faults] == [(1, "door_ajar")]
    town.now = kiosk.wall
    town.feed(*kiosk.published())
    [alert] = town.alerts("door_ajar")
    assert (alert.subject_id, alert.status) == ("LK-000A/1", "open")
    kiosk.sense(1, door_closed=True)  # someone shuts it
    kiosk.run(0.5)
    assert [e["kind"] for e in kiosk.events()][-2:] == ["helmet.borrowed", "slot.cleared"]
    town.feed(*kiosk.published())  # the whole outbox again: duplicates change nothing
    assert [a.status for a in town.alerts("door_ajar")] == ["resolved"]


def test_a_helmet_never_returned_goes_overdue_missing_and_lost_on_time(kiosk: Kiosk, town: Town) -> None:
    kiosk.mono = 10 * 60.0  # 08:10
    out = kiosk.show(genuine(holder="R-7", now=kiosk.wall))
    assert out is not None and out.opened == [1]
    kiosk.take(1)
    town.feed(*kiosk.published())
    with Session(town.engine) as s:
        borrowed = aware(s.exec(select(Loan)).one().borrowed_at)

    def status() -> list[tuple[str, str, str]]:
        return [(a.kind, a.severity, a.status) for a in town.alerts() if a.kind.startswith("helmet_")]

    for age, expected in [
        (timedelta(hours=23, minutes=59), []),
        (timedelta(hours=24, minutes=1), [("helmet_overdue", "warning", "open")]),
        (timedelta(days=2, hours=23, minutes=59), [("helmet_overdue", "warning", "open")]),
        (timedelta(days=3, minutes=1), [("helmet_overdue", "critical", "open")]),
        (timedelta(days=13, hours=23), [("helmet_overdue", "critical", "open")]),
        (
            timedelta(days=14, minutes=1),
            [("helmet_overdue", "critical", "resolved"), ("helmet_lost", "critical", "open")],
        ),
    ]:
        town.sweep(borrowed - T0 + age)  # the alerter's clock: borrowed + age
        assert status() == expected, age
    with Session(town.engine) as s:
        loan = s.exec(select(Loan)).one()
    assert aware(loan.overdue_at) == borrowed + timedelta(hours=24)  # type: ignore[arg-type]
    assert aware(loan.missing_at) == borrowed + timedelta(days=3)  # type: ignore[arg-type]
    assert aware(loan.lost_at) == borrowed + timedelta(days=14)  # type: ignore[arg-type]
