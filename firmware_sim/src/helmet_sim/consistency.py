"""The end-of-run verdict: does the cloud agree with the physical world?

- every slot the cloud knows holds exactly the helmet the simulated locker holds;
- every resident's open loans are exactly the helmets in that resident's hands;
- every event each locker recorded reached the cloud once (its ack equals the
  locker's last seq and its outbox is empty; the cloud stores each seq once).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LockerView:
    locker_id: str
    physical: Mapping[int, str | None]  # slot -> helmet in it
    last_seq: int
    outbox: int
    cloud_slots: Mapping[int, tuple[str, str | None]]  # slot -> (state, helmet)
    cloud_acked_seq: int


def compare(lockers: list[LockerView], hands: Mapping[str, list[str]], loans: Mapping[str, list[str]]) -> list[str]:
    """Every disagreement, in words; an empty list is a pass."""
    problems: list[str] = []
    for lk in lockers:
        if lk.outbox or lk.cloud_acked_seq != lk.last_seq:
            problems.append(
                f"{lk.locker_id}: recorded {lk.last_seq} events, cloud acknowledged "
                f"{lk.cloud_acked_seq}, {lk.outbox} still in the outbox"
            )
        for slot, helmet in sorted(lk.physical.items()):
            state, cloud_helmet = lk.cloud_slots.get(slot, ("missing", None))
            held = cloud_helmet if state in ("occupied", "disabled", "fault") else None
            if held != helmet:
                problems.append(
                    f"{lk.locker_id} slot {slot}: holds {helmet or 'nothing'}, "
                    f"cloud says {state} {cloud_helmet or ''}".rstrip()
                )
    for who in sorted(set(hands) | set(loans)):
        have, owed = sorted(hands.get(who, [])), sorted(loans.get(who, []))
        if have != owed:
            problems.append(f"resident {who}: has {have or 'nothing'}, cloud's open loans {owed or 'none'}")
    return problems


def verdict(problems: list[str], *, lockers: int, helmets_out: int) -> str:
    if not problems:
        return f"consistency check: OK ({lockers} lockers, {helmets_out} helmets out, every event accounted for)"
    return "consistency check: FAILED\n" + "\n".join(f"  - {p}" for p in problems)
