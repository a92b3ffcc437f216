"""A pass is good once, fleet-wide: which passes each locker is told to refuse (no I/O).

A pass is **used** once the cloud hears that a locker honoured it (an event of :data:`USE_KINDS`
carrying its id) or sends it to a locker itself ("open now"); it is **withdrawn** when its holder or
staff withdraw it. Until it could no longer be accepted anyway (``expires_at`` plus the lockers'
clock skew), every locker's retained config names it: a withdrawn pass in ``revoked_pass_ids``
everywhere, a used one in ``used_pass_ids`` everywhere but at the locker that used it, which knows
(its replay memory says ``replayed``). Both lists together hold at most :data:`MAX_REFUSED` ids;
beyond that the passes closest to expiring are left out (the locker's own checks still stop them
once they expire).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from helmet_protocol.events import EventKind

# Events by which a locker says it honoured a pass: a helmet taken, or slots opened and nothing taken.
USE_KINDS = frozenset({EventKind.HELMET_BORROWED, EventKind.UNLOCK_TIMEOUT, EventKind.BORROW_CANCELLED})
# Ids in one config, both lists together: what LockerConfig allows in one list, and 256 ids of 36 characters
# leave room for everything else within the payload limit (16 KiB).
MAX_REFUSED = 256


@dataclass(frozen=True, slots=True)
class Refusal:
    """One pass lockers must refuse, until ``until`` (its expiry plus the clock skew)."""

    pass_id: str
    until: datetime
    withdrawn: bool
    used_at: str | None  # the locker that used it first; None if it was withdrawn unused


@dataclass(frozen=True, slots=True)
class Refused:
    """What one locker's config says: passes withdrawn, passes used elsewhere, and how many did not fit."""

    revoked: tuple[str, ...] = ()
    used: tuple[str, ...] = ()
    left_out: int = 0


def refused_at(locker_id: str, refusals: Iterable[Refusal], *, now: datetime, limit: int = MAX_REFUSED) -> Refused:
    """The lists for ``locker_id``'s config: the refusals still in force, latest expiry first within ``limit``."""
    told = [r for r in refusals if r.until > now and (r.withdrawn or r.used_at != locker_id)]
    told.sort(key=lambda r: (r.until, r.pass_id), reverse=True)
    kept = told[:limit]
    return Refused(
        revoked=tuple(sorted(r.pass_id for r in kept if r.withdrawn)),
        used=tuple(sorted(r.pass_id for r in kept if not r.withdrawn)),
        left_out=len(told) - len(kept),
    )


class PassStatus(StrEnum):
    UNUSED = "unused"
    USED = "used"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"  # never used, and past its expiry


def pass_status(*, withdrawn: bool, used: bool, expired: bool) -> PassStatus:
    """What a pass is now: withdrawn before used, used before expired."""
    if withdrawn:
        return PassStatus.WITHDRAWN
    if used:
        return PassStatus.USED
    return PassStatus.EXPIRED if expired else PassStatus.UNUSED
