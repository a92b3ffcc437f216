"""What a resident's pass page says about the pass (no I/O): ready, sent to a locker, slots open, used up.

A borrow pass is good once, fleet-wide (:mod:`helmet_cloud.domain.pass_refusals`). Once a locker has used
it, the slots it opened are the only helmets it still gives: each door either yields its helmet
(``helmet.borrowed``) or shuts again (``unlock.timeout``, ``borrow.cancelled``). Until every opened slot
has said which, the pass is *open*; then it is *used up*, whatever it did not open is free again for
the resident's allowance.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from helmet_cloud.domain.pass_refusals import PassStatus


class PassPhase(StrEnum):
    READY = "ready"  # unused and unexpired: show the code, or "open now"
    SENT = "sent"  # "open now" sent; the locker has not answered yet
    OPEN = "open"  # slots open: helmets still to take
    USED = "used"  # used up: every slot it opened is shut again
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"


FINAL = frozenset({PassPhase.USED, PassPhase.WITHDRAWN, PassPhase.EXPIRED})

Slot = tuple[str, int]  # (locker_id, slot)


@dataclass(frozen=True, slots=True)
class PassProgress:
    phase: PassPhase
    quantity: int
    opened: tuple[Slot, ...]  # every slot the pass opened, in order
    taken: int  # helmets taken with it
    remaining: int  # helmets it can still give: all of them while ready, the open doors' once used

    @property
    def final(self) -> bool:
        return self.phase in FINAL

    @property
    def ready(self) -> bool:
        return self.phase == PassPhase.READY

    @property
    def slots(self) -> list[int]:
        return [slot for _, slot in self.opened]


def progress(
    *,
    status: PassStatus,
    quantity: int,
    claimed: bool,
    opened: Iterable[Slot],
    settled: Iterable[Slot],
    taken: int,
) -> PassProgress:
    """The pass's phase from its fleet-wide ``status``, whether "open now" holds a claim on it (``claimed``),
    the slots lockers said they opened for it (acks and events) and those whose door has shut (events)."""
    settled_set = set(settled)
    seen = list(dict.fromkeys([*opened, *sorted(settled_set)]))
    still_open = [s for s in seen if s not in settled_set]
    if status == PassStatus.WITHDRAWN:
        return PassProgress(PassPhase.WITHDRAWN, quantity, tuple(seen), taken, 0)
    if status == PassStatus.EXPIRED:
        return PassProgress(PassPhase.EXPIRED, quantity, (), 0, 0)
    if status == PassStatus.UNUSED:
        return PassProgress(PassPhase.READY, quantity, (), 0, quantity)
    if claimed and not seen:
        return PassProgress(PassPhase.SENT, quantity, (), 0, quantity)
    if still_open:
        return PassProgress(PassPhase.OPEN, quantity, tuple(seen), taken, len(still_open))
    return PassProgress(PassPhase.USED, quantity, tuple(seen), taken, 0)
