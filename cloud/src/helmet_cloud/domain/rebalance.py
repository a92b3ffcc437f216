"""Rebalancing advice: "move N helmets from A to B", from fill levels, thresholds and recent demand.

Pure logic, no database. For each station:

- ``keep_min`` = its low threshold plus the helmets it lost net over the demand
  window (borrows minus returns): a station that hands out more than it takes
  back needs that many more to last until the next round;
- ``keep_max`` = its usable slots minus its free-slot threshold, minus the
  helmets it gained net (returns minus borrows): a station people return to
  needs that much more room;
- if the two cross (a small, busy station), both become their midpoint.

A station below ``keep_min`` needs helmets; one above ``keep_max`` has
surplus. Needs are filled largest first, each from the nearest station with
surplus; when surplus runs out, from the nearest station that still has more
than its ``keep_min``. Surplus nobody needs then goes to the nearest stations
below the top of their band, so a full station has room for returns again.
Stations whose lockers are all offline are left out: the cloud cannot tell
what they hold.

A round is one day in the town's time zone. A move is identified by its
stations and the round's day: once a technician has recorded "A to B" done,
the advice recomputed from live counts (which then no longer asks for it, or
asks for what is left while helmets are in the van) shows it as done, not as
something to do, until the day ends (:func:`round_moves`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class StationLoad:
    id: str
    name: str
    lat: float
    lon: float
    helmets: int
    usable_slots: int  # occupied + empty
    low_threshold: int
    high_threshold: int
    borrowed: int = 0  # in the demand window
    returned: int = 0
    online: bool = True

    @property
    def keep_min(self) -> int:
        return min(self.usable_slots, self.low_threshold + max(0, self.borrowed - self.returned))

    @property
    def keep_max(self) -> int:
        return max(0, self.usable_slots - self.high_threshold - max(0, self.returned - self.borrowed))

    def band(self) -> tuple[int, int]:
        lo, hi = self.keep_min, self.keep_max
        if lo > hi:
            mid = (lo + hi) // 2
            return mid, mid
        return lo, hi


@dataclass(frozen=True, slots=True)
class Move:
    source: str
    source_name: str
    target: str
    target_name: str
    count: int
    km: float


def _km(a: StationLoad, b: StationLoad) -> float:
    p1, p2 = math.radians(a.lat), math.radians(b.lat)
    dp, dl = p2 - p1, math.radians(b.lon - a.lon)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(h)))


def advise(stations: list[StationLoad]) -> list[Move]:
    """The moves for one round, largest need first; every station ends inside its band where helmets allow."""
    live = [s for s in stations if s.online and s.usable_slots > 0]
    bands = {s.id: s.band() for s in live}
    helmets = {s.id: s.helmets for s in live}
    by_id = {s.id: s for s in live}

    def need(sid: str) -> int:
        return max(0, bands[sid][0] - helmets[sid])

    def room(sid: str) -> int:
        return max(0, by_id[sid].usable_slots - helmets[sid])

    moves: dict[tuple[str, str], int] = {}
    for target in sorted(live, key=lambda s: (-need(s.id), s.id)):
        for end in (1, 0):  # give surplus above the band's top first, then spare above its bottom
            donors = sorted(
                (s for s in live if s.id != target.id and helmets[s.id] > bands[s.id][end]),
                key=lambda s: (_km(s, target), s.id),
            )
            for donor in donors:
                n = min(need(target.id), helmets[donor.id] - bands[donor.id][end], room(target.id))
                if n <= 0:
                    continue
                helmets[donor.id] -= n
                helmets[target.id] += n
                moves[(donor.id, target.id)] = moves.get((donor.id, target.id), 0) + n
    # Surplus left over where no station needed it: take it to the nearest station with room below its band's top.
    for donor in sorted(live, key=lambda s: s.id):
        excess = helmets[donor.id] - bands[donor.id][1]
        if excess <= 0:
            continue
        for target in sorted(
            (s for s in live if s.id != donor.id and helmets[s.id] < bands[s.id][1]),
            key=lambda s: (_km(donor, s), s.id),
        ):
            n = min(excess, bands[target.id][1] - helmets[target.id])
            if n <= 0:
                continue
            helmets[donor.id] -= n
            helmets[target.id] += n
            excess -= n
            moves[(donor.id, target.id)] = moves.get((donor.id, target.id), 0) + n
            if excess == 0:
                break
    out = [
        Move(src, by_id[src].name, dst, by_id[dst].name, n, round(_km(by_id[src], by_id[dst]), 2))
        for (src, dst), n in moves.items()
    ]
    return sorted(out, key=lambda m: (-m.count, m.source, m.target))


@dataclass(frozen=True, slots=True)
class DoneMove:
    """A move someone recorded as done in a round: how many helmets they moved, who, when."""

    source: str
    target: str
    moved: int
    advised: int | None
    done_by: str
    done_at: datetime


@dataclass(frozen=True, slots=True)
class RoundMove:
    """One line of a round: the advice's move (``advised``, None if the advice no longer asks for it) and, once
    recorded, what was done."""

    source: str
    source_name: str
    target: str
    target_name: str
    km: float | None
    advised: int | None
    done: DoneMove | None

    @property
    def count(self) -> int:
        """The number to show: what was moved once done, what the advice asks otherwise."""
        return self.done.moved if self.done is not None else self.advised or 0


def round_day(now: datetime, zone: ZoneInfo) -> date:
    """The round a moment belongs to: its day on the town's clock."""
    return now.astimezone(zone).date()


def round_moves(advice: list[Move], done: list[DoneMove], stations: list[StationLoad]) -> list[RoundMove]:
    """The round's lines: moves still to do first (the advice's order), then the done ones, latest first.

    A move recorded done in this round is done whatever the advice now says about the same two stations, so
    helmets that are moved (or on their way) never bring the move back as one to do. ``stations`` names the
    stations (and gives the distance) of done moves the advice no longer lists.
    """
    by_id = {s.id: s for s in stations}
    recorded = {(d.source, d.target): d for d in done}
    advised = {(m.source, m.target): m for m in advice}
    todo = [
        RoundMove(m.source, m.source_name, m.target, m.target_name, m.km, m.count, None)
        for m in advice
        if (m.source, m.target) not in recorded
    ]
    finished = []
    for d in sorted(done, key=lambda d: (d.done_at, d.source, d.target), reverse=True):
        m = advised.get((d.source, d.target))
        a, b = by_id.get(d.source), by_id.get(d.target)
        km = round(_km(a, b), 2) if a is not None and b is not None else None
        finished.append(
            RoundMove(
                d.source,
                a.name if a is not None else d.source,
                d.target,
                b.name if b is not None else d.target,
                km,
                m.count if m is not None else None,
                d,
            )
        )
    return todo + finished
