"""The locker's decisions: passes, stickers, maintenance, commands, slot upkeep.

Pure logic over :class:`SlotMachine`s. Each call returns an :class:`Outcome`
that the service makes durable (slot records, events and honoured passes in one
transaction) before it moves any lock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from helmet_edge.kiosk import ForeignScan, StickerScan, classify
from helmet_edge.slot_machine import EventDraft, Purpose, SlotMachine, SlotRecord, Step
from helmet_protocol.errors import PassRejectedError
from helmet_protocol.events import EventKind, RejectReason, SlotState
from helmet_protocol.passes import DEFAULT_SKEW, Pass, Role, decode_pass, verify_pass

log = logging.getLogger(__name__)


class Feedback(StrEnum):
    """What the person at the kiosk sees and hears (LED and buzzer patterns)."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    SLOT_OPEN = "slot_open"
    FAULT = "fault"
    MAINTENANCE = "maintenance"
    MAINTENANCE_END = "maintenance_end"


@dataclass(frozen=True, slots=True)
class Rules:
    """What the cloud's config (or the local bootstrap config) allows."""

    keys: Mapping[str, Ed25519PublicKey]
    max_quantity: int = 4
    skew: timedelta = DEFAULT_SKEW
    revoked: frozenset[str] = frozenset()  # withdrawn by the cloud (config.revoked_pass_ids)
    used: frozenset[str] = frozenset()  # honoured at another locker (config.used_pass_ids)
    helmet_host: str | None = None
    maintenance_seconds: float = 300.0
    repeat_window: float = 4.0
    # The cloud's registered slot count (config.slot_count): a slot numbered past it is in no count the
    # cloud keeps, so no pass or sticker opens it (a technician still can: service unlock, removal).
    slot_count: int | None = None


@dataclass(slots=True)
class Outcome:
    records: dict[int, SlotRecord] = field(default_factory=dict)
    events: list[EventDraft] = field(default_factory=list)
    locks: dict[int, bool] = field(default_factory=dict)
    honour: list[tuple[str, datetime]] = field(default_factory=list)
    feedback: Feedback | None = None
    message: str | None = None
    opened: list[int] = field(default_factory=list)
    refusal: str | None = None  # why the request was refused (nothing opened); None when it was carried out
    # What the face says about it (face.py): a RejectReason, or "foreign", "poster", "already_here" for codes
    # that are no request at all; and how many helmets a pass asked for that were not there.
    reason: str | None = None
    short: int = 0
    about: list[int] = field(default_factory=list)  # the doors a refusal is about (nothing opened)

    def add(self, slot: int, step: Step) -> None:
        if step.record is not None:
            self.records[slot] = step.record
        self.events.extend(step.events)
        if step.lock is not None:
            self.locks[slot] = step.lock

    @property
    def durable(self) -> bool:
        return bool(self.records or self.events or self.honour)


class Locker:
    """All slots of one locker and the rules for opening them."""

    def __init__(self, machines: Mapping[int, SlotMachine], rules: Rules) -> None:
        self.machines = dict(sorted(machines.items()))
        self.rules = rules
        self._seen: dict[bytes, float] = {}
        self._maintenance_until = 0.0
        self._technician: str | None = None

    def in_maintenance(self, mono: float) -> bool:
        return mono < self._maintenance_until

    def offered(self, slot: int) -> bool:
        """A pass or a sticker may open this slot: the cloud counts it (see :attr:`Rules.slot_count`)."""
        return self.rules.slot_count is None or slot <= self.rules.slot_count

    def scan_frame(
        self, codes: Sequence[bytes], *, wall: datetime, mono: float, honoured: Callable[[str], bool]
    ) -> Outcome | None:
        """Everything the decoder read in one camera frame.

        Two different codes at once are ambiguous (which one does the person mean?): none is acted on.
        """
        distinct = list(dict.fromkeys(codes))
        if len(distinct) > 1:
            key = b"\x00".join(sorted(distinct))
            last = self._seen.get(key)
            self._seen[key] = mono
            if last is None or mono - last >= self.rules.repeat_window:
                log.info("ignored a frame with %d codes in it: one code at a time", len(distinct))
            return None
        return self.scan(distinct[0], wall=wall, mono=mono, honoured=honoured) if distinct else None

    def scan(self, data: bytes, *, wall: datetime, mono: float, honoured: Callable[[str], bool]) -> Outcome | None:
        """A code in front of the camera. ``None`` while the same code is still being held there."""
        last = self._seen.get(data)
        self._seen[data] = mono
        if len(self._seen) > 256:
            self._seen = {k: t for k, t in self._seen.items() if mono - t < self.rules.repeat_window}
        if last is not None and mono - last < self.rules.repeat_window:
            return None
        kind = classify(data, helmet_host=self.rules.helmet_host)
        if isinstance(kind, ForeignScan):
            log.info("ignored a QR code: %s", kind.reason)
            # Nothing is recorded; the person is told what to show instead (the LED says "not this").
            return Outcome(
                feedback=Feedback.REJECTED, message=kind.reason, reason="poster" if kind.poster else "foreign"
            )
        if isinstance(kind, StickerScan):
            return self.helmet_back(kind.helmet_id, mono=mono)
        return self.use_pass(kind.data, wall=wall, mono=mono, honoured=honoured)

    def use_pass(self, data: bytes | str, *, wall: datetime, mono: float, honoured: Callable[[str], bool]) -> Outcome:
        """Verify a pass offline and open slots for it (also the ``borrow`` command)."""
        try:
            p = verify_pass(
                data, keys=self.rules.keys, now=wall, max_quantity=self.rules.max_quantity, skew=self.rules.skew
            )
            if p.pass_id in self.rules.revoked:
                raise PassRejectedError(RejectReason.REVOKED, "pass was revoked")
            if p.role == Role.TECHNICIAN and self.in_maintenance(mono) and p.holder_id == self._technician:
                return self._leave_maintenance(p.holder_id)
            if honoured(p.pass_id):
                raise PassRejectedError(RejectReason.REPLAYED, "pass was already used here")
            if p.pass_id in self.rules.used:
                raise PassRejectedError(RejectReason.USED_ELSEWHERE, "pass was already used at another locker")
        except PassRejectedError as exc:
            parsed = None if exc.reason == RejectReason.MALFORMED else decode_pass(data)[0]
            return self._rejected(exc, parsed)
        if p.role == Role.TECHNICIAN:
            self._maintenance_until = mono + self.rules.maintenance_seconds
            self._technician = p.holder_id
            log.info("maintenance mode for technician %s", p.holder_id)
            return Outcome(honour=[self._honour(p)], feedback=Feedback.MAINTENANCE, message="maintenance mode")
        if self.in_maintenance(mono):  # a resident at the kiosk: the technician has gone
            log.info("maintenance mode ended by a resident pass")
            self._maintenance_until, self._technician = 0.0, None
        return self._borrow(p, mono)

    def _leave_maintenance(self, technician: str) -> Outcome:
        """The technician in maintenance mode shows a pass of theirs again: done here, residents may come."""
        self._maintenance_until, self._technician = 0.0, None
        log.info("maintenance mode ended by technician %s", technician)
        return Outcome(feedback=Feedback.MAINTENANCE_END, message="maintenance mode ended")

    def _honour(self, p: Pass) -> tuple[str, datetime]:
        # verify_pass accepts a pass until expires_at + skew: remember it that long.
        return p.pass_id, p.expires_at + self.rules.skew

    def _rejected(self, exc: PassRejectedError, p: Pass | None) -> Outcome:
        log.warning("pass rejected: %s", exc)
        draft = EventDraft(
            EventKind.PASS_REJECTED,
            reason=exc.reason,
            detail=exc.detail[:200],
            pass_id=p.pass_id if p else None,
            resident_id=p.holder_id if p else None,
        )
        return Outcome(
            events=[draft], feedback=Feedback.REJECTED, message=str(exc), refusal=str(exc), reason=exc.reason
        )

    def _borrow(self, p: Pass, mono: float) -> Outcome:
        full = [n for n, m in self.machines.items() if m.state == SlotState.OCCUPIED and self.offered(n)]
        if not full:
            return self._rejected(PassRejectedError(RejectReason.NO_HELMETS, "no helmet in this locker"), p)
        out = Outcome(honour=[self._honour(p)], feedback=Feedback.ACCEPTED)
        for n in full[: p.quantity]:
            out.add(n, self.machines[n].unlock(mono, Purpose.BORROW, pass_id=p.pass_id, resident_id=p.holder_id))
            out.opened.append(n)
        out.short = short = p.quantity - len(out.opened)
        out.message = f"opened {len(out.opened)} slot(s)" + (f"; {short} fewer than asked" if short else "")
        return out

    def helmet_back(self, helmet_id: str, *, mono: float) -> Outcome | None:
        """A helmet sticker: open one empty slot for it (stocking in maintenance mode).

        In maintenance mode, the sticker of a helmet that is in a slot here opens
        that slot so the technician can take it out (``helmet.removed``).
        """
        for m in self.machines.values():
            if m.record.helmet_id == helmet_id or m.record.incoming_helmet_id == helmet_id:
                if self.in_maintenance(mono) and m.state == SlotState.OCCUPIED:
                    out = Outcome(
                        feedback=Feedback.SLOT_OPEN, message=f"slot {m.record.slot} open to remove {helmet_id}"
                    )
                    out.add(m.record.slot, m.unlock(mono, Purpose.SERVICE, resident_id=self._technician))
                    out.opened.append(m.record.slot)
                    return out
                log.info("helmet %s is already in slot %d", helmet_id, m.record.slot)
                waiting = m.record.incoming_helmet_id == helmet_id  # its door is open for it: say which again
                return Outcome(
                    feedback=None if waiting else Feedback.REJECTED,
                    message=f"{helmet_id} is already {'expected in' if waiting else 'in'} slot {m.record.slot}",
                    reason="already_open" if waiting else "already_here",
                    about=[m.record.slot],
                )
        free = [n for n, m in self.machines.items() if m.state == SlotState.EMPTY and self.offered(n)]
        if not free:
            return Outcome(
                events=[
                    EventDraft(
                        EventKind.PASS_REJECTED,
                        reason=RejectReason.NO_FREE_SLOT,
                        helmet_id=helmet_id,
                        detail="no empty slot for a return",
                    )
                ],
                feedback=Feedback.REJECTED,
                message="no free slot here",
                refusal="no free slot here",
                reason=RejectReason.NO_FREE_SLOT,
            )
        purpose = Purpose.STOCK if self.in_maintenance(mono) else Purpose.RETURN
        who = self._technician if purpose == Purpose.STOCK else None
        out = Outcome(feedback=Feedback.SLOT_OPEN, message=f"slot {free[0]} open for {helmet_id}")
        out.add(free[0], self.machines[free[0]].unlock(mono, purpose, incoming_helmet_id=helmet_id, resident_id=who))
        out.opened.append(free[0])
        return out

    def service_unlock(self, slot: int, *, mono: float) -> Outcome:
        """Open one slot for a technician, whatever it holds."""
        m = self._machine(slot)
        if m.state in (SlotState.UNLOCKING, SlotState.OPEN):
            raise ValueError(f"slot {slot} is already {m.state}")
        out = Outcome(feedback=Feedback.SLOT_OPEN, message=f"slot {slot} open")
        out.add(slot, m.unlock(mono, Purpose.SERVICE))
        out.opened.append(slot)
        return out

    def set_disabled(self, slot: int, disabled: bool) -> Outcome:
        out = Outcome()
        out.add(slot, self._machine(slot).set_disabled(disabled))
        return out

    def _machine(self, slot: int) -> SlotMachine:
        try:
            return self.machines[slot]
        except KeyError:
            raise ValueError(f"no slot {slot}; this locker has {len(self.machines)}") from None

    def tick(self, mono: float, readings: Mapping[int, tuple[bool, bool]]) -> Outcome:
        """Feed one reading ``(door_closed, present)`` per slot."""
        out = Outcome()
        for n, (closed, present) in readings.items():
            out.add(n, self.machines[n].step(mono, door_closed=closed, present=present))
        if any(e.kind == EventKind.SLOT_FAULT for e in out.events):
            out.feedback = Feedback.FAULT
        return out

    def reconcile(self, mono: float) -> Outcome:
        out = Outcome()
        for n, m in self.machines.items():
            out.add(n, m.reconcile(mono))
        return out
