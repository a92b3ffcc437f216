"""What the benchmark scripts share: the machine's description, percentiles, /proc sampling,
throw-away PostgreSQL databases, a registered town, and the summary each script leaves for
``bench/run.py``.

Every script writes its report (markdown) and a JSON summary next to it in
``bench/results/``; ``bench/run.py`` gathers them into ``bench/RESULTS.md``.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
# Tests point this elsewhere so a smoke run never overwrites the committed results.
RESULTS = Path(os.environ.get("BENCH_RESULTS_DIR", BENCH / "results"))
BIN = Path(sys.executable).parent
PG = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
TICK = os.sysconf("SC_CLK_TCK")

sys.path.insert(0, str(ROOT / "tests"))  # tests/support: the synthetic locker and process helpers


# -- the machine -------------------------------------------------------------


def _first_line(cmd: list[str]) -> str:
    exe = shutil.which(cmd[0]) or (f"/usr/sbin/{cmd[0]}" if Path(f"/usr/sbin/{cmd[0]}").exists() else None)
    if exe is None:
        return "not installed"
    try:
        out = subprocess.run([exe, *cmd[1:]], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc})"
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0] if text else "unknown"


def pg_version(url: str = PG) -> str:
    try:
        import psycopg

        with psycopg.connect(url, connect_timeout=5) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            return f"PostgreSQL {row[0]}" if row else "unknown"
    except Exception as exc:  # the report says so instead of failing
        return f"unreachable ({type(exc).__name__})"


def machine() -> dict[str, str]:
    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        platform.processor() or "unknown",
    )
    mem_kb = next(
        int(ln.split()[1]) for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal")
    )
    os_name = platform.platform()
    release = Path("/etc/os-release")
    if release.exists():
        m = re.search(r'^PRETTY_NAME="?([^"\n]+)', release.read_text(), re.M)
        if m:
            os_name = f"{m.group(1)} ({platform.release()})"
    mosq = _first_line(["mosquitto", "-h"])
    return {
        "cpu": cpu,
        "cores": str(len(os.sched_getaffinity(0))),
        "ram": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "os": os_name,
        "python": platform.python_version(),
        "mosquitto": mosq.replace("mosquitto version ", ""),
        "postgresql": pg_version(),
        "load": ", ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def machine_line() -> str:
    m = machine()
    return (
        f"{m['cores']} cores, {m['cpu']}, {m['ram']} RAM, {m['os']}, Python {m['python']}, "
        f"Mosquitto {m['mosquitto']}, {m['postgresql']}; load average {m['load']}"
    )


# -- numbers -----------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def command_line() -> str:
    return f".venv/bin/python {' '.join(sys.argv)}"


# -- /proc -------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine, from /proc/stat."""
    parts = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = parts[3] + parts[4]
    total = sum(parts[:8])
    return (total - idle) / TICK, total / TICK


class ProcWatch:
    """Samples RSS of some processes in the background; CPU is read at start and end."""

    def __init__(self, pids: dict[str, int], every: float = 0.5) -> None:
        self.pids = pids
        self.every = every
        self.rss: dict[str, list[float]] = {name: [] for name in pids}
        self._cpu0: dict[str, float] = {}
        self._machine0 = (0.0, 0.0)
        self._t0 = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ProcWatch:
        self._cpu0 = {n: cpu_seconds(p) for n, p in self.pids.items()}
        self._machine0 = machine_cpu_seconds()
        self._t0 = time.monotonic()
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            for n, p in self.pids.items():
                with suppress(FileNotFoundError, ProcessLookupError):
                    self.rss[n].append(rss_mb(p))
            self._stop.wait(self.every)

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.seconds = time.monotonic() - self._t0
        self.cpu = {n: (cpu_seconds(p) - self._cpu0[n]) / self.seconds * 100 for n, p in self.pids.items()}
        busy, total = machine_cpu_seconds()
        self.machine_cpu = (busy - self._machine0[0]) / max(total - self._machine0[1], 1e-9) * 100

    def peak(self, name: str) -> float:
        return max(self.rss[name], default=0.0)


# -- databases ---------------------------------------------------------------


@contextmanager
def pg_database(base: str = PG) -> Iterator[str]:
    """A fresh PostgreSQL database for one measurement (SQLAlchemy URL), dropped afterwards."""
    import psycopg

    name = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{base.rsplit('/', 1)[0].replace('postgresql://', 'postgresql+psycopg://')}/{name}"
    finally:
        with psycopg.connect(base, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def register_town(url: str, *, lockers: int, per_station: int, slots: int = 6, stock: bool = True) -> list[str]:
    """Migrate, then register ``lockers`` lockers, ``per_station`` at each station, with their slots
    (stocked with helmets, or empty), directly in the database as the API would. Returns the locker ids."""
    from sqlmodel import Session

    from helmet_cloud.adapters.database import make_engine, migrate
    from helmet_cloud.models import Locker, Slot, Station

    migrate(url)
    engine = make_engine(url)
    ids = [f"LK-{n:04d}" for n in range(1, lockers + 1)]
    stations = (lockers + per_station - 1) // per_station
    with Session(engine) as s:
        for n in range(1, stations + 1):
            s.add(Station(id=f"ST-{n:04d}", name=f"Station {n}", lat=47.0 + n / 10_000, lon=8.0 + n / 10_000))
        s.flush()
        for i, lk in enumerate(ids):
            s.add(Locker(id=lk, station_id=f"ST-{i // per_station + 1:04d}", slot_count=slots))
        s.flush()
        for lk in ids:
            for slot in range(1, slots + 1):
                helmet = f"H-{lk[3:]}-{slot}" if stock else None
                s.add(Slot(locker_id=lk, slot=slot, state="occupied" if stock else "empty", helmet_id=helmet))
        s.commit()
    engine.dispose()
    return ids


# -- what a script leaves for run.py ------------------------------------------


@dataclass
class Goal:
    goal: str
    measured: str
    met: bool | None  # None: reported, no goal to meet
    why: str = ""


@dataclass
class Summary:
    figure: str
    command: str
    report: str  # markdown, without a top-level heading
    goals: list[Goal] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=1, default=str))

    @staticmethod
    def read(path: Path) -> Summary:
        d = json.loads(path.read_text())
        d["goals"] = [Goal(**g) for g in d["goals"]]
        return Summary(**d)


def finish(summary: Summary, name: str, json_path: Path | None) -> None:
    """Print the report, keep it as results/<name>.md, and the summary as JSON."""
    md = f"# {summary.figure}\n\nMachine: {machine_line()}.\n\nCommand: `{summary.command}`\n\n{summary.report}"
    if summary.goals:
        md += "\n" + goals_table(summary.goals)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.md").write_text(md)
    print(md)
    summary.write(json_path or RESULTS / f"{name}.json")


def goals_table(goals: list[Goal]) -> str:
    lines = ["| goal | measured | met |", "|---|---|---|"]
    for g in goals:
        met = "—" if g.met is None else ("yes" if g.met else "**no**")
        lines.append(f"| {g.goal} | {g.measured} | {met} |")
    for g in goals:
        if g.why:
            lines.append("")
            lines.append(f"- {g.goal}: {g.why}")
    return "\n".join(lines) + "\n"


def publish_locker_config(port: int, key: Any, locker_id: str = "LK-0001", *, slots: int = 6) -> None:
    """Play the cloud's part a locker needs first: its retained config with the pass key that signs ``key``'s passes."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from helmet_protocol import topics
    from helmet_protocol.keys import public_key_b64
    from helmet_protocol.messages import LockerConfig
    from helmet_protocol.topics import Channel

    cfg = LockerConfig(
        locker_id=locker_id,
        slot_count=slots,
        pass_keys={"k1": public_key_b64(key)},
        helmet_url_host="helmets.example.org",
        ts=datetime.now(UTC),
    )
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"bench-config-{locker_id}")
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        client.publish(topics.topic(locker_id, Channel.CONFIG), cfg.to_json(), qos=1, retain=True).wait_for_publish(5)
    finally:
        client.disconnect()
        client.loop_stop()
