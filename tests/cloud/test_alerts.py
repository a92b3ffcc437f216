"""Alerts raised by ingest and the sweeper on a real database, whatever order events arrive in."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select
from support.alerting import Town
from support.cloud_events import T0, at, status

from helmet_cloud.adapters.database import make_engine, migrate
from helmet_cloud.models import Alert, Helmet, IssuedPass, Loan, Locker
from helmet_cloud.settings import CloudSettings
from helmet_cloud.timeutil import aware, utcnow


@pytest.fixture
def alert_settings(database_url: str, tmp_path: Path) -> CloudSettings:
    return CloudSettings(database_url=database_url, data_dir=tmp_path / "cloud")


@pytest.fixture
def town(alert_settings: CloudSettings) -> Iterator[Town]:
    migrate(alert_settings.database_url)
    engine = make_engine(alert_settings.database_url)
    yield Town(engine, alert_settings)
    engine.dispose()


def when(value: datetime | None) -> datetime | None:
    return aware(value) if value is not None else None


def states(alerts: list[Alert]) -> list[str]:
    return [a.status for a in alerts]


def test_a_station_emptied_by_borrows_alerts_once_does_not_flap_and_clears_past_the_hysteresis(town: Town) -> None:
    a = "LK-000A"
    town.feed(
        town.next(a, 0, "helmet.stocked", slot=1, helmet_id="H-1"),
        town.next(a, 0, "helmet.stocked", slot=2, helmet_id="H-2"),
    )
    seen = []

    def step(minutes: float, *items: tuple[str, bytes]) -> None:
        town.now = at(minutes)
        town.feed(*items)
        rows = [x for x in town.alerts("station_empty") if x.subject_id == "ST-A"]
        seen.append((len(rows), rows[-1].status if rows else None))

    step(1, town.next(a, 1, "helmet.borrowed", slot=1, helmet_id="H-1", resident_id="R-1"))
    step(2, town.next(a, 2, "helmet.borrowed", slot=2, helmet_id="H-2", resident_id="R-2"))  # 0 helmets
    step(3, town.next(a, 3, "helmet.returned", slot=1, helmet_id="H-1"))  # 1: inside the hysteresis
    step(4, town.next(a, 4, "helmet.borrowed", slot=1, helmet_id="H-1", resident_id="R-3"))  # 0 again
    step(5, town.next(a, 5, "helmet.returned", slot=1, helmet_id="H-1"))  # 1
    step(6, town.next(a, 6, "helmet.returned", slot=2, helmet_id="H-2"))  # 2: one past the threshold
    assert seen == [(0, None), (1, "open"), (1, "open"), (1, "open"), (1, "open"), (1, "resolved")]
    [alert] = [x for x in town.alerts("station_empty") if x.subject_id == "ST-A"]
    assert (alert.subject_type, alert.severity, alert.resolved_by) == ("station", "warning", None)
    assert alert.last_seen_at > alert.opened_at  # the second emptying refreshed it
    town.sweep(timedelta(minutes=10))
    assert len([x for x in town.alerts("station_empty") if x.subject_id == "ST-A"]) == 1


def test_a_last_will_opens_locker_offline_and_online_resolves_it(town: Town) -> None:
    town.feed(status("LK-000A", at(1), online=True))
    assert town.alerts("locker_offline") == []
    # The Will was set at connect, so its ts is older than the "online" of the same boot.
    town.feed(status("LK-000A", at(0.5), online=False))
    [alert] = town.alerts("locker_offline")
    assert (alert.status, alert.subject_type, alert.subject_id, alert.severity) == (
        "open",
        "locker",
        "LK-000A",
        "critical",
    )
    with Session(town.engine) as s:
        locker = s.get(Locker, "LK-000A")
        assert locker is not None and locker.online is False
    town.feed(status("LK-000A", at(0.5), online=False))  # the retained Will again, at a reconnect of ingest
    assert len(town.alerts("locker_offline")) == 1
    town.feed(status("LK-000A", at(2), online=True, boot_id="b-2"))
    assert states(town.alerts("locker_offline")) == ["resolved"]
    town.sweep(timedelta(minutes=5))
    assert states(town.alerts("locker_offline")) == ["resolved"]
    # It drops out again: a new alert, the old one stays in the history.
    town.feed(status("LK-000A", at(1.5), online=False, boot_id="b-2"))
    assert states(town.alerts("locker_offline")) == ["resolved", "open"]
    town.feed(status("LK-000A", at(3), online=True, boot_id="b-2"))  # reconnected without a restart
    assert states(town.alerts("locker_offline")) == ["resolved", "resolved"]


def test_the_database_refuses_a_second_unresolved_alert_for_one_subject(town: Town) -> None:
    town.feed(status("LK-000A", at(1), online=True), status("LK-000A", at(0), online=False))
    [alert] = town.alerts("locker_offline")
    twin = Alert(
        kind=alert.kind,
        severity=alert.severity,
        subject_type=alert.subject_type,
        subject_id=alert.subject_id,
        message="twin",
        opened_at=T0,
        last_seen_at=T0,
    )
    with Session(town.engine) as s, pytest.raises(IntegrityError):
        s.add(twin)
        s.commit()


def test_silence_longer_than_the_heartbeat_counts_as_offline(database_url: str, tmp_path: Path) -> None:
    settings = CloudSettings(database_url=database_url, data_dir=tmp_path / "cloud", locker_heartbeat_minutes=15)
    migrate(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
        town = Town(engine, settings)
        town.feed(status("LK-000A", at(0), online=True))
        with Session(engine) as s:
            locker = s.get(Locker, "LK-000A")
            assert locker is not None and locker.last_heard_at is not None
            heard = aware(locker.last_heard_at)  # ingest stamps it with the cloud's own clock
        town.now = heard + timedelta(minutes=14)
        town.alerter.sweep()
        assert town.alerts("locker_offline") == []
        town.now = heard + timedelta(minutes=16)
        town.alerter.sweep()
        assert states(town.alerts("locker_offline")) == ["open"]
        assert "nothing heard" in town.alerts("locker_offline")[0].message
        town.now = utcnow()
        town.feed(status("LK-000A", at(1), online=True))
        assert states(town.alerts("locker_offline")) == ["resolved"]
    finally:
        engine.dispose()


@pytest.mark.parametrize("order", ["A then B", "B then A", "one batch"])
def test_a_pass_honoured_at_two_offline_lockers_opens_one_overuse_alert(town: Town, order: str) -> None:
    pass_id, fair = str(uuid.uuid4()), str(uuid.uuid4())
    with Session(town.engine) as s:
        for pid, qty in ((pass_id, 1), (fair, 2)):
            s.add(
                IssuedPass(
                    id=pid,
                    holder_id="R-1",
                    role="resident",
                    quantity=qty,
                    kid="k1",
                    issued_at=T0,
                    expires_at=at(5),
                )
            )
        s.commit()
    town.feed(
        town.next("LK-000A", 0, "helmet.stocked", slot=1, helmet_id="H-1"),
        town.next("LK-000A", 0, "helmet.stocked", slot=2, helmet_id="H-3"),
        town.next("LK-000A", 0, "helmet.stocked", slot=3, helmet_id="H-5"),
        town.next("LK-000B", 0, "helmet.stocked", slot=1, helmet_id="H-2"),
        town.next("LK-000B", 0, "helmet.stocked", slot=2, helmet_id="H-4"),
    )
    at_a = town.next("LK-000A", 10, "helmet.borrowed", slot=1, helmet_id="H-1", pass_id=pass_id, resident_id="R-1")
    at_b = town.next("LK-000B", 11, "helmet.borrowed", slot=1, helmet_id="H-2", pass_id=pass_id, resident_id="R-1")
    # A pass for two, both helmets at one locker, is fine.
    ok_a = town.next("LK-000A", 12, "helmet.borrowed", slot=2, helmet_id="H-3", pass_id=fair, resident_id="R-1")
    ok_b = town.next("LK-000A", 13, "helmet.borrowed", slot=3, helmet_id="H-5", pass_id=fair, resident_id="R-1")
    town.feed(ok_b)
    town.feed(ok_a)
    if order == "A then B":
        town.feed(at_a)
        assert town.alerts("pass_overuse") == []
        town.feed(at_b)
    elif order == "B then A":
        town.feed(at_b)
        assert town.alerts("pass_overuse") == []
        town.feed(at_a)
    else:
        town.feed(at_b, at_a)
    town.feed(at_a, at_b)  # the lockers send them again: duplicates change nothing
    [alert] = town.alerts("pass_overuse")
    assert (alert.subject_type, alert.subject_id, alert.status) == ("pass", pass_id, "open")
    assert "it was for 1, helmets taken: 2 (LK-000A (1), LK-000B (1))" in alert.message


def test_a_pass_for_two_with_one_helmet_at_each_of_two_lockers_is_over_use_too(town: Town) -> None:
    """A pass is good once, fleet-wide: a second locker honoured it only because it had not heard of the first."""
    pass_id = str(uuid.uuid4())
    with Session(town.engine) as s:
        s.add(
            IssuedPass(
                id=pass_id, holder_id="R-1", role="resident", quantity=2, kid="k1", issued_at=T0, expires_at=at(5)
            )
        )
        s.commit()
    town.feed(
        town.next("LK-000A", 0, "helmet.stocked", slot=1, helmet_id="H-1"),
        town.next("LK-000B", 0, "helmet.stocked", slot=1, helmet_id="H-2"),
    )
    town.feed(town.next("LK-000A", 10, "helmet.borrowed", slot=1, helmet_id="H-1", pass_id=pass_id, resident_id="R-1"))
    assert town.alerts("pass_overuse") == []
    town.feed(town.next("LK-000B", 11, "helmet.borrowed", slot=1, helmet_id="H-2", pass_id=pass_id, resident_id="R-1"))
    [alert] = town.alerts("pass_overuse")
    assert "it was for 2, helmets taken: 2 (LK-000A (1), LK-000B (1))" in alert.message


def test_five_forged_passes_within_ten_minutes_open_one_burst_alert(town: Town) -> None:
    a, b = "LK-000A", "LK-000B"
    forged = [
        town.next(a, m, "pass.rejected", reason=r)
        for m, r in [(0, "bad_signature"), (2, "unknown_key"), (4, "malformed"), (6, "bad_signature")]
    ]
    expired = town.next(a, 7, "pass.rejected", reason="expired", pass_id="p-1", resident_id="R-1")
    fifth = town.next(a, 9, "pass.rejected", reason="bad_signature", pass_id="p-x", resident_id="R-9")
    sixth = town.next(a, 10, "pass.rejected", reason="unknown_key")
    # Five at locker B too, but spread over an hour.
    slow = [town.next(b, 15 * i, "pass.rejected", reason="bad_signature") for i in range(5)]
    town.feed(forged[3], expired)
    town.feed(forged[0], forged[2])
    town.feed(*slow)
    assert town.alerts("forged_passes") == []
    town.feed(fifth, forged[1])  # the fifth forged pass arrives, and one from earlier, late
    [alert] = town.alerts("forged_passes")
    assert (alert.subject_type, alert.subject_id, alert.status, alert.severity) == (
        "locker",
        a,
        "open",
        "critical",
    )
    assert alert.message.startswith("Forged passes at locker LK-000A: 5 attempts within 10 min")
    town.feed(sixth)
    assert len(town.alerts("forged_passes")) == 1


@pytest.mark.parametrize("back", ["helmet.returned", "helmet.stocked"])
def test_a_loan_grows_overdue_then_lost_and_a_lost_helmet_that_turns_up_is_found(town: Town, back: str) -> None:
    a = "LK-000A"
    town.feed(
        town.next(a, 0, "helmet.stocked", slot=1, helmet_id="H-1"),
        town.next(a, 10, "helmet.borrowed", slot=1, helmet_id="H-1", resident_id="R-1"),
    )
    borrowed = at(10)

    def loan() -> Loan:
        with Session(town.engine) as s:
            return s.exec(select(Loan).where(Loan.helmet_id == "H-1")).one()

    town.sweep(timedelta(hours=23))
    assert town.alerts("helmet_overdue") == [] and loan().overdue_at is None
    town.sweep(timedelta(hours=25))
    [overdue] = town.alerts("helmet_overdue")
    assert (overdue.status, overdue.severity, overdue.subject_id) == ("open", "warning", "H-1")
    assert "overdue" in overdue.message and "R-1" in overdue.message
    assert when(loan().overdue_at) == borrowed + timedelta(hours=24)
    town.sweep(timedelta(days=3, hours=1))
    [overdue] = town.alerts("helmet_overdue")
    assert (overdue.status, overdue.severity) == ("open", "critical") and "missing" in overdue.message
    assert when(loan().missing_at) == borrowed + timedelta(days=3)
    town.sweep(timedelta(days=15))
    assert states(town.alerts("helmet_overdue")) == ["resolved"]  # it became "lost"
    [lost] = town.alerts("helmet_lost")
    assert (lost.status, lost.severity) == ("open", "critical")
    assert when(loan().lost_at) == borrowed + timedelta(days=14) and loan().status == "open"

    # The helmet turns up at another station.
    town.now = T0 + timedelta(days=16)
    fields = {"resident_id": "T-1"} if back == "helmet.stocked" else {}
    town.feed(town.next("LK-000B", 16 * 24 * 60, back, slot=3, helmet_id="H-1", **fields))
    closed = loan()
    assert (closed.status, closed.return_locker_id, when(closed.found_at)) == ("returned", "LK-000B", town.now)
    assert closed.lost_at is not None  # the history stays
    assert states(town.alerts("helmet_lost")) == ["resolved"]
    [found] = town.alerts("helmet_found")
    assert (found.status, found.severity, found.subject_id) == ("resolved", "info", "H-1")
    assert "is back at Station B" in found.message
    with Session(town.engine) as s:
        helmet = s.get(Helmet, "H-1")
        assert helmet is not None and (helmet.status, helmet.locker_id, helmet.slot) == ("in_slot", "LK-000B", 3)
    town.sweep(timedelta(days=17))
    assert len(town.alerts("helmet_found")) == 1 and states(town.alerts("helmet_lost")) == ["resolved"]


def test_a_loan_returned_in_time_raises_nothing(town: Town) -> None:
    a = "LK-000A"
    town.feed(
        town.next(a, 0, "helmet.stocked", slot=1, helmet_id="H-1"),
        town.next(a, 10, "helmet.borrowed", slot=1, helmet_id="H-1", resident_id="R-1"),
    )
    town.sweep(timedelta(hours=25))
    assert states(town.alerts("helmet_overdue")) == ["open"]
    town.feed(town.next("LK-000B", 26 * 60, "helmet.returned", slot=1, helmet_id="H-1"))
    assert states(town.alerts("helmet_overdue")) == ["resolved"]
    town.sweep(timedelta(days=20))
    assert town.alerts("helmet_lost") == [] and town.alerts("helmet_found") == []
    assert len(town.alerts("helmet_overdue")) == 1


def test_door_ajar_and_slot_faults_follow_the_slots_events_in_seq_order(town: Town) -> None:
    a = "LK-000A"
    ajar = town.next(a, 1, "slot.fault", slot=2, reason="door_ajar")
    shut = town.next(a, 2, "slot.cleared", slot=2, reason="door_ajar")
    town.feed(ajar)
    [alert] = town.alerts("door_ajar")
    assert (alert.subject_type, alert.subject_id, alert.status) == ("slot", "LK-000A/2", "open")
    town.feed(shut)
    assert states(town.alerts("door_ajar")) == ["resolved"]

    # Out of order: the clearing arrives first, then the fault it ended. Nothing is left open.
    jam = town.next(a, 3, "slot.fault", slot=3, reason="lock_jammed")
    fixed = town.next(a, 4, "slot.cleared", slot=3, reason="lock_jammed")
    town.feed(fixed)
    town.feed(jam)
    assert town.alerts("slot_fault") == []

    conflict = town.next(a, 5, "slot.fault", slot=4, reason="sensor_conflict")
    town.feed(conflict)
    [open_fault] = [x for x in town.alerts("slot_fault") if x.status == "open"]
    assert open_fault.subject_id == "LK-000A/4" and "sensors disagree" in open_fault.message
    town.feed(town.next(a, 6, "slot.cleared", slot=4))  # sensor_conflict clears without a reason
    assert all(x.status == "resolved" for x in town.alerts("slot_fault"))


def test_a_full_station_alerts_and_clears_with_hysteresis(town: Town) -> None:
    a = "LK-000A"
    town.feed(*[town.next(a, 0, "helmet.stocked", slot=n, helmet_id=f"H-{n}") for n in (1, 2, 3)])
    assert town.alerts("station_full") == []  # one free slot: not fewer than high_threshold 1
    town.feed(town.next(a, 1, "helmet.returned", slot=4, helmet_id="H-9"))
    assert states(town.alerts("station_full")) == ["open"]
    town.feed(town.next(a, 2, "helmet.borrowed", slot=4, helmet_id="H-9", resident_id="R-1"))
    assert states(town.alerts("station_full")) == ["open"]  # one free slot: inside the hysteresis
    town.feed(town.next(a, 3, "helmet.borrowed", slot=3, helmet_id="H-3", resident_id="R-1"))
    assert states(town.alerts("station_full")) == ["resolved"]
