"""Town scale: 10, 100 and 1,000 lockers with real MQTT connections against one cloud.

For each size: a private Mosquitto, a fresh PostgreSQL database with the
stations and lockers registered, the real cloud (``helmet-cloud serve``: API
and its in-process ingest worker, as one town runs it), and protocol-level
lockers (``bench/town_lockers.py``: their own MQTT connections, the edge's real
outbox and forwarder; no camera or GPIO). Phases:

1. connect every locker, stock 6 helmets each (not measured);
2. peak: every locker borrows or returns at a Poisson rate for ``--seconds``:
   events/s offered and acknowledged, event-to-API latency (the event published
   -> the cloud's events API returns it; the dashboard is another engineer's
   work, so the API stands in for it), broker and cloud CPU and memory (/proc);
3. burst: every locker records ``--burst`` events at once; time until the cloud
   has acknowledged them all (the sustained ingest rate with all connections up).

    .venv/bin/python bench/town.py [--sizes 10,100,1000] [--seconds 60] [--burst 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Goal, ProcWatch, Summary, command_line, finish, pct, pg_database, register_town
from support.processes import CloudProcess
from town_lockers import Plan, TownProcesses

from helmet_sim.broker import start_mosquitto

LOCKERS_PER_STATION = 4
PEAK_PER_HOUR = 12  # busiest realistic hour: each of 6 helmets out and back once
PROBE_EVERY = 0.5


class Prober:
    """Polls the events API until a probed event shows up; event published -> visible."""

    def __init__(self, base: str, token: str) -> None:
        self.base = base
        self.headers = {"Authorization": f"Bearer {token}"}
        self.pool = ThreadPoolExecutor(4)
        self.latencies_ms: list[float] = []
        self.lost = 0
        self._lock = threading.Lock()

    def probe(self, locker_id: str, event_id: str, published: float) -> None:
        self.pool.submit(self._wait, locker_id, event_id, published)

    def _wait(self, locker_id: str, event_id: str, published: float) -> None:
        with httpx.Client(base_url=self.base, headers=self.headers, timeout=10) as http:
            deadline = time.time() + 30
            while time.time() < deadline:
                r = http.get("/api/events", params={"locker_id": locker_id, "order": "desc", "limit": 5})
                if any(e["event_id"] == event_id for e in r.json()["events"]):
                    with self._lock:
                        self.latencies_ms.append((time.time() - published) * 1000)
                    return
                time.sleep(0.005)
        with self._lock:
            self.lost += 1

    def close(self) -> None:
        self.pool.shutdown(wait=True)


def wait_for(cond: object, timeout: float, what: str) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if cond():  # type: ignore[operator]
            return time.monotonic() - t0
        time.sleep(0.2)
    raise TimeoutError(f"{what} not reached in {timeout:.0f} s")


def one_size(n: int, seconds: float, burst: int, tmp: Path) -> dict[str, float]:
    rate = PEAK_PER_HOUR * 10 / 3600  # ten times the busiest realistic hour
    broker = start_mosquitto(tmp / f"broker-{n}")
    stations = (n + LOCKERS_PER_STATION - 1) // LOCKERS_PER_STATION
    with pg_database() as url:
        ids = register_town(url, lockers=n, per_station=LOCKERS_PER_STATION, stock=False)
        cloud = CloudProcess(tmp / f"cloud-{n}", broker.port, url)
        cloud.start()
        assert cloud.proc is not None
        cloud.add_user("bench", "staff", "bench-password-1")
        token = httpx.post(
            f"{cloud.url}/api/auth/login", json={"username": "bench", "password": "bench-password-1"}
        ).json()["token"]
        data = tmp / f"lockers-{n}"
        data.mkdir()
        town = TownProcesses(ids, Plan(port=broker.port, data_dir=str(data), rate=rate, probe_every=PROBE_EVERY))
        prober = Prober(cloud.url, token)
        try:
            connect_s = wait_for(lambda: town.total()[0] == n, 120, f"{n} lockers connected")
            town.send("stock")
            wait_for(lambda: town.total()[2] >= 6 * n and town.total()[3] == 0, 300, "stocking acknowledged")
            town.probes.clear()
            _, pub0, ack0, _ = town.total()
            with ProcWatch({"broker": broker.process.pid, "cloud": cloud.proc.pid}) as watch:  # type: ignore[attr-defined]
                town.send("peak")
                t_end = time.monotonic() + seconds
                while time.monotonic() < t_end:
                    time.sleep(0.1)
                    town.drain()
                    while town.probes:
                        prober.probe(*town.probes.pop())
                town.send("calm")
                _, pub1, ack1, backlog = town.total()
            elapsed = watch.seconds
            drain_s = wait_for(lambda: town.total()[3] == 0, 120, "peak acknowledged")
            prober.close()
            ack2 = town.total()[2]
            town.burst_ready.clear()
            town.send("burst", burst)
            with ProcWatch({"broker": broker.process.pid, "cloud": cloud.proc.pid}) as bwatch:  # type: ignore[attr-defined]
                wait_for(lambda: town.total()[2] >= ack2 + burst * n, 600, "burst acknowledged")
            # From the moment every outbox held its burst (each locker's own disk writes are not the cloud's cost).
            burst_s = time.time() - max(town.burst_ready.values())
            lat = prober.latencies_ms
            return {
                "lockers": n,
                "stations": stations,
                "connect_s": connect_s,
                "offered": (pub1 - pub0) / elapsed,
                "acked": (ack1 - ack0) / elapsed,
                "backlog": backlog,
                "drain_s": drain_s,
                "probes": len(lat),
                "lost_probes": prober.lost,
                "p50": statistics.median(lat) if lat else float("nan"),
                "p99": pct(lat, 99),
                "broker_cpu": watch.cpu["broker"],
                "cloud_cpu": watch.cpu["cloud"],
                "machine_cpu": watch.machine_cpu,
                "broker_mb": watch.peak("broker"),
                "cloud_mb": watch.peak("cloud"),
                "burst_events": burst * n,
                "burst_rate": burst * n / burst_s,
                "burst_broker_cpu": bwatch.cpu["broker"],
                "burst_cloud_cpu": bwatch.cpu["cloud"],
                "loadgen_pids": len(town.pids),
            }
        finally:
            town.stop()
            cloud.stop()
            broker.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10,100,1000")
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--burst", type=int, default=20)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            print(f"town: {n} lockers", file=sys.stderr)
            results.append(one_size(n, args.seconds, args.burst, Path(tmp)))
    rate_h = PEAK_PER_HOUR * 10
    lines = [
        f"Protocol-level synthetic lockers (`bench/town_lockers.py`), each with its own MQTT connection, "
        f"client id, persistent session, Last Will, status every minute, the edge's real SQLite outbox and "
        f"`Forwarder` (removed on the cloud's `ack`), and a retained `state` after each change; not the "
        f"simulator's `helmet-sim town` (built concurrently by another engineer). {LOCKERS_PER_STATION} lockers "
        f"per station, 6 slots each. The cloud is one `helmet-cloud serve` process (API + in-process ingest "
        f"worker) on PostgreSQL; the broker a private Mosquitto; all on this machine, with the load generator.",
        "",
        f"Peak: every locker borrows or returns {rate_h} times an hour at random (Poisson) for {args.seconds:g} s: "
        f"ten times the busiest realistic hour ({PEAK_PER_HOUR}/hour: each of its 6 helmets out and back once). "
        f"Latency: a probe every {PROBE_EVERY} s takes an event at publish time and polls the events API "
        f"(`GET /api/events?locker_id=...&order=desc`, every 5 ms) until it is there; the staff dashboard is "
        f"being built by another engineer and reads the same data. Burst: every locker records {args.burst} "
        f"events at once; the rate at which the cloud acknowledges them all.",
        "",
        "| lockers | connect all (s) | peak offered (events/s) | peak acknowledged (events/s) | "
        "event -> API p50 / p99 (ms) | probes | broker CPU / RSS | cloud CPU / RSS | machine CPU | "
        "burst (events) | burst acknowledged (events/s) | burst: broker / cloud CPU |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['lockers']:,} | {r['connect_s']:.1f} | {r['offered']:.1f} | {r['acked']:.1f} | "
            f"{r['p50']:.0f} / {r['p99']:.0f} | {r['probes']} (lost {r['lost_probes']}) | "
            f"{r['broker_cpu']:.1f} % / {r['broker_mb']:.0f} MB | {r['cloud_cpu']:.0f} % / {r['cloud_mb']:.0f} MB | "
            f"{r['machine_cpu']:.0f} % | {r['burst_events']:,} | {r['burst_rate']:,.0f} | "
            f"{r['burst_broker_cpu']:.0f} % / {r['burst_cloud_cpu']:.0f} % |"
        )
    lines += [
        "",
        "CPU is % of one core over the phase (from /proc/<pid>/stat); machine CPU is % of all cores (/proc/stat) "
        "and includes the load generator and the prober. RSS is the peak sampled every 0.5 s.",
    ]
    goals = []
    if results:
        big = results[-1]
        small = results[0]
        growth = ""
        if len(results) > 1:
            per_conn = (big["broker_mb"] - small["broker_mb"]) / max(1, big["lockers"] - small["lockers"]) * 1024
            growth = f"; broker memory grows ~{per_conn:.0f} KB per connected locker"
        lines.append(
            f"\nBaseline in the same run: the {small['lockers']}-locker town ({small['cloud_cpu']:.0f} % cloud CPU, "
            f"p99 {small['p99']:.0f} ms); at {big['lockers']:,} lockers the cloud uses "
            f"{big['cloud_cpu'] / max(small['cloud_cpu'], 0.1):.1f}x the CPU for "
            f"{big['acked'] / max(small['acked'], 1e-9):.0f}x the events{growth}."
        )
        goals = [
            Goal(
                f"{big['lockers']:,} lockers sustain the peak (acknowledged = offered)",
                f"{big['acked']:.1f} of {big['offered']:.1f} events/s, {big['backlog']} behind at the end",
                big["acked"] >= 0.95 * big["offered"],
            ),
            Goal(
                f"event -> API latency at {big['lockers']:,} lockers (no goal set; reported)",
                f"p50 {big['p50']:.0f} ms, p99 {big['p99']:.0f} ms",
                None,
            ),
            Goal(
                f"burst with {big['lockers']:,} connections (reported against ingest figure)",
                f"{big['burst_rate']:,.0f} events/s",
                None,
            ),
        ]
    finish(
        Summary("Town scale", command_line(), "\n".join(lines) + "\n", goals, {"sizes": results}),
        "town",
        args.json,
    )


if __name__ == "__main__":
    main()
