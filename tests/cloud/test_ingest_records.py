"""What ingest stores is defined once: the stored-event record, its reason column, its own resend commands."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from support.cloud_events import Recorder, event, inbound, insert_town

from helmet_cloud.adapters.database import alembic_config, make_engine
from helmet_cloud.domain.states import HelmetStatus, LoanStatus
from helmet_cloud.ingest.ingestor import HANDLERS, Ingestor
from helmet_cloud.ingest.records import COLUMNS
from helmet_cloud.models import DeadLetter, LockerCommand, RawEvent
from helmet_cloud.services.committed import CommitHook, Committed
from helmet_cloud.services.feedcache import FeedCache
from helmet_protocol.messages import CommandAck
from helmet_protocol.topics import Channel

T0 = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)


@pytest.fixture
def town(engine: Engine) -> Engine:
    insert_town(engine, {"LK-000A": ("ST-A", 4)})
    return engine


def test_the_table_has_exactly_the_stored_event_columns() -> None:
    assert set(RawEvent.__table__.columns.keys()) == set(COLUMNS)  # type: ignore[attr-defined]


def test_each_channel_a_locker_publishes_on_has_one_handler() -> None:
    assert set(HANDLERS) == {Channel.EVENTS, Channel.STATUS, Channel.STATE, Channel.CMD_ACK}


def test_an_events_reason_is_stored_in_its_own_column(town: Engine) -> None:
    Ingestor(town, Recorder()).handle(
        inbound(
            [
                event("LK-000A", 1, T0, "pass.rejected", reason="expired"),
                event("LK-000A", 2, T0, "slot.fault", slot=1, reason="door_ajar"),
                event("LK-000A", 3, T0, "helmet.stocked", slot=2, helmet_id="H-2"),
                event("LK-000A", 4, T0, "pass.rejected", reason="bad\x00sig"),  # NUL: PostgreSQL text cannot hold it
            ]
        )
    )
    with Session(town) as s:
        reasons = {e.seq: e.reason for e in s.exec(select(RawEvent)).all()}
        assert s.exec(select(DeadLetter)).all() == []
    assert reasons == {1: "expired", 2: "door_ajar", 3: None, 4: "bad\ufffdsig"}


def test_the_migration_fills_in_the_reason_of_events_stored_before(database_url: str) -> None:
    cfg = alembic_config(database_url)
    command.upgrade(cfg, "0007")
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            for seq, payload in enumerate(
                [
                    '{"v": 1, "kind": "pass.rejected", "reason": "replayed"}',
                    '{"v": 1, "kind": "helmet.stocked", "detail": "no \\"reason\\" here"}',
                    '{"v": 1, "kind": "pass.rejected", "reason": "x\\u0000y"}',
                ],
                start=1,
            ):
                conn.execute(
                    text(
                        "INSERT INTO rawevent (event_id, locker_id, seq, ts, clock_offset_ms, kind, known, payload, "
                        "received_at) VALUES (:id, 'LK-0001', :seq, :ts, 0, 'k', true, :p, :ts)"
                    ),
                    {"id": f"e{seq}", "seq": seq, "ts": T0, "p": payload},
                )
        command.upgrade(cfg, "head")
        with engine.connect() as conn:
            got = dict(conn.execute(text("SELECT seq, reason FROM rawevent ORDER BY seq")).all())
    finally:
        engine.dispose()
    assert got == {1: "replayed", 2: None, 3: "x\ufffdy"}


def test_resend_requests_are_recorded_as_commands_and_their_acks_land_there(town: Engine) -> None:
    out = Recorder()
    ingest = Ingestor(town, out)
    ingest.handle(inbound([event("LK-000A", 1, T0, "helmet.stocked", slot=1, helmet_id="H-1")]))
    ingest.handle(inbound([event("LK-000A", 3, T0, "helmet.stocked", slot=3, helmet_id="H-3")]))
    (asked,) = [p for t, p, _ in out.sent if t == "helmet/v1/LK-000A/cmd"]
    with Session(town) as s:
        row = s.get(LockerCommand, asked["cmd_id"])
        assert row is not None and (row.op, row.requested_by, row.status) == ("resend", "ingest", "sent")
    ack = CommandAck(cmd_id=asked["cmd_id"], ok=True, data={"resent": 1}, ts=T0)
    ingest.handle(inbound([("helmet/v1/LK-000A/cmd/ack", ack.to_json())]))
    with Session(town) as s:
        row = s.get(LockerCommand, asked["cmd_id"])
        assert row is not None and row.status == "ok"
        assert s.exec(select(DeadLetter)).all() == []  # the locker's answer is not "an ack for an unknown command"


def test_the_database_holds_the_states_values_as_spelled_once(town: Engine) -> None:
    Ingestor(town, Recorder()).handle(
        inbound(
            [
                event("LK-000A", 1, T0, "helmet.stocked", slot=1, helmet_id="H-1"),
                event("LK-000A", 2, T0, "helmet.stocked", slot=2, helmet_id="H-2"),
                event("LK-000A", 3, T0, "helmet.borrowed", slot=1, helmet_id="H-1", resident_id="R-1"),
                event("LK-000A", 4, T0, "helmet.borrowed", slot=2, helmet_id="H-2", resident_id="R-1"),
                event("LK-000A", 5, T0, "helmet.returned", slot=3, helmet_id="H-2"),
            ]
        )
    )
    with town.connect() as conn:
        helmets = set(conn.execute(text("SELECT status FROM helmet")).scalars())
        loans = set(conn.execute(text("SELECT status FROM loan")).scalars())
    assert helmets == {HelmetStatus.IN_SLOT.value, HelmetStatus.ON_LOAN.value}
    assert loans == {LoanStatus.OPEN.value, LoanStatus.RETURNED.value}


def test_a_failing_subscriber_does_not_keep_a_commit_from_the_others(caplog: pytest.LogCaptureFixture) -> None:
    hook, heard = CommitHook(), []

    def broken(_change: Committed) -> None:
        raise RuntimeError("webhook down")

    cache = FeedCache()
    hook.subscribe(broken)
    hook.subscribe(cache.changed)
    hook.subscribe(heard.append)
    assert cache.get("doc", 60, lambda: b"1") == b"1"
    hook(Committed(lockers_heard=frozenset({"LK-000A"})))  # nothing the feed shows
    assert cache.get("doc", 60, lambda: b"2") == b"1"
    hook(Committed(feed_changed=True))
    assert cache.get("doc", 60, lambda: b"3") == b"3"
    assert [c.feed_changed for c in heard] == [False, True]
    assert "after-commit subscriber" in caplog.text and "webhook down" in caplog.text
