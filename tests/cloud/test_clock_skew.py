"""A locker whose clock is minutes off: the cloud estimates the offset and orders events by true time."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from support.cloud_events import Recorder, event, inbound, insert_town, status

from helmet_cloud.ingest import clocks
from helmet_cloud.ingest.ingestor import Ingestor
from helmet_cloud.models import Helmet, Loan, Locker, RawEvent

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
SLOW = timedelta(minutes=10)  # LK-000B's clock is 10 minutes behind


def live(message: tuple[str, bytes], received_at: datetime) -> tuple[str, bytes, datetime]:
    return (*message, received_at)


def test_a_return_stamped_by_a_slow_clock_still_follows_its_borrow(engine: Engine) -> None:
    insert_town(engine, {"LK-000A": ("ST-A", 4), "LK-000B": ("ST-B", 4)})
    ingest = Ingestor(engine, Recorder())
    ingest.handle(
        inbound(
            [
                live(status("LK-000A", NOW, online=True), NOW),
                live(status("LK-000B", NOW - SLOW, online=True), NOW),  # B says 08:50 when it is 09:00
                live(event("LK-000A", 1, NOW, "helmet.stocked", slot=1, helmet_id="H-1"), NOW),
            ]
        )
    )
    borrowed, returned = NOW + timedelta(minutes=1), NOW + timedelta(minutes=6)
    # B was offline during the ride: its return arrives first, the borrow at A (also delayed) after it.
    ingest.handle(
        inbound([live(event("LK-000B", 1, returned - SLOW, "helmet.returned", slot=2, helmet_id="H-1"), returned)])
    )
    ingest.handle(
        inbound(
            [
                live(
                    event("LK-000A", 2, borrowed, "helmet.borrowed", slot=1, helmet_id="H-1", resident_id="R-1"),
                    returned,
                )
            ]
        )
    )

    with Session(engine) as s:
        helmet = s.get(Helmet, "H-1")
        assert helmet is not None and (helmet.status, helmet.locker_id, helmet.slot) == ("in_slot", "LK-000B", 2)
        (loan,) = s.exec(select(Loan)).all()
        assert (loan.status, loan.return_locker_id) == ("returned", "LK-000B")
        assert loan.returned_at is not None and abs(loan.returned_at.replace(tzinfo=UTC) - returned) < timedelta(
            seconds=1
        )
        ret = s.exec(select(RawEvent).where(RawEvent.locker_id == "LK-000B")).one()
        assert ret.clock_offset_ms == 600_000
        assert json.loads(ret.payload)["ts"].startswith("2026-11-28T08:56")  # the locker's own time is kept


def test_without_the_correction_the_same_history_would_be_wrong(engine: Engine) -> None:
    """The control: the same events not heard live (no receive times, no status samples) keep locker time."""
    insert_town(engine, {"LK-000A": ("ST-A", 4), "LK-000B": ("ST-B", 4)})
    ingest = Ingestor(engine, Recorder())
    ingest.handle(inbound([event("LK-000A", 1, NOW, "helmet.stocked", slot=1, helmet_id="H-1")]))
    returned = NOW + timedelta(minutes=6)
    ingest.handle(inbound([event("LK-000B", 1, returned - SLOW, "helmet.returned", slot=2, helmet_id="H-1")]))
    ingest.handle(
        inbound(
            [
                event(
                    "LK-000A",
                    2,
                    NOW + timedelta(minutes=1),
                    "helmet.borrowed",
                    slot=1,
                    helmet_id="H-1",
                    resident_id="R",
                )
            ]
        )
    )
    with Session(engine) as s:
        helmet = s.get(Helmet, "H-1")
        assert helmet is not None and helmet.status == "on_loan"  # misordered: what the correction prevents


def locker() -> Locker:
    return Locker(id="LK-000A", station_id="ST-A", slot_count=4)


def test_the_estimate_keeps_the_smallest_recent_sample() -> None:
    lk = locker()
    clocks.observe(lk, status_ts=NOW - SLOW, received_at=NOW + timedelta(seconds=3), boot_id="b")  # a slow delivery
    clocks.observe(lk, status_ts=NOW - SLOW, received_at=NOW + timedelta(milliseconds=40), boot_id="b")
    clocks.observe(lk, status_ts=NOW - SLOW, received_at=NOW + timedelta(seconds=20), boot_id="b")  # stale: ignored
    assert lk.clock_offset_ms == 600_040
    assert clocks.correction(lk, event_ts=NOW - SLOW, received_at=None) == timedelta(milliseconds=600_040)


def test_a_clock_stepped_back_a_new_boot_or_an_old_estimate_replace_it() -> None:
    lk = locker()
    clocks.observe(lk, status_ts=NOW + SLOW, received_at=NOW, boot_id="b")  # 10 min fast
    assert lk.clock_offset_ms == -600_000
    clocks.observe(lk, status_ts=NOW, received_at=NOW, boot_id="b")  # NTP stepped it back
    assert lk.clock_offset_ms == 0
    clocks.observe(lk, status_ts=NOW - timedelta(seconds=30), received_at=NOW, boot_id="b2")  # rebooted
    assert lk.clock_offset_ms == 30_000
    clocks.observe(lk, status_ts=NOW, received_at=NOW + timedelta(seconds=40), boot_id="b2")
    assert lk.clock_offset_ms == 30_000  # within the window a larger sample is just a slow delivery
    later = NOW + clocks.WINDOW + timedelta(minutes=1)
    clocks.observe(lk, status_ts=later, received_at=later + timedelta(seconds=40), boot_id="b2")
    assert lk.clock_offset_ms == 40_000  # the window is over: the estimate is renewed


def test_small_offsets_change_nothing_and_no_event_is_put_after_its_arrival() -> None:
    lk = locker()
    assert clocks.correction(lk, event_ts=NOW, received_at=NOW) == timedelta(0)  # never heard live
    clocks.observe(lk, status_ts=NOW, received_at=NOW + timedelta(milliseconds=900), boot_id="b")
    assert clocks.correction(lk, event_ts=NOW, received_at=None) == timedelta(0)  # under the dead band
    clocks.observe(lk, status_ts=NOW - SLOW, received_at=NOW, boot_id="b2")
    # NTP has since stepped the clock forward: an event heard live 5 s after its (now right) stamp moves 5 s at most.
    assert clocks.correction(lk, event_ts=NOW, received_at=NOW + timedelta(seconds=5)) == timedelta(seconds=5)
