"""Ingest: validate, store and apply what lockers publish.

:class:`Ingestor` holds the database side and is independent of MQTT, so tests
and benchmarks can feed it directly; :class:`IngestWorker` connects it to the
broker on the shared subscription.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlmodel import Session, col, select

from helmet_cloud.adapters.metrics import IngestMetrics
from helmet_cloud.adapters.mqtt import CloudMqtt
from helmet_cloud.ingest import clocks
from helmet_cloud.ingest.derived import Fact
from helmet_cloud.ingest.event_store import advance_acks, insert_new
from helmet_cloud.ingest.inventory import update_helmets
from helmet_cloud.ingest.slot_state import update_slots
from helmet_cloud.models import DeadLetter, Locker, LockerCommand, Slot
from helmet_cloud.services import feedcache
from helmet_cloud.settings import CloudSettings
from helmet_cloud.timeutil import aware, utcnow
from helmet_protocol import topics
from helmet_protocol.errors import ProtocolError
from helmet_protocol.messages import Ack, Command, CommandAck, Event, State, Status, decode
from helmet_protocol.topics import Channel

log = logging.getLogger(__name__)

Publish = Callable[[str, bytes, bool], object]
# One message: topic, payload and, when it came live from the broker (not a retained copy), when it arrived.
Inbound = tuple[str, bytes] | tuple[str, bytes, datetime]
# Called after each committed batch with its newly stored event rows and the lockers heard from (alerts).
AfterCommit = Callable[[list[dict[str, Any]], set[str]], None]
RESEND_EVERY = timedelta(seconds=30)


def _text(value: str, limit: int) -> str:
    # PostgreSQL text cannot hold NUL: a hostile payload with one must still be kept, not break the insert.
    return value[:limit].replace("\x00", "\ufffd")


def _dead_letter(topic: str, payload: bytes, reason: str, now: datetime) -> DeadLetter:
    return DeadLetter(
        topic=_text(topic, 256),
        payload=_text(payload[:16384].decode("utf-8", "replace"), 16384),
        reason=_text(reason, 500),
        received_at=now,
    )


def _transient(exc: Exception) -> bool:
    """The database is restarting or unreachable (try again), as opposed to refusing this data (never will)."""
    return isinstance(exc, DBAPIError) and (
        exc.connection_invalidated or isinstance(exc, (OperationalError, InterfaceError))
    )


class Ingestor:
    def dead_letter(self, topic: str, payload: bytes, reason: str) -> None:
        """Keep a message ingest could not apply, with the reason, in its own transaction."""
        with Session(self.engine) as session:
            session.add(_dead_letter(topic, payload, reason, utcnow()))
            session.commit()
        if self.metrics is not None:
            self.metrics.dead_letters.inc()

    def __init__(
        self,
        engine: Engine,
        publish: Publish,
        metrics: IngestMetrics | None = None,
        *,
        on_commit: AfterCommit | None = None,
    ) -> None:
        self.engine = engine
        self.publish = publish
        self.metrics = metrics
        self.on_commit = on_commit

    def handle(self, batch: Sequence[Inbound]) -> None:
        """Apply one batch in one transaction, then publish the acks it earned."""
        started = time.perf_counter()
        acks: dict[str, int] = {}
        resends: list[tuple[str, int]] = []
        heard: set[str] = set()
        decoded = dead = 0
        feed_changed = False  # slots or a locker's status: what the public feed shows
        parsed = [(m[0], m[1], self._parse(m[0]), m[2] if len(m) > 2 else None) for m in batch]
        with Session(self.engine) as session:
            named = sorted({t.locker_id for _, _, t, _ in parsed if not isinstance(t, ProtocolError)})
            lockers = {lk.id: lk for lk in session.exec(select(Locker).where(col(Locker.id).in_(named))).all()}
            rows: dict[str, dict[str, Any]] = {}
            now = utcnow()
            for topic_str, payload, t, live_at in parsed:
                try:
                    if isinstance(t, ProtocolError):
                        raise t
                    if t.locker_id not in lockers:
                        raise ProtocolError(f"locker {t.locker_id} is not registered")
                    heard.add(t.locker_id)
                    if t.channel == Channel.EVENTS:
                        ev = decode(Event, payload)
                        self._check_owner(t.locker_id, ev.locker_id)
                        decoded += 1
                        fix = clocks.correction(lockers[t.locker_id], event_ts=ev.ts, received_at=live_at)
                        rows.setdefault(ev.event_id, self._row(ev, payload, now, fix))
                    elif t.channel == Channel.STATUS:
                        st = decode(Status, payload)
                        self._check_owner(t.locker_id, st.locker_id)
                        self._status(lockers[t.locker_id], st)
                        if live_at is not None and st.online:
                            clocks.observe(
                                lockers[t.locker_id], status_ts=st.ts, received_at=live_at, boot_id=st.boot_id
                            )
                        feed_changed = True
                    elif t.channel == Channel.STATE:
                        snap = decode(State, payload)
                        self._check_owner(t.locker_id, snap.locker_id)
                        self._snapshot(session, lockers[t.locker_id], snap)
                    elif t.channel == Channel.CMD_ACK:
                        self._command_result(session, t.locker_id, decode(CommandAck, payload))
                    else:
                        raise ProtocolError(f"lockers do not publish on {t.channel.value}")
                except ProtocolError as exc:
                    log.warning("dead-lettered message on %s: %s", topic_str, exc)
                    dead += 1
                    session.add(_dead_letter(topic_str, payload, str(exc), now))
            stored = insert_new(session, list(rows.values()))
            new = [rows[i] for i in stored]
            facts = [Fact.of(r) for r in new]
            update_helmets(session, facts)
            feed_changed = bool(update_slots(session, facts)) or feed_changed
            sent = sorted({r["locker_id"] for r in rows.values()})
            gaps = advance_acks(session, [lockers[lk] for lk in sent])
            for locker_id in sent:
                locker = lockers[locker_id]
                gap_after = gaps.get(locker_id)
                acks[locker_id] = locker.acked_seq
                if gap_after is not None and (
                    locker.resend_asked_at is None or now - aware(locker.resend_asked_at) > RESEND_EVERY
                ):
                    locker.resend_asked_at = now
                    resends.append((locker_id, locker.acked_seq + 1))
            for locker_id in heard:  # last, so each locker's changes go out in one UPDATE
                lockers[locker_id].last_heard_at = now
            session.commit()
        if feed_changed:
            feedcache.bump()
        if self.metrics is not None:
            self.metrics.observe_batch(
                stored=[(r["kind"], r["known"], r["ts"]) for r in new],
                duplicates=decoded - len(new),
                dead_letters=dead,
                started=started,
            )
        for locker_id, seq in acks.items():
            self.publish(topics.topic(locker_id, Channel.ACK), Ack(locker_id=locker_id, seq=seq).to_json(), True)
        for locker_id, from_seq in resends:
            log.info("asking %s to resend from seq %d", locker_id, from_seq)
            cmd = Command(cmd_id=f"resend-{uuid.uuid4().hex[:12]}", op="resend", from_seq=from_seq, ts=utcnow())
            self.publish(topics.topic(locker_id, Channel.CMD), cmd.to_json(), False)
        if self.on_commit is not None:
            try:
                self.on_commit(new, heard)
            except Exception:  # alerts must never hold up ingest or its acks
                log.exception("after-commit hook failed for a batch of %d", len(batch))

    @staticmethod
    def _check_owner(topic_locker: str, payload_locker: str) -> None:
        if topic_locker != payload_locker:
            raise ProtocolError(f"payload names locker {payload_locker} but came on {topic_locker}'s topic")

    @staticmethod
    def _row(ev: Event, payload: bytes, now: datetime, fix: timedelta) -> dict[str, Any]:
        return {
            "event_id": ev.event_id,
            "locker_id": ev.locker_id,
            "seq": ev.seq,
            "ts": ev.ts + fix,
            "clock_offset_ms": round(fix.total_seconds() * 1000),
            "kind": ev.kind,
            "known": ev.known_kind is not None,
            "slot": ev.slot,
            "helmet_id": ev.helmet_id,
            "pass_id": ev.pass_id,
            "resident_id": ev.resident_id,
            "payload": payload.decode(),
            "received_at": now,
        }

    @staticmethod
    def _parse(topic_str: str) -> topics.Topic | ProtocolError:
        """The topic, or why it is refused (the message is dead-lettered in the batch's transaction)."""
        try:
            return topics.parse(topic_str)
        except ProtocolError as exc:
            return exc

    @staticmethod
    def _command_result(session: Session, locker_id: str, ack: CommandAck) -> None:
        cmd = session.get(LockerCommand, ack.cmd_id)
        if cmd is None or cmd.locker_id != locker_id:
            if ack.cmd_id.startswith("resend-"):
                return  # ingest's own resend requests are not recorded as commands
            raise ProtocolError(f"ack for unknown command {ack.cmd_id!r}")
        cmd.status = "ok" if ack.ok else "failed"
        cmd.error = ack.error
        cmd.result = json.dumps(ack.data) if ack.data is not None else None
        cmd.answered_at = ack.ts
        session.add(cmd)

    @staticmethod
    def _status(locker: Locker, st: Status) -> None:
        if locker.last_seen is not None and aware(locker.last_seen) > st.ts and locker.boot_id == st.boot_id:
            if st.online:
                return  # an older status overtaken by a newer one
            # The Last Will carries the time it was set at connect, older than that boot's "online": apply it.
            locker.online = False
            return
        locker.online, locker.boot_id, locker.fw, locker.last_seen = st.online, st.boot_id, st.fw, st.ts

    @staticmethod
    def _snapshot(session: Session, locker: Locker, snap: State) -> None:
        """Keep the locker's own report next to our derived view; flag disagreement."""
        ours = {s.slot: s for s in session.exec(select(Slot).where(Slot.locker_id == locker.id)).all()}
        diffs = []
        for rep in snap.slots:
            row = ours.get(rep.slot) or Slot(locker_id=locker.id, slot=rep.slot)
            row.reported_state = rep.state
            session.add(row)
            if (
                snap.seq <= locker.acked_seq
                and rep.state in ("occupied", "empty", "disabled", "fault")
                and (rep.state != row.state or (rep.helmet_id or None) != row.helmet_id)
            ):
                diffs.append(
                    f"slot {rep.slot}: locker says {rep.state} {rep.helmet_id or ''}, cloud has "
                    f"{row.state} {row.helmet_id or ''}".strip()
                )
        if len(snap.slots) != locker.slot_count:  # wired differently from what was registered
            diffs.insert(0, f"locker reports {len(snap.slots)} slots, registered with {locker.slot_count}")
        locker.snapshot_mismatch = "; ".join(diffs)[:1000] or None
        if diffs:
            log.warning("state snapshot of %s disagrees: %s", locker.id, locker.snapshot_mismatch)


class IngestWorker:
    """Subscribes on the shared subscription and feeds batches to an :class:`Ingestor`."""

    def __init__(
        self,
        settings: CloudSettings,
        engine: Engine,
        *,
        worker_id: str | None = None,
        metrics: IngestMetrics | None = None,
        on_commit: AfterCommit | None = None,
    ) -> None:
        self.settings = settings
        self.queue: queue.Queue[Inbound] = queue.Queue()
        share = topics.shared if settings.ingest_shared else (lambda f: f)
        subs = (
            share(topics.all_lockers(Channel.EVENTS)),
            topics.all_lockers(Channel.STATUS),
            topics.all_lockers(Channel.STATE),
            share(topics.all_lockers(Channel.CMD_ACK)),
        )
        self.mqtt = CloudMqtt(
            settings,
            worker_id or f"ingest-{uuid.uuid4().hex[:8]}",
            subscriptions=subs,
            on_message=lambda t, p, retained: self.queue.put((t, p) if retained else (t, p, utcnow())),
        )
        self.ingestor = Ingestor(
            engine, lambda t, p, r: self.mqtt.publish(t, p, retain=r), metrics, on_commit=on_commit
        )
        self.handled = 0  # messages applied by this worker
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ingest", daemon=True)

    def start(self) -> None:
        self.mqtt.start()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.mqtt.stop()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                first = self.queue.get(timeout=0.2)
            except queue.Empty:
                continue
            batch = [first]
            while len(batch) < self.settings.ingest_batch:
                try:
                    batch.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            self._apply(batch)

    def _apply(self, batch: list[Inbound]) -> None:
        """Apply a batch; a message that breaks ingest itself is dead-lettered, never retried forever."""
        try:
            self.ingestor.handle(batch)
            self.handled += len(batch)
        except Exception as exc:
            if _transient(exc):
                self._retry(batch)
            elif len(batch) > 1:  # find the message that breaks it (even a value the database refuses)
                for item in batch:
                    self._apply([item])
            else:
                topic, payload = batch[0][0], batch[0][1]
                log.exception("ingest failed on one message from %s; dead-lettered", topic)
                try:
                    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                    self.ingestor.dead_letter(topic, payload, f"internal error while ingesting: {reason}"[:500])
                except Exception as again:
                    if not _transient(again):
                        raise
                    self._retry(batch)

    def _retry(self, batch: list[Inbound]) -> None:
        """The database is restarting or unreachable: keep the batch and try again shortly."""
        log.exception("ingest batch of %d failed on the database; retrying", len(batch))
        for item in batch:
            self.queue.put(item)
        self._stop.wait(1.0)
