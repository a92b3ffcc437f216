"""Event kinds and the reason codes that go with them."""

from __future__ import annotations

from enum import StrEnum


class EventKind(StrEnum):
    """Every kind of event a locker records (``docs/mqtt.md``)."""

    HELMET_BORROWED = "helmet.borrowed"
    HELMET_RETURNED = "helmet.returned"
    HELMET_STOCKED = "helmet.stocked"
    HELMET_REMOVED = "helmet.removed"
    UNLOCK_TIMEOUT = "unlock.timeout"
    BORROW_CANCELLED = "borrow.cancelled"
    RETURN_CANCELLED = "return.cancelled"
    SLOT_FAULT = "slot.fault"
    SLOT_CLEARED = "slot.cleared"
    SLOT_DISABLED = "slot.disabled"
    SLOT_ENABLED = "slot.enabled"
    PASS_REJECTED = "pass.rejected"  # noqa: S105 (not a password)
    LOCKER_SELFTEST = "locker.selftest"


class RejectReason(StrEnum):
    """Why a scanned pass opened nothing."""

    BAD_SIGNATURE = "bad_signature"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    UNKNOWN_KEY = "unknown_key"
    REPLAYED = "replayed"
    REVOKED = "revoked"
    USED_ELSEWHERE = "used_elsewhere"  # honoured at another locker: the cloud's config.used_pass_ids
    MALFORMED = "malformed"
    OVER_QUANTITY = "over_quantity"
    NO_HELMETS = "no_helmets"
    NO_FREE_SLOT = "no_free_slot"


class FaultReason(StrEnum):
    """Why a slot went to the ``fault`` state."""

    DOOR_AJAR = "door_ajar"
    LOCK_JAMMED = "lock_jammed"
    SENSOR_CONFLICT = "sensor_conflict"


class SlotState(StrEnum):
    """The states of one slot's state machine (docs/mqtt.md, the `state` topic)."""

    OCCUPIED = "occupied"
    EMPTY = "empty"
    UNLOCKING = "unlocking"
    OPEN = "open"
    DISABLED = "disabled"
    FAULT = "fault"
