"""The demo: a small town on one machine, on the embedded defaults.

Starts a broker (Mosquitto if installed, else amqtt), the cloud on SQLite as
its own process, one simulated locker per station, and residents who borrow
and return helmets through the cloud's API and the lockers' cameras.
"""

from __future__ import annotations

import logging
import os
import random
import secrets
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table

from helmet_sim.broker import Broker, start_amqtt, start_broker, start_mosquitto
from helmet_sim.cloud_client import CloudClient, CloudError
from helmet_sim.consistency import LockerView, compare, verdict
from helmet_sim.physical import PhysicalError
from helmet_sim.rig import SimLocker

log = logging.getLogger(__name__)
ADMIN = "demo-admin"
PLACES = ["Town hall", "Station square", "Lakeside", "Library", "Hospital", "Market", "School", "Stadium"]


@dataclass
class Tally:
    borrows: int = 0
    returns: int = 0
    refused: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    recent: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        with self.lock:
            self.recent = [*self.recent[-7:], f"{time.strftime('%H:%M:%S')} {text}"]


class Town:
    def __init__(self, workdir: Path, broker: Broker, cloud_url: str, sms_file: Path, admin_password: str) -> None:
        self.workdir = workdir
        self.broker = broker
        self.cloud_url = cloud_url
        self.sms_file = sms_file
        self.admin = CloudClient(cloud_url).login(ADMIN, admin_password)
        self.lockers: dict[str, SimLocker] = {}
        self.kiosk_locks: dict[str, threading.Lock] = {}
        self.station_of: dict[str, str] = {}
        self.tally = Tally()
        self.stop = threading.Event()
        self.hands: dict[str, list[str]] = {}  # resident phone -> helmets they carry
        self.clients: dict[str, CloudClient] = {}
        self.threads: list[threading.Thread] = []

    def build(self, stations: int, helmets_per_locker: int) -> None:
        rng = random.Random(7)
        serial = 1
        for i in range(stations):
            station_id, locker_id = f"ST-{i + 1:03d}", f"LK-{i + 1:04d}"
            self.admin.create_station(
                station_id, PLACES[i % len(PLACES)], 47.37 + rng.uniform(-0.02, 0.02), 8.54 + rng.uniform(-0.03, 0.03)
            )
            self.admin.register_locker(locker_id, station_id, slot_count=6)
            rig = SimLocker(locker_id, data_dir=self.workdir / "lockers" / locker_id, mqtt_port=self.broker.port)
            rig.start()
            self.lockers[locker_id] = rig
            self.kiosk_locks[locker_id] = threading.Lock()
            self.station_of[locker_id] = station_id
        for locker_id, rig in self.lockers.items():
            _wait(lambda r=rig: bool(r.service.rules.keys), 15, f"{locker_id} got no pass keys")
            rig.show(self.admin.technician_pass(), seconds=1.0)
            for _ in range(helmets_per_locker):
                rig.insert(f"H-{serial:05d}")
                serial += 1

    def resident(self, n: int) -> None:
        rng = random.Random(n)
        phone = f"+4179{1000000 + n:07d}"
        client = CloudClient(self.cloud_url).sign_in_resident(phone, self.sms_file)
        self.clients[phone] = client
        holding = self.hands.setdefault(phone, [])
        while not self.stop.is_set():
            self.stop.wait(rng.uniform(1.0, 4.0))
            if self.stop.is_set():
                break
            try:
                if holding:
                    self._return(rng, holding)
                else:
                    self._borrow(rng, client, holding)
            except (CloudError, PhysicalError, TimeoutError) as exc:
                with self.tally.lock:
                    self.tally.refused += 1
                self.tally.note(f"resident {n}: {exc}"[:90])

    def _borrow(self, rng: random.Random, client: CloudClient, holding: list[str]) -> None:
        status = {s["id"]: s for s in client.stations()}
        choices = [lk for lk, st in self.station_of.items() if status[st]["helmets_available"] > 0]
        if not choices:
            return
        locker_id = rng.choice(choices)
        p = client.request_pass(rng.choice([1, 1, 2]), station_id=self.station_of[locker_id])
        with self.kiosk_locks[locker_id]:
            rig = self.lockers[locker_id]
            rig.show(p["text"], seconds=1.0)
            taken = rig.take(p["quantity"], timeout=3)
        holding.extend(taken)
        with self.tally.lock:
            self.tally.borrows += len(taken)
        self.tally.note(f"borrowed {', '.join(taken) or 'nothing'} at {locker_id}")

    def _return(self, rng: random.Random, holding: list[str]) -> None:
        locker_id = rng.choice(list(self.lockers))
        with self.kiosk_locks[locker_id]:
            helmet = holding[0]
            self.lockers[locker_id].insert(helmet, timeout=3)
        holding.pop(0)
        with self.tally.lock:
            self.tally.returns += 1
        self.tally.note(f"returned {helmet} at {locker_id}")

    def view(self) -> Group:
        table = Table(title="Stations (as the cloud reports them)")
        for col in ("station", "name", "helmets", "free slots", "online"):
            table.add_column(col)
        try:
            for s in self.admin.stations():
                table.add_row(
                    s["id"],
                    s["name"],
                    str(s["helmets_available"]),
                    str(s["free_slots"]),
                    f"{s['lockers_online']}/{s['lockers']}",
                )
        except (CloudError, OSError) as exc:
            table.add_row("-", f"cloud unreachable: {exc}"[:60], "", "", "")
        t = self.tally
        summary = (
            f"borrowed {t.borrows}   returned {t.returns}   helmets out {t.borrows - t.returns}   refused {t.refused}"
        )
        return Group(table, Panel(summary + "\n" + "\n".join(t.recent), title="Activity"))

    def start_residents(self, count: int) -> None:
        self.threads = [threading.Thread(target=self.resident, args=(n,), daemon=True) for n in range(count)]
        for t in self.threads:
            t.start()

    def check(self, timeout: float = 30.0) -> list[str]:
        """Stop the residents, let every event reach the cloud, then compare (see consistency.py)."""
        self.stop.set()
        for t in self.threads:
            t.join(timeout=15)
        deadline = time.monotonic() + timeout
        while True:
            views = self._views()
            problems = compare(views, self.hands, self._open_loans())
            if not problems or time.monotonic() > deadline:
                return problems
            time.sleep(0.5)

    def _views(self) -> list[LockerView]:
        views = []
        for locker_id, rig in self.lockers.items():
            cloud = self.admin.locker(locker_id)
            views.append(
                LockerView(
                    locker_id=locker_id,
                    physical=rig.physical.helmets(),
                    last_seq=rig.service.store.last_seq(),
                    outbox=rig.service.store.outbox_size(),
                    cloud_slots={s["slot"]: (s["state"], s["helmet_id"]) for s in cloud["slots"]},
                    cloud_acked_seq=cloud["acked_seq"],
                )
            )
        return views

    def _open_loans(self) -> dict[str, list[str]]:
        return {phone: [ln["helmet_id"] for ln in c.loans(status="open")] for phone, c in self.clients.items()}

    def close(self) -> None:
        self.stop.set()
        for rig in self.lockers.values():
            rig.stop()
        for c in self.clients.values():
            c.close()
        self.admin.close()


def _wait(check: object, timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise TimeoutError(message)


def run_demo(
    *, stations: int, helmets_per_locker: int, port: int, workdir: Path, duration: float, broker: str = "auto"
) -> int:
    console = Console()
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    if broker == "amqtt":
        mqtt = start_amqtt()
    elif broker == "mosquitto":
        mqtt = start_mosquitto(workdir / "broker")
    else:
        mqtt = start_broker(workdir / "broker")
    console.print(f"[bold]broker[/]: {mqtt.kind} on 127.0.0.1:{mqtt.port}")
    sms_file = workdir / "sms.jsonl"
    env = {
        **os.environ,
        "HELMET_DATABASE_URL": f"sqlite:///{workdir}/cloud.db",
        "HELMET_DATA_DIR": str(workdir),
        "HELMET_MQTT_PORT": str(mqtt.port),
        "HELMET_SMS_BACKEND": f"file:{sms_file}",
        "HELMET_INGEST_SHARED": "true" if mqtt.shared_subscriptions else "false",
    }
    exe = Path(sys.executable).parent / "helmet-cloud"
    password = secrets.token_urlsafe(9)
    subprocess.run(  # noqa: S603 (our own entry point)
        [exe, "add-user", ADMIN, "--role", "admin", "--password", password],
        env=env,
        check=True,
        capture_output=True,
    )
    cloud_log = (workdir / "cloud.log").open("w")
    cloud = subprocess.Popen(  # noqa: S603 (our own entry point)
        [exe, "serve", "--port", str(port)],
        env=env,
        stdout=cloud_log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # stopped by us, after the lockers, not by the terminal's Ctrl-C
    )
    base = f"http://127.0.0.1:{port}"
    town: Town | None = None
    problems = ["the town never started"]
    try:
        CloudClient(base).wait_ready(60)
        town = Town(workdir, mqtt, base, sms_file, password)
        console.print("setting up stations, lockers and helmets ...")
        town.build(stations, helmets_per_locker)
        console.print(
            f"[bold green]ready[/]  API docs: {base}/docs   stations: {base}/api/stations\n"
            f"        staff login: {ADMIN} / {password}   logs: {workdir}/cloud.log\n"
            "        Ctrl-C stops the demo"
        )
        town.start_residents(stations * 2)
        ends = time.monotonic() + duration if duration else None
        try:
            with Live(town.view(), console=console, refresh_per_second=1) as live:
                while ends is None or time.monotonic() < ends:
                    time.sleep(1)
                    live.update(town.view())
        except KeyboardInterrupt:
            pass
        console.print("checking that the cloud agrees with the lockers and the residents ...")
        problems = town.check()
        console.print(verdict(problems, lockers=len(town.lockers), helmets_out=sum(map(len, town.hands.values()))))
    except KeyboardInterrupt:
        problems = ["interrupted before the check"]
    finally:
        console.print("stopping ...")
        if town is not None:
            town.close()
        cloud.terminate()
        cloud.wait(timeout=10)
        cloud_log.close()
        mqtt.stop()
    return 1 if problems else 0
