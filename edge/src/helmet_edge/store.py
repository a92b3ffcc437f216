"""The locker's durable memory: slot records, the event outbox, honoured passes.

SQLite in WAL mode with ``synchronous=FULL``: an event and the slot change that
caused it are committed together, before the lock moves. An event leaves the
outbox only when the cloud's ``ack`` covers its ``seq``.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from helmet_edge.slot_machine import EventDraft, SlotRecord
from helmet_protocol.events import SlotState
from helmet_protocol.messages import Event, format_ts, new_event_id

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS slots (slot INTEGER PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    payload BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS honoured (pass_id TEXT PRIMARY KEY, expires_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS commands (cmd_id TEXT PRIMARY KEY, ack BLOB NOT NULL, at TEXT NOT NULL);
"""
log = logging.getLogger(__name__)
DB_FILE = "locker.db"  # in the service's data_dir


class Store:
    """One SQLite file per locker. Safe to call from the service and MQTT threads."""

    def __init__(self, path: Path, locker_id: str) -> None:
        # Passes honoured, commands and events with resident ids: for the service's user alone (SQLite gives
        # its -wal and -shm files the database file's mode).
        if not path.parent.exists():
            path.parent.mkdir(mode=0o700, parents=True)
        elif path.parent.stat().st_mode & 0o077:
            log.warning("%s can be read by other users: chmod 700 it (it holds the locker's store)", path.parent)
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        os.chmod(path, 0o600)
        self.locker_id = locker_id
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)

    @classmethod
    def in_data_dir(cls, data_dir: Path, locker_id: str) -> Store:
        """The locker's store where the service, ``helmet-edge status`` and ``enroll`` all look for it."""
        return cls(data_dir / DB_FILE, locker_id)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- slots ---------------------------------------------------------------

    def load_slots(self, slot_count: int) -> list[SlotRecord]:
        """Stored records; a slot never seen before starts empty (start-up reconciliation then
        records any helmet its sensor finds)."""
        with self._lock:
            rows = dict(self._db.execute("SELECT slot, record FROM slots").fetchall())
        records = []
        for n in range(1, slot_count + 1):
            if n in rows:
                records.append(SlotRecord.from_dict(json.loads(rows[n])))
            else:
                records.append(SlotRecord(slot=n, state=SlotState.EMPTY))
        return records

    # -- the one write path --------------------------------------------------

    def commit(
        self,
        *,
        records: Iterable[SlotRecord] = (),
        events: Iterable[EventDraft] = (),
        honour: Iterable[tuple[str, datetime]] = (),
        now: datetime,
    ) -> list[Event]:
        """Record slot changes, their events and honoured passes in one transaction."""
        made: list[Event] = []
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                for rec in records:
                    db.execute("INSERT OR REPLACE INTO slots VALUES (?, ?)", (rec.slot, json.dumps(rec.to_dict())))
                for pass_id, expires in honour:
                    db.execute("INSERT OR REPLACE INTO honoured VALUES (?, ?)", (pass_id, format_ts(expires)))
                seq = self._meta_int("last_seq")
                for draft in events:
                    seq += 1
                    event = Event(
                        event_id=new_event_id(),
                        locker_id=self.locker_id,
                        seq=seq,
                        ts=now - timedelta(seconds=draft.earlier_s),
                        kind=draft.kind,
                        slot=draft.slot,
                        helmet_id=draft.helmet_id,
                        pass_id=draft.pass_id,
                        resident_id=draft.resident_id,
                        reason=draft.reason,
                        detail=draft.detail,
                    )
                    db.execute("INSERT INTO outbox VALUES (?, ?, ?)", (seq, event.event_id, event.to_json()))
                    made.append(event)
                if made:
                    self._set_meta("last_seq", str(seq))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return made

    # -- outbox --------------------------------------------------------------

    def last_seq(self) -> int:
        with self._lock:
            return self._meta_int("last_seq")

    def acked_seq(self) -> int:
        with self._lock:
            return self._meta_int("acked_seq")

    def unsent(self, from_seq: int, limit: int) -> list[tuple[int, bytes]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, payload FROM outbox WHERE seq >= ? ORDER BY seq LIMIT ?", (from_seq, limit)
            ).fetchall()
        return [(int(s), bytes(p)) for s, p in rows]

    def outbox_size(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM outbox").fetchone()[0])

    def acknowledge(self, seq: int) -> int:
        """The cloud holds every event up to ``seq``: drop them. Returns how many left."""
        with self._lock:
            if seq <= self._meta_int("acked_seq"):
                return 0
            self._db.execute("BEGIN IMMEDIATE")
            cur = self._db.execute("DELETE FROM outbox WHERE seq <= ?", (seq,))
            self._set_meta("acked_seq", str(min(seq, self._meta_int("last_seq"))))
            self._db.execute("COMMIT")
            return cur.rowcount

    def start_after(self, seq: int) -> None:
        """Enrolment: the cloud holds every seq up to ``seq``, so new events are numbered after it.

        Never lowers anything. Like an ``ack`` for ``seq``, it drops outbox events up to it.
        """
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for key in ("last_seq", "acked_seq"):
                    if self._meta_int(key) < seq:
                        self._set_meta(key, str(seq))
                self._db.execute("DELETE FROM outbox WHERE seq <= ?", (seq,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    # -- passes and commands ---------------------------------------------------

    def is_honoured(self, pass_id: str) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM honoured WHERE pass_id = ?", (pass_id,)).fetchone() is not None

    def forget_expired_passes(self, now: datetime) -> None:
        with self._lock:
            self._db.execute("DELETE FROM honoured WHERE expires_at < ?", (format_ts(now),))

    def forget_commands_before(self, before: datetime) -> int:
        """Drop the answers to commands executed before ``before``; return how many went."""
        with self._lock:
            return self._db.execute("DELETE FROM commands WHERE at < ?", (format_ts(before),)).rowcount

    def command_ack(self, cmd_id: str) -> bytes | None:
        with self._lock:
            row = self._db.execute("SELECT ack FROM commands WHERE cmd_id = ?", (cmd_id,)).fetchone()
        return bytes(row[0]) if row else None

    def save_command_ack(self, cmd_id: str, ack: bytes, now: datetime) -> None:
        with self._lock:
            self._db.execute("INSERT OR IGNORE INTO commands VALUES (?, ?, ?)", (cmd_id, ack, format_ts(now)))

    # -- config ----------------------------------------------------------------

    def get_json(self, key: str) -> Any:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put_json(self, key: str, value: Any) -> None:
        with self._lock:
            self._set_meta(key, json.dumps(value))

    def _meta_int(self, key: str) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row else 0

    def _set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))
