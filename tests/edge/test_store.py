"""The locker's SQLite file: slot records, the event outbox, honoured passes, command acks."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from helmet_edge.slot_machine import EventDraft, Purpose, SlotRecord
from helmet_edge.store import Store
from helmet_protocol.events import EventKind, SlotState
from helmet_protocol.messages import Event, decode

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
LOCKER = "LK-0001"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "locker.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    s = Store(db_path, LOCKER)
    yield s
    s.close()


def borrowed(slot: int, helmet_id: str) -> EventDraft:
    return EventDraft(EventKind.HELMET_BORROWED, slot=slot, helmet_id=helmet_id, pass_id="P-1", resident_id="R-42")


def outbox(store: Store) -> list[Event]:
    return [decode(Event, payload) for _, payload in store.unsent(1, 1000)]


def add_events(store: Store, n: int) -> list[Event]:
    return store.commit(events=[borrowed(1, f"H-{i:04d}") for i in range(n)], now=NOW)


def test_commit_writes_slot_records_and_events_with_consecutive_seqs(store: Store) -> None:
    records = [
        SlotRecord(slot=1, state=SlotState.EMPTY),
        SlotRecord(
            slot=2,
            state=SlotState.UNLOCKING,
            helmet_id="H-0002",
            purpose=Purpose.BORROW,
            pass_id="P-1",
            resident_id="R-42",
            resume_state=SlotState.OCCUPIED,
        ),
    ]
    made = store.commit(records=records, events=[borrowed(1, "H-0001"), borrowed(3, "H-0003")], now=NOW)

    assert [e.seq for e in made] == [1, 2]
    assert len({e.event_id for e in made}) == 2
    assert all(e.locker_id == LOCKER and e.ts == NOW for e in made)
    assert outbox(store) == made
    assert store.last_seq() == 2
    assert store.load_slots(3) == [*records, SlotRecord(slot=3, state=SlotState.EMPTY)]

    more = add_events(store, 3)
    assert [e.seq for e in more] == [3, 4, 5]
    assert [e.seq for e in outbox(store)] == [1, 2, 3, 4, 5]


def test_an_event_that_happened_before_it_was_recorded_says_when(store: Store) -> None:
    late = EventDraft(EventKind.HELMET_BORROWED, slot=1, helmet_id="H-0001", earlier_s=600.0)
    [made] = store.commit(events=[late], now=NOW)
    assert made.ts == NOW - timedelta(minutes=10)
    assert outbox(store)[0].ts == NOW - timedelta(minutes=10)


def test_commit_without_events_keeps_the_seq(store: Store) -> None:
    add_events(store, 2)
    rec = SlotRecord(slot=1, state=SlotState.OCCUPIED, helmet_id="H-1")
    assert store.commit(records=[rec], now=NOW) == []
    assert store.last_seq() == 2
    assert [e.seq for e in add_events(store, 1)] == [3]


def test_everything_survives_reopening_the_file(db_path: Path) -> None:
    first = Store(db_path, LOCKER)
    rec = SlotRecord(
        slot=2,
        state=SlotState.OPEN,
        purpose=Purpose.RETURN,
        incoming_helmet_id="H-0009",
        resume_state=SlotState.EMPTY,
        present_at_open=False,
    )
    made = first.commit(
        records=[rec], events=[borrowed(1, "H-0001")], honour=[("P-1", NOW + timedelta(minutes=5))], now=NOW
    )
    first.close()

    again = Store(db_path, LOCKER)
    try:
        assert again.load_slots(2)[1] == rec
        assert outbox(again) == made
        assert again.is_honoured("P-1")
    finally:
        again.close()


def test_seq_continues_after_reopening_and_is_never_reused(db_path: Path) -> None:
    store = Store(db_path, LOCKER)
    add_events(store, 3)
    store.acknowledge(3)  # the outbox is now empty
    assert store.outbox_size() == 0
    store.close()

    store = Store(db_path, LOCKER)
    try:
        assert [e.seq for e in add_events(store, 2)] == [4, 5]
        assert store.acked_seq() == 3
    finally:
        store.close()


def test_acknowledge_drops_events_up_to_seq_and_nothing_else(store: Store) -> None:
    add_events(store, 5)
    assert store.acknowledge(3) == 3
    assert [e.seq for e in outbox(store)] == [4, 5]
    assert store.outbox_size() == 2
    assert store.acked_seq() == 3

    assert store.acknowledge(2) == 0, "an older ack changes nothing"
    assert store.acknowledge(3) == 0
    assert [e.seq for e in outbox(store)] == [4, 5]
    assert store.acked_seq() == 3

    assert store.acknowledge(5) == 2
    assert store.outbox_size() == 0
    assert [e.seq for e in add_events(store, 1)] == [6]


def test_unsent_pages_from_a_seq(store: Store) -> None:
    add_events(store, 6)
    assert [s for s, _ in store.unsent(3, 2)] == [3, 4]
    assert [s for s, _ in store.unsent(6, 10)] == [6]
    assert store.unsent(7, 10) == []


def test_failed_commit_leaves_nothing_half_written(store: Store) -> None:
    before = SlotRecord(slot=1, state=SlotState.OCCUPIED, helmet_id="H-0001")
    store.commit(records=[before], events=[borrowed(2, "H-0002")], now=NOW)

    after = SlotRecord(slot=1, state=SlotState.EMPTY)
    bad = EventDraft(EventKind.HELMET_BORROWED, slot=1, helmet_id="not an id!")  # fails the Id pattern
    with pytest.raises(ValidationError):
        store.commit(
            records=[after], events=[borrowed(1, "H-0001"), bad], honour=[("P-9", NOW + timedelta(minutes=5))], now=NOW
        )

    assert store.load_slots(1) == [before]
    assert [e.seq for e in outbox(store)] == [1]
    assert store.last_seq() == 1
    assert not store.is_honoured("P-9")
    assert [e.seq for e in add_events(store, 1)] == [2], "no gap left by the failed commit"


def test_commit_interrupted_midway_rolls_back(store: Store) -> None:
    def drafts() -> Iterator[EventDraft]:
        yield borrowed(1, "H-0001")
        raise KeyboardInterrupt  # e.g. the service is stopped mid-commit

    with pytest.raises(KeyboardInterrupt):
        store.commit(records=[SlotRecord(slot=1, state=SlotState.EMPTY)], events=drafts(), now=NOW)
    assert store.outbox_size() == 0
    assert store.last_seq() == 0
    assert store.load_slots(1) == [SlotRecord(slot=1, state=SlotState.EMPTY)]
    # The store is still usable afterwards.
    assert [e.seq for e in add_events(store, 1)] == [1]


def test_file_uses_wal(store: Store, db_path: Path) -> None:
    other = sqlite3.connect(db_path)
    try:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        other.close()


def test_slots_never_seen_start_empty(store: Store) -> None:
    loaded = store.load_slots(3)
    assert loaded == [SlotRecord(slot=n, state=SlotState.EMPTY) for n in (1, 2, 3)]


def test_honoured_passes_are_remembered_until_they_expire(store: Store) -> None:
    expires = NOW + timedelta(minutes=7)
    store.commit(honour=[("P-1", expires)], now=NOW)
    assert store.is_honoured("P-1")
    assert not store.is_honoured("P-2")

    store.forget_expired_passes(expires - timedelta(seconds=1))
    assert store.is_honoured("P-1")
    store.forget_expired_passes(expires + timedelta(seconds=1))
    assert not store.is_honoured("P-1")


def test_command_ack_is_stored_once(store: Store) -> None:
    assert store.command_ack("c-1") is None
    store.save_command_ack("c-1", b'{"ok":true}', NOW)
    store.save_command_ack("c-1", b'{"ok":false}', NOW + timedelta(seconds=1))
    assert store.command_ack("c-1") == b'{"ok":true}'
    assert store.command_ack("c-2") is None


def test_old_command_answers_are_forgotten_and_recent_ones_kept(store: Store) -> None:
    store.save_command_ack("c-old", b'{"ok":true}', NOW - timedelta(days=8))
    store.save_command_ack("c-new", b'{"ok":true}', NOW - timedelta(days=1))
    assert store.forget_commands_before(NOW - timedelta(days=7)) == 1
    assert store.command_ack("c-old") is None
    assert store.command_ack("c-new") == b'{"ok":true}'


def test_config_json_round_trips(store: Store) -> None:
    assert store.get_json("config") is None
    store.put_json("config", {"max_quantity": 2, "revoked_pass_ids": ["a"]})
    assert store.get_json("config") == {"max_quantity": 2, "revoked_pass_ids": ["a"]}


def test_the_store_is_for_the_services_user_alone(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Its file 0600 (and SQLite's -wal and -shm with it) in a folder made 0700; a loose folder is said."""
    store = Store(tmp_path / "data" / "locker.db", "LK-0001")
    store.commit(events=[EventDraft(EventKind.PASS_REJECTED, reason="expired")], now=datetime.now(UTC))
    files = sorted((tmp_path / "data").iterdir())
    assert {f.name for f in files} >= {"locker.db", "locker.db-wal"}
    assert {f.name: f.stat().st_mode & 0o777 for f in files} == dict.fromkeys((f.name for f in files), 0o600)
    assert (tmp_path / "data").stat().st_mode & 0o777 == 0o700
    store.close()
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o755)
    loose.chmod(0o755)
    Store(loose / "locker.db", "LK-0001").close()
    assert "can be read by other users" in caplog.text
