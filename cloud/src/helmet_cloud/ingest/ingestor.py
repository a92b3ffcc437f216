"""The database side of ingest: validate a batch of messages, store and fold them in one transaction, ack.

Independent of MQTT, so tests and benchmarks feed it directly; :mod:`.worker`
connects it to the broker. Each channel a locker publishes on has one handler
(:data:`HANDLERS`); a message that fails validation is dead-lettered with the
reason, in the batch's own transaction.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from helmet_cloud.adapters.metrics import IngestMetrics
from helmet_cloud.domain.states import CommandStatus
from helmet_cloud.ingest import clocks
from helmet_cloud.ingest.derived import Fact
from helmet_cloud.ingest.event_store import advance_acks, insert_new
from helmet_cloud.ingest.inventory import update_helmets
from helmet_cloud.ingest.records import Inbound, StoredEvent
from helmet_cloud.ingest.slot_state import update_slots
from helmet_cloud.models import DeadLetter, Locker, LockerCommand, MergedResident, Slot
from helmet_cloud.services import pass_refusals
from helmet_cloud.services.committed import Committed
from helmet_cloud.timeutil import aware, utcnow
from helmet_protocol import topics
from helmet_protocol.errors import ProtocolError
from helmet_protocol.events import RejectReason
from helmet_protocol.messages import Ack, Command, CommandAck, Event, State, Status, decode, new_cmd_id
from helmet_protocol.topics import Channel

log = logging.getLogger(__name__)

Publish = Callable[[str, bytes, bool], object]
# Told of each committed batch: its newly stored events, the lockers heard from, whether the feed changed.
AfterCommit = Callable[[Committed], None]
RESEND_EVERY = timedelta(seconds=30)
# Who the resend commands ingest sends itself are recorded as requested by.
INGEST = "ingest"


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


@dataclass(slots=True)
class _Batch:
    """What one batch has gathered so far, inside its transaction."""

    session: Session
    lockers: dict[str, Locker]
    now: datetime
    events: dict[str, StoredEvent] = field(default_factory=dict)  # by event_id: a batch may hold a copy twice
    heard: set[str] = field(default_factory=set)
    decoded: int = 0
    feed_changed: bool = False  # slots or a locker's status: what the public feed shows
    passes_changed: bool = False  # a pass was used, or a claim on one released: what lockers must refuse


def _owned(topic: topics.Topic, payload_locker: str) -> None:
    if topic.locker_id != payload_locker:
        raise ProtocolError(f"payload names locker {payload_locker} but came on {topic.locker_id}'s topic")


def _on_event(b: _Batch, topic: topics.Topic, m: Inbound) -> None:
    ev = decode(Event, m.payload)
    _owned(topic, ev.locker_id)
    b.decoded += 1
    fix = clocks.correction(b.lockers[topic.locker_id], event_ts=ev.ts, received_at=m.live_at)
    b.events.setdefault(ev.event_id, StoredEvent.of(ev, m.payload, received_at=b.now, fix=fix))


def _on_status(b: _Batch, topic: topics.Topic, m: Inbound) -> None:
    st = decode(Status, m.payload)
    _owned(topic, st.locker_id)
    locker = b.lockers[topic.locker_id]
    _apply_status(locker, st)
    if m.live_at is not None and st.online:
        clocks.observe(locker, status_ts=st.ts, received_at=m.live_at, boot_id=st.boot_id)
    b.feed_changed = True


def _on_state(b: _Batch, topic: topics.Topic, m: Inbound) -> None:
    snap = decode(State, m.payload)
    _owned(topic, snap.locker_id)
    _compare_snapshot(b.session, b.lockers[topic.locker_id], snap)


def _on_cmd_ack(b: _Batch, topic: topics.Topic, m: Inbound) -> None:
    ack = decode(CommandAck, m.payload)
    cmd = b.session.get(LockerCommand, ack.cmd_id)
    if cmd is None or cmd.locker_id != topic.locker_id:
        raise ProtocolError(f"ack for unknown command {ack.cmd_id!r}")
    cmd.status = CommandStatus.OK if ack.ok else CommandStatus.FAILED
    cmd.error = ack.error
    cmd.result = json.dumps(ack.data) if ack.data is not None else None
    cmd.answered_at = ack.ts
    b.session.add(cmd)
    if cmd.op == "borrow" and not ack.ok and cmd.pass_id is not None and not _honoured_before(ack.error):
        # "Open now" claimed the pass for this command; the locker opened nothing, so the pass is free again.
        b.passes_changed = pass_refusals.release(b.session, cmd.pass_id, cmd.id) or b.passes_changed


def _honoured_before(error: str | None) -> bool:
    """The locker refused because it had honoured the pass already (its events say so, or will)."""
    return (error or "").startswith(f"{RejectReason.REPLAYED}:")


# The channels lockers publish on, each with its one handler; any other channel is dead-lettered.
HANDLERS: dict[Channel, Callable[[_Batch, topics.Topic, Inbound], None]] = {
    Channel.EVENTS: _on_event,
    Channel.STATUS: _on_status,
    Channel.STATE: _on_state,
    Channel.CMD_ACK: _on_cmd_ack,
}


def _apply_status(locker: Locker, st: Status) -> None:
    if locker.last_seen is not None and aware(locker.last_seen) > st.ts and locker.boot_id == st.boot_id:
        if st.online:
            return  # an older status overtaken by a newer one
        # The Last Will carries the time it was set at connect, older than that boot's "online": apply it.
        locker.online = False
        return
    locker.online, locker.boot_id, locker.fw, locker.last_seen = st.online, st.boot_id, st.fw, st.ts


def _compare_snapshot(session: Session, locker: Locker, snap: State) -> None:
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


class Ingestor:
    def __init__(
        self,
        engine: Engine,
        publish: Publish,
        metrics: IngestMetrics | None = None,
        *,
        after_commit: AfterCommit | None = None,
    ) -> None:
        self.engine = engine
        self.publish = publish
        self.metrics = metrics
        self.after_commit = after_commit

    def dead_letter(self, topic: str, payload: bytes, reason: str) -> None:
        """Keep a message ingest could not apply, with the reason, in its own transaction."""
        with Session(self.engine) as session:
            session.add(_dead_letter(topic, payload, reason, utcnow()))
            session.commit()
        if self.metrics is not None:
            self.metrics.dead_letters.inc()

    def handle(self, batch: Sequence[Inbound]) -> None:
        """Apply one batch in one transaction, then publish the acks it earned."""
        started = time.perf_counter()
        parsed = [(m, _parse(m.topic)) for m in batch]
        with Session(self.engine) as session:
            named = sorted({t.locker_id for _, t in parsed if not isinstance(t, ProtocolError)})
            lockers = {lk.id: lk for lk in session.exec(select(Locker).where(col(Locker.id).in_(named))).all()}
            b = _Batch(session=session, lockers=lockers, now=utcnow())
            dead = 0
            for m, t in parsed:
                try:
                    _route(b, m, t)
                except ProtocolError as exc:
                    log.warning("dead-lettered message on %s: %s", m.topic, exc)
                    dead += 1
                    session.add(_dead_letter(m.topic, m.payload, str(exc), b.now))
            new = self._store(b)
            acks, resends = self._acks(b)
            for locker_id in b.heard:  # last, so each locker's changes go out in one UPDATE
                lockers[locker_id].last_heard_at = b.now
            session.commit()
        if self.metrics is not None:
            self.metrics.observe_batch(
                stored=[(e.kind, e.known, e.ts) for e in new],
                duplicates=b.decoded - len(new),
                dead_letters=dead,
                started=started,
            )
        for locker_id, seq in acks.items():
            self.publish(topics.topic(locker_id, Channel.ACK), Ack(locker_id=locker_id, seq=seq).to_json(), True)
        for locker_id, cmd in resends:
            log.info("asking %s to resend from seq %d", locker_id, cmd.from_seq)
            self.publish(topics.topic(locker_id, Channel.CMD), cmd.to_json(), False)
        if self.after_commit is not None:
            try:
                self.after_commit(Committed(new, frozenset(b.heard), b.feed_changed, b.passes_changed))
            except Exception:  # alerts must never hold up ingest or its acks
                log.exception("after-commit hook failed for a batch of %d", len(batch))

    @staticmethod
    def _store(b: _Batch) -> list[StoredEvent]:
        """Insert the batch's events; fold the ones stored now (not duplicates) into helmets, loans and slots."""
        b.events = _to_surviving_accounts(b.session, b.events)
        stored = insert_new(b.session, list(b.events.values()))
        new = [b.events[i] for i in stored]
        facts = [Fact.of(e) for e in new]
        update_helmets(b.session, facts)
        b.feed_changed = bool(update_slots(b.session, facts)) or b.feed_changed
        b.passes_changed = pass_refusals.mark_used(b.session, new) or b.passes_changed
        return new

    @staticmethod
    def _acks(b: _Batch) -> tuple[dict[str, int], list[tuple[str, Command]]]:
        """Each sending locker's ack, and a resend request (recorded as a command) for a gap not asked about lately."""
        sent = sorted({e.locker_id for e in b.events.values()})
        gaps = advance_acks(b.session, [b.lockers[lk] for lk in sent])
        acks: dict[str, int] = {}
        resends: list[tuple[str, Command]] = []
        for locker_id in sent:
            locker = b.lockers[locker_id]
            acks[locker_id] = locker.acked_seq
            if gaps.get(locker_id) is None:
                continue
            if locker.resend_asked_at is not None and b.now - aware(locker.resend_asked_at) <= RESEND_EVERY:
                continue
            locker.resend_asked_at = b.now
            cmd = Command(cmd_id=new_cmd_id(), op="resend", from_seq=locker.acked_seq + 1, ts=b.now)
            b.session.add(
                LockerCommand(id=cmd.cmd_id, locker_id=locker_id, op="resend", requested_by=INGEST, requested_at=b.now)
            )
            resends.append((locker_id, cmd))
        return acks, resends


def _to_surviving_accounts(session: Session, events: dict[str, StoredEvent]) -> dict[str, StoredEvent]:
    """Events naming an account merged into another (migration 0015: two accounts for one phone number), from a
    pass issued to it before the merge, as the surviving account's: its loans land where the resident looks.
    The payload keeps what the locker sent."""
    named = {e.resident_id for e in events.values() if e.resident_id is not None}
    if not named:
        return events
    into = dict(
        session.exec(
            select(MergedResident.id, MergedResident.resident_id).where(col(MergedResident.id).in_(named))
        ).all()
    )
    if not into:
        return events
    return {k: e._replace(resident_id=into[e.resident_id]) if e.resident_id in into else e for k, e in events.items()}


def _parse(topic_str: str) -> topics.Topic | ProtocolError:
    """The topic, or why it is refused (the message is dead-lettered in the batch's transaction)."""
    try:
        return topics.parse(topic_str)
    except ProtocolError as exc:
        return exc


def _route(b: _Batch, m: Inbound, t: topics.Topic | ProtocolError) -> None:
    if isinstance(t, ProtocolError):
        raise t
    if t.locker_id not in b.lockers:
        raise ProtocolError(f"locker {t.locker_id} is not registered")
    handler = HANDLERS.get(t.channel)
    if handler is None:
        raise ProtocolError(f"lockers do not publish on {t.channel.value}")
    b.heard.add(t.locker_id)
    handler(b, t, m)
