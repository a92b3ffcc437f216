"""Slot state, a fold over the locker's events for that slot in ``seq`` order (see :mod:`.inventory`).

``Slot.applied_seq`` is the seq of the last event folded in. New events past
it are applied to the stored state; a slot that gets an event at or below it
(a gap resent), that is disabled or in fault (its stored state hides whether
a helmet is in it), or that has no stored seq yet is folded again from all its events.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import tuple_
from sqlmodel import Session, col, select

from helmet_cloud.ingest.derived import Fact, chunks, read_facts, save
from helmet_cloud.ingest.inventory import BACK, SLOT_KINDS
from helmet_cloud.models import RawEvent, Slot
from helmet_protocol.events import EventKind, SlotState

SlotKey = tuple[str, int]
SLOT_FIELDS = ("locker_id", "slot", "state", "helmet_id", "applied_seq")
FOLDABLE = (SlotState.EMPTY.value, SlotState.OCCUPIED.value)  # states a fold can continue from


@dataclass(slots=True)
class SlotRow:
    locker_id: str
    slot: int
    state: str = SlotState.EMPTY.value
    helmet_id: str | None = None
    applied_seq: int | None = None
    stored: tuple[Any, ...] | None = field(default=None, kw_only=True)  # as read; None: a new row

    def values(self) -> tuple[Any, ...]:
        return (self.locker_id, self.slot, self.state, self.helmet_id, self.applied_seq)


def update_slots(session: Session, facts: Iterable[Fact]) -> set[SlotKey]:
    """Fold newly stored events into their slots; return the slots they touched."""
    new: dict[SlotKey, list[Fact]] = defaultdict(list)
    for f in facts:
        if f.slot is not None and f.kind in SLOT_KINDS:
            new[(f.locker_id, f.slot)].append(f)
    keys = sorted(new)
    if not keys:
        return set()
    rows = _read(session, keys)
    late = set()
    for key in keys:
        ordered = sorted(new[key], key=lambda f: f.seq)
        row = rows.get(key)
        if row is None or row.applied_seq is None or ordered[0].seq <= row.applied_seq or row.state not in FOLDABLE:
            late.add(key)
        else:
            _fold(row, ordered)
    save(session, Slot, SLOT_FIELDS, ("locker_id", "slot"), [rows[k] for k in keys if k not in late])
    if late:
        recompute_slots(session, late)
    return set(keys)


def recompute_slots(session: Session, slots: Iterable[SlotKey]) -> None:
    """Fold each slot's whole event history again, from an empty slot."""
    keys = sorted(set(slots))
    events: dict[SlotKey, list[Fact]] = defaultdict(list)
    kinds = col(RawEvent.kind).in_([k.value for k in SLOT_KINDS])
    for part in chunks(keys):
        for f in read_facts(session, [tuple_(col(RawEvent.locker_id), col(RawEvent.slot)).in_(part), kinds]):
            events[(f.locker_id, f.slot or 0)].append(f)
    stored = _read(session, keys)
    rows = []
    for key in keys:
        was = stored.get(key)
        row = SlotRow(*key, stored=was.stored if was else None)
        _fold(row, sorted(events[key], key=lambda f: f.seq))
        rows.append(row)
    save(session, Slot, SLOT_FIELDS, ("locker_id", "slot"), rows)


def _read(session: Session, keys: Sequence[SlotKey]) -> dict[SlotKey, SlotRow]:
    """The slots, locked, in key order."""
    out: dict[SlotKey, SlotRow] = {}
    for part in chunks(keys):
        q = select(*(col(getattr(Slot, f)) for f in SLOT_FIELDS))
        q = q.where(tuple_(col(Slot.locker_id), col(Slot.slot)).in_(part))
        for r in session.exec(q.order_by(col(Slot.locker_id), col(Slot.slot)).with_for_update()).all():
            values = tuple(r)
            out[(r[0], r[1])] = SlotRow(*values, stored=values)
    return out


def _fold(row: SlotRow, events: Sequence[Fact]) -> None:
    """Apply ``events`` (sorted by seq) to a slot that is neither disabled nor in fault.

    A fault (a door left ajar, a jammed lock, sensors that disagree) takes the slot out of service until the
    locker reports it cleared; the helmet in it stays where the events put it.
    """
    disabled = faulted = False
    state, helmet_id = row.state, row.helmet_id
    for e in events:
        if e.kind in (EventKind.HELMET_BORROWED, EventKind.HELMET_REMOVED):
            state, helmet_id = SlotState.EMPTY.value, None
        elif e.kind in BACK:
            state, helmet_id = SlotState.OCCUPIED.value, e.helmet_id
        elif e.kind == EventKind.SLOT_DISABLED:
            disabled = True
        elif e.kind == EventKind.SLOT_ENABLED:
            disabled = False
        elif e.kind == EventKind.SLOT_FAULT:
            faulted = True
        elif e.kind == EventKind.SLOT_CLEARED:
            faulted = False
    row.state = SlotState.DISABLED.value if disabled else SlotState.FAULT.value if faulted else state
    row.helmet_id = helmet_id
    if events:
        row.applied_seq = events[-1].seq
