"""A town: stations with positions, one simulated locker each, residents, and a scheduler.

Every locker is a real edge instance (:class:`~helmet_sim.rig.SimLocker`) with
its own MQTT connection and SQLite store, in this process on its own thread.
Residents act on a simulated clock (:mod:`helmet_sim.clock`); a dispatcher
hands each due resident to a pool of worker threads, and a visit to a kiosk
takes the wall-clock time a person needs. docs/simulation.md explains what is
real, what is simulated and what it costs.

A running town takes faults (:meth:`Town.cut`, :meth:`Town.kill`, :meth:`Town.pause`, ...: the
control channel of ``helmet-sim town``, :mod:`helmet_sim.town_control`) and keeps what it needs to
start again on its work directory (``town.json``, with the lockers' files and the cloud's database).
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import math
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from helmet_edge.config import FaceSettings, TimingSettings
from helmet_protocol.passes import decode_pass
from helmet_sim import kiosk, paho_poll
from helmet_sim.clock import SimClock
from helmet_sim.cloud_client import CloudClient, SmsInbox
from helmet_sim.consistency import LockerView, compare
from helmet_sim.network import Cable
from helmet_sim.physical import PhysicalSlot
from helmet_sim.residents import Behaviour, Mix, Resident, Tally
from helmet_sim.rig import SimLocker

log = logging.getLogger(__name__)

CENTRE = (47.37, 8.54)
KM_PER_DEG_LAT = 111.2
STREETS = [
    "Town hall", "Station square", "Lakeside", "Library", "Hospital", "Market", "School", "Stadium",
    "Old bridge", "Museum", "Harbour", "University", "Swimming pool", "Cemetery", "Mill", "Church",
    "Park", "Post office", "Fire station", "Theatre", "Gasworks", "Brewery", "Castle", "Zoo",
]  # fmt: skip
# The same places in Chinese, for the pages' other language (a station's "names").
STREETS_ZH = [
    "市政厅", "火车站广场", "湖滨", "图书馆", "医院", "市场", "学校", "体育场",
    "老桥", "博物馆", "港口", "大学", "游泳馆", "公墓", "磨坊", "教堂",
    "公园", "邮局", "消防站", "剧院", "煤气厂", "啤酒厂", "城堡", "动物园",
]  # fmt: skip
TOWN_ZONE = "Europe/Zurich"  # the clock of the town around CENTRE
PROFILES = {6: "pi-gpio-6", 12: "pi-mcp23017-12"}
# Set-up progress: (step, done, total), e.g. ("lockers stocked", 12, 50).
Progress = Callable[[str, int, int], None]
MAINTENANCE_S = 40.0
KEPT_FILE = "town.json"  # what a kept town needs besides the lockers' files and the cloud: hands, clock, tally


class FaultError(ValueError):
    """A fault the town cannot inject as asked (no cables, a locker already down, ...), in words."""


class KeptTownError(ValueError):
    """The kept work directory does not hold a town these options can go on with, in words."""


@dataclass(frozen=True)
class Place:
    id: str
    name: str
    name_zh: str
    lat: float
    lon: float
    x_km: float
    y_km: float


def layout(stations: int, seed: int = 1, spacing_km: float = 0.6) -> list[Place]:
    """Stations on a jittered grid around the town centre, ``spacing_km`` apart."""
    rng = random.Random(seed)
    side = math.ceil(math.sqrt(stations))
    km_per_deg_lon = KM_PER_DEG_LAT * math.cos(math.radians(CENTRE[0]))
    places = []
    for i in range(stations):
        row, col = divmod(i, side)
        x = (col - (side - 1) / 2) * spacing_km + rng.uniform(-0.2, 0.2) * spacing_km
        y = (row - (side - 1) / 2) * spacing_km + rng.uniform(-0.2, 0.2) * spacing_km
        suffix = f" {i // len(STREETS) + 1}" if i >= len(STREETS) else ""
        places.append(
            Place(
                f"ST-{i + 1:03d}",
                STREETS[i % len(STREETS)] + suffix,
                STREETS_ZH[i % len(STREETS_ZH)] + suffix,
                round(CENTRE[0] + y / KM_PER_DEG_LAT, 6),
                round(CENTRE[1] + x / km_per_deg_lon, 6),
                x,
                y,
            )
        )
    return places


@dataclass(frozen=True)
class TownOptions:
    stations: int = 6
    slots: int = 6
    residents: int = 60
    speed: float = 60.0
    hours: float = 1.0  # simulated hours; 0 runs until stopped
    seed: int = 1
    trips_per_day: float = 2.0
    fill: float = 0.5  # share of slots stocked with a helmet at the start
    mix: Mix = field(default_factory=Mix)
    start_hour: int = 7
    workers: int = 0  # 0: one per station, at most 48
    fps: float = 5.0
    poll_hz: float = 10.0
    # For fault scenarios: each locker reaches the broker through a pullable cable, and its doors and
    # helmets outlive a power cut (a file per locker). Costs two relay threads per locker.
    faults: bool = False
    # Each locker serves its screen (the kiosk page) on a free loopback port, as the demo shows them.
    faces: bool = False

    def __post_init__(self) -> None:
        if self.slots not in PROFILES:
            raise ValueError(f"--slots must be one of {sorted(PROFILES)} (a pin profile exists for those)")
        if not 1 <= self.stations <= 999:
            raise ValueError("--stations must be 1..999")
        if self.residents < 1 or self.speed <= 0 or self.hours < 0:
            raise ValueError("--residents must be >= 1, --speed > 0, --hours >= 0")

    def shape(self) -> dict[str, object]:
        """What a kept town must keep: its stations, lockers and residents (flag name -> value)."""
        mix = {f"--{k.replace('_', '-')}s": v for k, v in asdict(self.mix).items()}
        return {"--stations": self.stations, "--slots": self.slots, "--residents": self.residents,
                "--seed": self.seed, "--fill": self.fill, **mix}  # fmt: skip

    @property
    def door_open_fault_s(self) -> float:
        # A door left open is a town-time matter (staff notice it), so it scales with speed; but people
        # at the kiosk act at wall-clock speed, so never below 15 s or a slow resident would trip it.
        return max(15.0, 90.0 / self.speed)


def load_kept(workdir: Path, options: TownOptions) -> dict[str, Any] | None:
    """The state a town left in ``workdir`` (``None``: none there); refused if these options describe another town."""
    path = workdir / KEPT_FILE
    if not path.exists():
        return None
    try:
        kept: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise KeptTownError(f"{path} cannot be read ({exc}): start the town without --keep") from None
    if kept.get("version") != 1 or not isinstance(kept.get("shape"), dict):
        raise KeptTownError(f"{path} was not written by this simulator: start the town without --keep")
    if not options.faults:
        raise KeptTownError("--keep needs the doors and helmets kept in files: drop --no-faults")
    if not kept.get("faults", False):
        raise KeptTownError(f"the town in {workdir} ran with --no-faults (its doors and helmets were not kept)")
    differ = [
        f"{flag} {kept['shape'].get(flag)} (this command: {value})"
        for flag, value in options.shape().items()
        if kept["shape"].get(flag) != value
    ]
    if differ:
        raise KeptTownError(
            f"the town kept in {workdir} was started with {', '.join(differ)}: give the same options, "
            "or start without --keep"
        )
    return kept


class Town:
    def __init__(
        self,
        options: TownOptions,
        *,
        workdir: Path,
        cloud_url: str,
        admin: CloudClient,
        sms_file: Path,
        mqtt_host: str = "127.0.0.1",
        mqtt_port: int = 1883,
        kept: dict[str, Any] | None = None,
    ) -> None:
        """With ``kept`` (:func:`load_kept`), the town goes on where it stopped: its stations and lockers exist,
        the lockers boot on their files, the residents hold what they held."""
        paho_poll.install()  # hundreds of MQTT clients in one process (see paho_poll)
        self.options = options
        self.workdir = workdir
        self.cloud_url = cloud_url
        self.admin = admin
        self.kept = kept
        self.inbox = SmsInbox(sms_file)
        if kept is not None:
            self.inbox.skip_existing()  # the codes in it were sent to the last run's sign-ins
        self.mqtt = (mqtt_host, mqtt_port)
        self.http = httpx.Client(
            base_url=cloud_url, timeout=30.0, limits=httpx.Limits(max_connections=64, max_keepalive_connections=64)
        )
        self.places = layout(options.stations, options.seed)
        self.station_ids = [p.id for p in self.places]
        self.rigs: list[SimLocker] = []
        self.cables: list[Cable] = []
        self.kiosks: list[threading.Lock] = []
        self.tally = Tally()
        self.trips_per_day = options.trips_per_day
        self.pass_kid = ""
        self.clock = SimClock(options.speed)
        self.residents: list[Resident] = []
        self.stop = threading.Event()
        self._queue: list[tuple[datetime, int, Resident]] = []
        self._queue_lock = threading.Lock()
        self._counter = itertools.count()
        self._open_doors: list[tuple[float, int, int]] = []  # (when, station, slot): doors a passer-by will shut
        self._doors_lock = threading.Lock()
        self._dispatcher: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._busy = 0
        self.lag = timedelta(0)
        self.max_lag = timedelta(0)
        self.alerts: Counter[str] = Counter()
        self.helmets = 0
        self.ended: timedelta | None = None  # simulated time when the residents were called home
        # Faults injected while it runs (the control channel): stations whose locker is killed, and the
        # events each had recorded by then; residents find their kiosk dark.
        self.down: set[int] = set()
        self._seq_at_kill: dict[int, int] = {}
        self._faults_lock = threading.Lock()
        self.paused = threading.Event()
        self.recovered: list[str] = []  # what the final check restored first (a cut cable, a killed locker)
        self._populated = False

    # -- geometry ------------------------------------------------------------------

    def distance_km(self, a: int, b: int) -> float:
        pa, pb = self.places[a], self.places[b]
        return math.hypot(pa.x_km - pb.x_km, pa.y_km - pb.y_km)

    def nearest(self, station: int, *, exclude: list[int]) -> int | None:
        others = [i for i in range(len(self.places)) if i != station and i not in exclude]
        return min(others, key=lambda i: self.distance_km(station, i)) if others else None

    def walk(self, a: int, b: int) -> timedelta:
        return timedelta(minutes=1 + self.distance_km(a, b) / 5.0 * 60)

    def ride(self, a: int, b: int, rng: random.Random) -> timedelta:
        return timedelta(minutes=2 + self.distance_km(a, b) / 15.0 * 60 + rng.uniform(0, 20))

    def destination(self, origin: int, rng: random.Random) -> int:
        if len(self.places) == 1:
            return origin
        return rng.choice([i for i in range(len(self.places)) if i != origin])

    def sleep_real(self, seconds: float) -> None:
        self.stop.wait(seconds)

    # -- building --------------------------------------------------------------------

    def build(self, progress: Progress | None = None) -> None:
        """Stations and lockers in the cloud, one edge instance each, helmets stocked by a technician.

        ``progress(step, done, total)`` hears each step: "lockers started", "lockers connected", "lockers stocked",
        "residents come".
        """
        tell: Progress = progress or (lambda _step, _done, _total: None)
        o = self.options
        profile = PROFILES[o.slots]
        if self.kept is not None:
            known = {s["id"] for s in self.admin.stations()}
            missing = [sid for sid in self.station_ids if sid not in known]
            if missing:
                raise KeptTownError(
                    f"the cloud of the kept town has no station {missing[0]} (its database is not the kept one?): "
                    "start the town without --keep"
                )
        # A sticker shown in maintenance mode stocks the helmet instead of returning it: the technician leaves
        # it with their pass after each batch, and the short window is the fallback if a locker missed that.
        timing = TimingSettings(poll_hz=o.poll_hz, door_open_fault_s=o.door_open_fault_s, maintenance_s=MAINTENANCE_S)
        if self.kept is None:
            self.admin.set_town_zone("default", TOWN_ZONE)
        for i, place in enumerate(self.places):
            locker_id = f"LK-{i + 1:04d}"
            if self.kept is None:
                self.admin.create_station(place.id, place.name, place.lat, place.lon, names={"zh": place.name_zh})
                self.admin.register_locker(locker_id, place.id, slot_count=o.slots, pin_profile=profile)
            host, port = self.mqtt
            if o.faults:
                self.cables.append(Cable(port, target_host=host))
                host, port = "127.0.0.1", self.cables[-1].port
            rig = SimLocker(
                locker_id,
                data_dir=self.workdir / "lockers" / locker_id,
                mqtt_host=host,
                mqtt_port=port,
                profile=profile,
                fps=o.fps,
                timing=timing,
                idle_camera=True,
                persist_physical=o.faults,
                face=FaceSettings(port=0) if o.faces else None,
            )
            rig.start()
            self.rigs.append(rig)
            self.kiosks.append(threading.Lock())
            tell("lockers started", i + 1, o.stations)
        deadline = time.monotonic() + 60 + len(self.rigs)
        while True:
            ready = sum(1 for r in self.rigs if r.service.rules.keys)
            tell("lockers connected", ready, len(self.rigs))
            if ready == len(self.rigs):
                break
            if time.monotonic() > deadline:
                missing = [f"{r.locker_id} ({'connected' if r.service.link.connected else 'not connected'})"
                           for r in self.rigs if not r.service.rules.keys]  # fmt: skip
                raise TimeoutError(f"{len(missing)} lockers got no pass keys: {', '.join(missing[:10])}")
            time.sleep(0.2)
        if self.kept is not None:  # the helmets are where the last run left them: in slots and in hands
            self.helmets = int(self.kept["helmets"])
            self.pass_kid = str(self.kept["pass_kid"]) or decode_pass(self.admin.technician_pass())[0].kid
            tell("residents come", 1, 1)
            return
        per_locker = max(1, round(o.slots * o.fill))
        serials = itertools.count(1)
        jobs = [(rig, [f"H-{next(serials):05d}" for _ in range(per_locker)]) for rig in self.rigs]
        done = itertools.count(1)

        last_read = [time.monotonic()]
        passes: list[tuple[float, str]] = []  # one technician pass serves every locker (each honours it once)
        passes_lock = threading.Lock()

        def technician_pass() -> str:
            with passes_lock:  # the cloud limits pass requests per caller: a fresh one every 2 minutes
                if not passes or time.monotonic() - passes[-1][0] > 120:
                    passes.append((time.monotonic(), self.admin.technician_pass()))
                return passes[-1][1]

        def stock(job: tuple[SimLocker, list[str]]) -> int:
            rig, helmets = job
            n = 0
            while n < len(helmets):  # a fresh technician pass before maintenance mode could run out
                # A locker honours a pass once: a second batch there needs a pass of its own.
                technician = technician_pass() if n == 0 else self.admin.technician_pass()
                if not self.pass_kid:
                    self.pass_kid = decode_pass(technician)[0].kid
                batch = helmets[n : n + 6]  # well within maintenance mode, even on a loaded machine
                stocked = kiosk.stock(rig, technician, batch)
                last_read[0] = time.monotonic()
                n += len(stocked)
                if len(stocked) < len(batch):
                    break
            tell("lockers stocked", next(done), o.stations)
            return n

        with ThreadPoolExecutor(max_workers=min(16, len(jobs))) as pool:
            self.helmets = sum(pool.map(stock, jobs))
        # Each technician left maintenance mode with their pass; the last stickers' repeat window passes
        # before residents come.
        self.sleep_real(max(0.0, last_read[0] + self.rigs[0].service.rules.repeat_window + 0.5 - time.monotonic()))
        tell("residents come", 1, 1)

    # -- running -----------------------------------------------------------------------

    def populate(self) -> None:
        o = self.options
        rng = random.Random(o.seed)
        start = self.clock.start.replace(hour=o.start_hour)
        kept: dict[int, dict[str, Any]] = {}
        if self.kept is not None:  # simulated time goes on from where the kept town stopped
            start = datetime.fromisoformat(self.kept["simulated"])
            kept = {int(r["n"]): r for r in self.kept["residents"]}
            self._restore_tally(self.kept["tally"])
        self.clock = SimClock(o.speed, start)
        kinds = o.mix.assign(o.residents, rng)
        from helmet_sim.demand import next_trip

        for n, kind in enumerate(kinds):
            r = Resident(n + 1, rng.randrange(len(self.places)), kind, random.Random(o.seed * 100_003 + n), start)
            # Misbehaving residents act early, so even a short run sees one of each kind.
            first = start + timedelta(minutes=rng.uniform(1, 20)) if kind != Behaviour.REGULAR else None
            r.next_at = first or next_trip(r.rng, start, o.trips_per_day)
            if r.n in kept:
                was = kept[r.n]
                r.account, r.holding, r.tried = was["account"], list(was["holding"]), list(was["tried"])
                r.destination = was["destination"]
                r.next_at = max(start, datetime.fromisoformat(was["next_at"]))
            self.residents.append(r)
            heapq.heappush(self._queue, (r.next_at, next(self._counter), r))
        self._populated = True
        self.save()

    def start(self) -> None:
        workers = self.options.workers or min(48, max(4, len(self.rigs)))
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="resident")
        self._dispatcher = threading.Thread(target=self._dispatch, name="dispatcher", daemon=True)
        self._dispatcher.start()

    def _dispatch(self) -> None:
        if self._pool is None:
            raise RuntimeError("start() creates the pool")
        while not self.stop.is_set():
            now = self.clock.now()
            due: list[Resident] = []
            with self._queue_lock:
                while self._queue and self._queue[0][0] <= now and not self.paused.is_set():
                    _, _, r = heapq.heappop(self._queue)
                    due.append(r)
            for r in due:
                with self._queue_lock:
                    self._busy += 1
                self._pool.submit(self._run, r, now)
            self._close_due_doors(time.monotonic())
            self.stop.wait(0.05)

    def _run(self, resident: Resident, now: datetime) -> None:
        started = self.clock.now()
        self.lag = started - resident.next_at  # how late the resident acts: all workers were busy
        self.max_lag = max(self.max_lag, self.lag)
        try:
            nxt = resident.act(self, started)
        except Exception:  # a bug must not silently freeze a resident
            log.exception("resident %s failed", resident.phone)
            self.tally.note(f"{resident.phone}: crashed (see log)", problem=True)
            nxt = now + timedelta(hours=1)
        with self._queue_lock:
            self._busy -= 1
            resident.next_at = nxt
            heapq.heappush(self._queue, (nxt, next(self._counter), resident))

    def door_left_open(self, station: int, slots: list[PhysicalSlot]) -> None:
        """Someone walked away from open doors; a passer-by shuts them after the locker raised its fault."""
        self.tally.add(doors_left_open=len(slots))
        self.tally.note(f"door left open at {self.station_ids[station]}")
        at = time.monotonic() + self.options.door_open_fault_s + 5
        with self._doors_lock:
            self._open_doors += [(at, station, s.number) for s in slots]

    def out_of_order(self, station: int) -> bool:
        return station in self.down

    def until_doors_shut(self) -> timedelta:
        """Simulated time until a door left open now has been shut by a passer-by (plus a margin)."""
        return timedelta(seconds=(self.options.door_open_fault_s + 5 + 3) * self.options.speed)

    def _close_due_doors(self, mono: float) -> int:
        """The passer-by shuts the doors due by ``mono``, except at a dark kiosk (the world of a killed locker
        is its next boot's); the slot is looked up on the station's current locker (a restart replaced it)."""
        with self._doors_lock:
            if not any(at <= mono for at, _, _ in self._open_doors):
                return 0  # the dispatcher asks every 50 ms: no lock taken for nothing
        with self._faults_lock, self._doors_lock:
            due = [(st, n) for at, st, n in self._open_doors if at <= mono and st not in self.down]
            self._open_doors = [d for d in self._open_doors if (d[1], d[2]) not in due]
            for st, n in due:
                self.rigs[st].physical.slots[n].close_door()
        return len(due)

    def busy(self) -> int:
        with self._queue_lock:
            return self._busy

    def finished(self) -> bool:
        o = self.options
        return bool(o.hours) and self.clock.elapsed() >= timedelta(hours=o.hours)

    def wind_down(self, timeout: float = 120.0) -> None:
        """Stop sending residents out; let every visit in progress end; restore every fault; shut doors left open."""
        if self.ended is None:
            self.ended = self.clock.elapsed()
        self.stop.set()
        if self._dispatcher is not None:
            self._dispatcher.join(timeout=5)
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self.recovered += self.recover()
        self._close_due_doors(math.inf)

    # -- figures -----------------------------------------------------------------------

    def refresh_alerts(self) -> None:
        self.alerts = Counter(a["kind"] for a in self.admin.alerts())

    def figures(self) -> dict[str, object]:
        t = self.tally
        held = sum(len(r.holding) for r in self.residents)
        return {
            "simulated": self.clock.now().strftime("%a %H:%M"),
            "elapsed": str(self.ended or self.clock.elapsed()).split(".")[0],
            "trips": t.trips,
            "borrows": t.borrows,
            "returns": t.returns,
            "helmets out": held,
            "refused (forged/replayed)": t.refused_as_expected,
            "no helmet / full": f"{t.no_helmet} / {t.no_slot}",
            "doors left open": t.doors_left_open,
            "alerts": sum(self.alerts.values()),
            "events": self.recorded_events(),
            "acting now (incl. queued)": self.busy(),
            "lag": f"{self.lag.total_seconds() / 60:.0f} min",
            "codes not read": t.unread,
            "errors": t.errors,
            **({"faults now": self.faults_now()} if self.cables or self.down or self.paused.is_set() else {}),
        }

    def recorded_events(self) -> int:
        """Events the lockers recorded (a killed locker: as many as it had committed when it went down)."""
        with self._faults_lock:
            return sum(
                self._seq_at_kill[i] if i in self.down else rig.service.store.last_seq()
                for i, rig in enumerate(self.rigs)
            )

    def faults_now(self) -> str:
        cut = [self.rigs[i].locker_id for i, c in enumerate(self.cables) if not c.plugged]
        parts = [f"cable cut: {', '.join(cut)}"] if cut else []
        parts += [f"killed: {', '.join(self.rigs[i].locker_id for i in sorted(self.down))}"] if self.down else []
        parts += ["paused"] if self.paused.is_set() else []
        return "; ".join(parts) or "-"

    # -- the verdict ---------------------------------------------------------------------

    def check(self, timeout: float = 90.0) -> list[str]:
        """Wind down (restoring every fault: :attr:`recovered` says which), let every event reach the cloud,
        then compare (consistency.py); [] is a pass."""
        self.wind_down()
        return self._compare_until(timeout)

    def check_now(self, timeout: float = 30.0) -> list[str]:
        """The same comparison on the running town, paused for it (and resumed after, unless it was paused)."""
        was_paused = self.paused.is_set()
        if not was_paused:
            self.pause()
        try:
            return self._compare_until(timeout)
        finally:
            if not was_paused:
                self.resume()

    def _compare_until(self, timeout: float) -> list[str]:
        deadline = time.monotonic() + timeout
        while True:
            hands = {r.resident_id or r.phone: list(r.holding) for r in self.residents if r.holding or r.resident_id}
            with self._faults_lock:
                problems = [
                    f"{self.rigs[i].locker_id}: killed and not restarted (its slots and events are not counted)"
                    for i in sorted(self.down)
                ]
                views = self._views()
            problems += compare(views, hands, self._open_loans()) + self._refusals()
            problems += self.tally.problems
            if not problems or time.monotonic() > deadline:
                return problems
            time.sleep(1.0)

    def _views(self) -> list[LockerView]:
        views = []
        for i, rig in enumerate(self.rigs):
            if i in self.down:
                continue
            cloud = self.admin.locker(rig.locker_id)
            views.append(
                LockerView(
                    locker_id=rig.locker_id,
                    physical=rig.physical.helmets(),
                    last_seq=rig.service.store.last_seq(),
                    outbox=rig.service.store.outbox_size(),
                    cloud_slots={s["slot"]: (s["state"], s["helmet_id"]) for s in cloud["slots"]},
                    cloud_acked_seq=cloud["acked_seq"],
                )
            )
        return views

    def _open_loans(self) -> dict[str, list[str]]:
        loans: dict[str, list[str]] = {}
        for ln in self.admin.all_loans(status="open"):
            loans.setdefault(ln["resident_id"] or "?", []).append(ln["helmet_id"])
        return loans

    def _refusals(self) -> list[str]:
        """Every forged and replayed pass a resident saw refused is one pass.rejected event in the cloud."""
        reasons = Counter(e["payload"].get("reason") for e in self.admin.events(kind="pass.rejected"))
        t, problems = self.tally, []
        if reasons["bad_signature"] != t.forged_shown:
            problems.append(f"{t.forged_shown} forged passes shown, cloud recorded {reasons['bad_signature']}")
        if reasons["replayed"] != t.replays_shown:
            problems.append(f"{t.replays_shown} passes replayed, cloud recorded {reasons['replayed']}")
        return problems

    # -- faults on the running town (helmet_sim.town_control) --------------------------

    def index_of(self, locker: object) -> int:
        """A station by its locker's id (``LK-0002``), its own id (``ST-002``) or its number (2)."""
        text = str(locker).strip()
        for i, rig in enumerate(self.rigs):
            if text in (rig.locker_id, self.station_ids[i], str(i + 1)):
                return i
        span = f"{self.rigs[0].locker_id}..{self.rigs[-1].locker_id}" if self.rigs else "none yet"
        raise FaultError(f"no locker {text!r} in this town (lockers {span}, or their station ids or numbers)")

    def _cable(self, i: int) -> Cable:
        if not self.cables:
            raise FaultError("this town's lockers have no network cables (it runs with --no-faults, or is the demo)")
        return self.cables[i]

    def cut(self, i: int) -> None:
        """Pull the locker's network cable: its MQTT connection dies and reconnects fail until :meth:`restore`."""
        self._cable(i).unplug()

    def restore(self, i: int) -> None:
        """Plug it back in: the locker reconnects at its next attempt (its back-off is at most 30 s)."""
        self._cable(i).plug()

    def kill(self, i: int) -> int:
        """The locker's Pi loses power between two visits (``SimLocker.cut_power``): no goodbye, only committed
        data kept; its kiosk is dark until :meth:`restart`. Answers the events it had recorded."""
        if not self.options.faults:
            raise FaultError("this town keeps no doors and helmets in files (--no-faults, or the demo): no kill")
        with self.kiosks[i], self._faults_lock:  # whoever stands at the kiosk finishes first
            if i in self.down:
                raise FaultError(f"{self.rigs[i].locker_id} is already killed: restart it")
            rig = self.rigs[i]
            self._seq_at_kill[i] = rig.service.store.last_seq()
            rig.cut_power()
            self.down.add(i)
            return self._seq_at_kill[i]

    def restart(self, i: int, *, timeout: float = 20.0) -> bool:
        """Boot the killed locker again on its own files; answers whether it is connected within ``timeout``."""
        with self.kiosks[i], self._faults_lock:
            if i not in self.down:
                raise FaultError(f"{self.rigs[i].locker_id} is running: kill it first")
            self.rigs[i] = self.rigs[i].power_on()
            self.down.discard(i)
        return self.rigs[i].service.link.wait_connected(timeout)

    def recover(self) -> list[str]:
        """Plug every cut cable back in and restart every killed locker; what was done, in words."""
        done = []
        for i, cable in enumerate(self.cables):
            if not cable.plugged:
                cable.plug()
                done.append(f"plugged {self.rigs[i].locker_id}'s cable back in")
        for i in sorted(self.down):
            self.restart(i)
            done.append(f"restarted {self.rigs[i].locker_id}")
        return done

    def pause(self, timeout: float = 60.0) -> dict[str, object]:
        """Simulated time stops, no resident sets out; the visits in progress end (up to ``timeout``), then the
        passer-by shuts every door left open (not at a dark kiosk): a still town to check."""
        started = time.monotonic()
        self.clock.pause()
        self.paused.set()
        while self.busy() and time.monotonic() - started < timeout:
            time.sleep(0.1)
        shut = self._close_due_doors(math.inf)
        self.save()
        return {"acting": self.busy(), "doors_shut": shut, "waited_s": round(time.monotonic() - started, 1)}

    def resume(self) -> None:
        self.paused.clear()
        self.clock.resume()

    def status(self) -> dict[str, object]:
        figures = self.figures()
        lockers = []
        with self._faults_lock:
            for i, rig in enumerate(self.rigs):
                down = i in self.down
                cable = ("plugged" if self.cables[i].plugged else "cut") if self.cables else "none"
                lockers.append({
                    "locker": rig.locker_id, "station": self.station_ids[i], "running": not down, "cable": cable,
                    "connected": not down and rig.service.link.connected,
                    "events": self._seq_at_kill[i] if down else rig.service.store.last_seq(),
                    "outbox": None if down else rig.service.store.outbox_size(),
                })  # fmt: skip
        return {"paused": self.paused.is_set(), "figures": figures, "lockers": lockers}

    # -- keeping it -----------------------------------------------------------------------

    def save(self) -> None:
        """What a kept town needs to go on (``town.json``): the residents' hands, the clock, the tally.

        Written after the residents come, at each pause and when the town closes (atomically). A town process
        killed meanwhile leaves the last one: the hands since then are lost, and a kept run's check says so.
        """
        if not self._populated:
            return
        with self.tally.lock:
            tally: dict[str, object] = {k: v for k, v in vars(self.tally).items() if isinstance(v, int)}
            tally["problems"] = list(self.tally.problems)
        state = {
            "version": 1,
            "shape": self.options.shape(),
            "faults": self.options.faults,
            "simulated": self.clock.now().isoformat(),
            "pass_kid": self.pass_kid,
            "helmets": self.helmets,
            "tally": tally,
            "residents": [self._kept_resident(r) for r in self.residents if r.n <= self.options.residents],
        }
        path = self.workdir / KEPT_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=1))
        os.replace(tmp, path)

    @staticmethod
    def _kept_resident(r: Resident) -> dict[str, object]:
        # Residents numbered past --residents are the ones a test moves by hand: not kept.
        return {
            "n": r.n, "account": r.resident_id, "holding": list(r.holding), "tried": list(r.tried),
            "destination": r.destination, "next_at": r.next_at.isoformat(),
        }  # fmt: skip

    def _restore_tally(self, saved: dict[str, Any]) -> None:
        with self.tally.lock:
            for name, value in saved.items():
                if name == "problems":
                    self.tally.problems = [str(p) for p in value]
                elif isinstance(getattr(self.tally, name, None), int):
                    setattr(self.tally, name, int(value))

    def close(self) -> None:
        self.stop.set()
        try:
            self.save()
        except OSError as exc:
            log.warning("the town's state could not be kept in %s: %s", self.workdir / KEPT_FILE, exc)
        for i, rig in enumerate(self.rigs):
            if i not in self.down:  # a killed locker has nothing left to stop
                rig.stop()
        for cable in self.cables:
            cable.close()
        self.http.close()


def _wait(check: object, timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise TimeoutError(message)
