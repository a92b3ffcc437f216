"""Residents: agents that sign in, borrow at one station, ride, and return at another.

A resident is a small state machine stepped by the town's scheduler: each call
to :meth:`Resident.act` does what a person does at one moment (possibly a visit
to a kiosk, at wall-clock speed) and answers when, in simulated time, the
resident wants to act next. Between visits nothing runs for them.

Some misbehave on purpose (:class:`Behaviour`): forgers show a pass signed
with their own key, replayers show a used pass again, keepers keep helmets for
days, door-leavers walk away from an open door.

A resident sees the town only through :class:`Surroundings` (what a person
needs from it: stations, their kiosks, distances, the cloud); ``town.py``
builds the town and the residents, never the other way round.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Protocol

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from helmet_protocol.passes import issue_pass
from helmet_sim import kiosk
from helmet_sim.cloud_client import CloudClient, CloudError, SmsInbox
from helmet_sim.demand import next_trip
from helmet_sim.physical import PhysicalError, PhysicalSlot
from helmet_sim.rig import SimLocker


class Behaviour(StrEnum):
    REGULAR = "regular"
    FORGER = "forger"  # shows a pass signed with a key of their own: refused (bad_signature)
    REPLAYER = "replayer"  # shows their used pass again at the same kiosk: refused (replayed)
    KEEPER = "keeper"  # keeps the helmet for days: the cloud's loan stays open, then goes overdue
    DOOR_LEAVER = "door_leaver"  # walks away from an open door: slot.fault door_ajar, an alert


@dataclass(frozen=True)
class Mix:
    """Share of residents who misbehave, per kind; each kind with a share > 0 gets at least one resident."""

    forger: float = 0.01
    replayer: float = 0.01
    keeper: float = 0.02
    door_leaver: float = 0.01

    def assign(self, residents: int, rng: random.Random) -> list[Behaviour]:
        kinds: list[Behaviour] = []
        for kind, share in (
            (Behaviour.FORGER, self.forger),
            (Behaviour.REPLAYER, self.replayer),
            (Behaviour.KEEPER, self.keeper),
            (Behaviour.DOOR_LEAVER, self.door_leaver),
        ):
            if share > 0:
                kinds += [kind] * max(1, round(share * residents))
        kinds = kinds[:residents]
        kinds += [Behaviour.REGULAR] * (residents - len(kinds))
        rng.shuffle(kinds)
        return kinds


@dataclass
class Tally:
    """What happened, counted as it happens (thread-safe through ``lock``)."""

    trips: int = 0
    borrows: int = 0  # helmets taken
    returns: int = 0
    forged_shown: int = 0
    replays_shown: int = 0
    refused_as_expected: int = 0
    no_helmet: int = 0  # a resident found no helmet at any station they tried
    no_slot: int = 0  # a return found the locker full and went on to the next station
    cloud_refused: int = 0  # the cloud would not issue a pass (limit)
    doors_left_open: int = 0
    unread: int = 0  # codes a kiosk did not read while a resident held them up (an overloaded machine)
    out_of_order: int = 0  # a resident found the kiosk dark (its locker killed) and went on to the next station
    errors: int = 0
    problems: list[str] = field(default_factory=list)  # things that must never happen
    recent: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self.lock:
            for name, n in counts.items():
                setattr(self, name, getattr(self, name) + n)

    def note(self, text: str, *, problem: bool = False) -> None:
        with self.lock:
            self.recent = [*self.recent[-7:], text]
            if problem:
                self.problems.append(text)


class Surroundings(Protocol):
    """What a resident needs from the town (``town.Town`` is one): stations by index, each with its
    locker and the lock that lets one person at a time stand at its kiosk."""

    @property
    def tally(self) -> Tally: ...

    @property
    def cloud_url(self) -> str: ...

    @property
    def http(self) -> httpx.Client: ...

    @property
    def inbox(self) -> SmsInbox: ...

    @property
    def trips_per_day(self) -> float: ...

    @property
    def pass_kid(self) -> str: ...

    @property
    def station_ids(self) -> Sequence[str]: ...

    @property
    def rigs(self) -> Sequence[SimLocker]: ...

    @property
    def kiosks(self) -> Sequence[threading.Lock]: ...

    def nearest(self, station: int, *, exclude: list[int]) -> int | None: ...

    def walk(self, a: int, b: int) -> timedelta: ...

    def ride(self, a: int, b: int, rng: random.Random) -> timedelta: ...

    def destination(self, origin: int, rng: random.Random) -> int: ...

    def sleep_real(self, seconds: float) -> None: ...

    def door_left_open(self, station: int, slots: list[PhysicalSlot]) -> None: ...

    def out_of_order(self, station: int) -> bool:
        """The station's kiosk is dark (its locker was killed and not restarted yet); ask under its kiosk lock."""
        ...

    def until_doors_shut(self) -> timedelta: ...


class Resident:
    def __init__(self, n: int, home: int, behaviour: Behaviour, rng: random.Random, start: datetime) -> None:
        self.n = n
        self.phone = f"+4178{n:07d}"
        self.home = home  # index of the station nearest home
        self.behaviour = behaviour
        self.rng = rng
        self.client: CloudClient | None = None
        self.account: str | None = None  # the cloud's resident id once signed in (kept with a kept town)
        self.holding: list[str] = []
        self.destination: int | None = None
        self.tried: list[int] = []
        self.next_at = start

    @property
    def resident_id(self) -> str | None:
        return self.client.subject if self.client else self.account

    def act(self, town: Surroundings, now: datetime) -> datetime:
        """Do what is due at simulated time ``now``; answer when to act next."""
        try:
            if self.holding:
                return self._return(town, now)
            return self._trip(town, now)
        except (CloudError, PhysicalError, TimeoutError, OSError) as exc:
            town.tally.add(errors=1)
            town.tally.note(f"{self.phone}: {exc}"[:120])
            return now + timedelta(minutes=30)

    # -- borrowing ---------------------------------------------------------------

    def _signed_in(self, town: Surroundings) -> CloudClient:
        if self.client is None:
            client = CloudClient(town.cloud_url, http=town.http)
            self.client = client.sign_in_resident(self.phone, town.inbox)
            self.account = self.client.subject
        return self.client

    def _trip(self, town: Surroundings, now: datetime) -> datetime:
        if not self.tried:
            town.tally.add(trips=1)
        station = self.home if not self.tried else town.nearest(self.home, exclude=self.tried)
        if station is None or len(self.tried) >= 3:  # nothing within reach: stay home this time
            town.tally.add(no_helmet=1)
            self.tried = []
            return next_trip(self.rng, now, town.trips_per_day)
        self.tried.append(station)
        client = self._signed_in(town)
        if self.behaviour == Behaviour.FORGER:
            self._forge(town, station)
            self.tried = []
            return next_trip(self.rng, now, town.trips_per_day)
        if town.out_of_order(station):
            return self._dark_kiosk(town, station, now)
        if client.station(town.station_ids[station])["helmets_available"] <= 0:
            return now + town.walk(station, town.nearest(self.home, exclude=self.tried) or station)
        try:
            p = client.request_pass(self.rng.choice([1, 1, 1, 2]), station_id=town.station_ids[station])
        except CloudError as exc:
            town.tally.add(cloud_refused=1)
            town.tally.note(f"{self.phone}: pass refused by the cloud: {exc}"[:120])
            self.tried = []
            return next_trip(self.rng, now, town.trips_per_day)
        leave_open = self.behaviour == Behaviour.DOOR_LEAVER
        with town.kiosks[station]:
            if town.out_of_order(station):  # killed while they walked up
                return self._dark_kiosk(town, station, now)
            rig = town.rigs[station]  # under the kiosk's lock: a power cut may have replaced it
            visit = kiosk.use_pass(rig, p["text"], leave_open=leave_open)
            replay = None
            if self.behaviour == Behaviour.REPLAYER and visit.taken:
                town.sleep_real(rig.service.rules.repeat_window + 0.5)  # the kiosk ignores a code still held up
                replay = kiosk.try_code(rig, p["text"])
        self.holding += visit.taken
        town.tally.add(borrows=len(visit.taken))
        if visit.left_open:
            town.door_left_open(station, visit.left_open)
        if replay is not None:
            self._expect_refusal(town, station, replay, "replayed pass", replays_shown=1)
        if not visit.taken:
            town.tally.note(f"{self.phone}: nothing opened at {town.station_ids[station]}")
            return now + timedelta(minutes=5)
        self.tried = []
        town.tally.note(f"{self.phone} took {', '.join(visit.taken)} at {town.station_ids[station]}")
        self.destination = town.destination(station, self.rng)
        if self.behaviour == Behaviour.KEEPER:
            return now + timedelta(days=self.rng.uniform(2, 6))
        ride = town.ride(station, self.destination, self.rng)
        if visit.left_open:
            # The locker records the borrow only when the door shuts; a return recorded before it would
            # leave the cloud with an open loan (docs/simulation.md, "Known gaps"). Ride until it has shut.
            ride = max(ride, town.until_doors_shut())
        return now + ride

    def _dark_kiosk(self, town: Surroundings, station: int, now: datetime) -> datetime:
        """The kiosk shows nothing (its locker is down): on to the next station, as for an empty one."""
        town.tally.add(out_of_order=1)
        town.tally.note(f"{self.phone}: the kiosk at {town.station_ids[station]} is dark")
        return now + town.walk(station, town.nearest(self.home, exclude=self.tried) or station)

    def _forge(self, town: Surroundings, station: int) -> None:
        forged = issue_pass(
            signing_key=Ed25519PrivateKey.generate(),
            kid=town.pass_kid,
            holder_id=self.resident_id or "R-FORGER",
            quantity=4,
            now=datetime.now(UTC),  # the pass is checked on the locker's wall clock
            ttl=timedelta(minutes=5),
        )
        with town.kiosks[station]:
            if town.out_of_order(station):
                town.tally.add(out_of_order=1)
                return
            visit = kiosk.try_code(town.rigs[station], forged)
        self._expect_refusal(town, station, visit, "forged pass", forged_shown=1)

    def _expect_refusal(self, town: Surroundings, station: int, visit: kiosk.Visit, what: str, **count: int) -> None:
        where = town.station_ids[station]
        if not visit.read:
            # Not a disagreement between cloud and world (nothing was recorded), but a locker too starved
            # of CPU to read a code in 10 s: counted and shown, so an overloaded run says so.
            town.tally.add(unread=1)
            town.tally.note(f"{self.phone}: the kiosk at {where} did not read a {what} within {kiosk.READ_TIMEOUT:g} s")
            return
        town.tally.add(**count)  # the locker read it: the cloud must record exactly one refusal
        if visit.opened:
            town.tally.note(f"{self.phone}: a {what} opened slots {visit.opened} at {where}", problem=True)
        else:
            town.tally.add(refused_as_expected=1)
            town.tally.note(f"{self.phone}: {what} refused at {where}")

    # -- returning ---------------------------------------------------------------

    def _return(self, town: Surroundings, now: datetime) -> datetime:
        station = self.destination if self.destination is not None else self.home
        if station in self.tried or len(self.tried) >= 4:
            station = town.nearest(station, exclude=self.tried) or self.rng.randrange(len(town.rigs))
        self.tried.append(station)
        helmet = self.holding[0]
        with town.kiosks[station]:
            dark = town.out_of_order(station)
            slot = None if dark else kiosk.put_back(town.rigs[station], helmet)
        if slot is None:
            if dark:
                town.tally.add(out_of_order=1)
                town.tally.note(f"{self.phone}: the kiosk at {town.station_ids[station]} is dark")
            else:
                town.tally.add(no_slot=1)
            nxt = town.nearest(station, exclude=self.tried)
            self.destination = nxt
            return now + town.walk(station, nxt if nxt is not None else station)
        self.holding.pop(0)
        self.tried = []
        town.tally.add(returns=1)
        town.tally.note(f"{self.phone} returned {helmet} at {town.station_ids[station]}")
        if self.holding:
            return now + timedelta(seconds=30)  # the next helmet, same kiosk
        self.tried, self.destination = [], None
        return next_trip(self.rng, now, town.trips_per_day)
