"""A simulated town, end to end, for hours of simulated time: ``helmet-sim town`` measured.

Everything is the real system but the hardware and the people: a private
Mosquitto, the cloud on SQLite as its own process (the embedded defaults),
every locker a real edge instance (decoder, slot state machines, SQLite
outbox, its own MQTT connection) on mock pins and a virtual camera, and
residents on an accelerated clock who sign in by SMS code, get passes over
HTTP and show them to the cameras; some misbehave on purpose.

Baseline, same run: the same town with every locker up and no resident
(60 s), so the residents' cost reads as a ratio. Then the residents for
``--hours`` simulated hours, then the consistency check (the verdict).

    .venv/bin/python bench/sim_town.py [--stations 50] [--slots 12] [--residents 1000] [--speed 60] [--hours 10]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Goal, ProcWatch, Summary, command_line, finish

from helmet_sim.broker import free_port
from helmet_sim.cloud_client import CloudClient
from helmet_sim.embedded import ADMIN, start_embedded
from helmet_sim.residents import Mix
from helmet_sim.runner import cloud_settings, log_to
from helmet_sim.town import Town, TownOptions


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stations", type=int, default=50)
    ap.add_argument("--slots", type=int, default=12)
    ap.add_argument("--residents", type=int, default=1000)
    ap.add_argument("--speed", type=float, default=60.0)
    ap.add_argument("--hours", type=float, default=10.0)
    ap.add_argument("--trips-per-day", type=float, default=1.0)
    ap.add_argument("--baseline", type=float, default=60.0, help="seconds of the idle town")
    ap.add_argument("--name", default=None, help="results/<name>.md (default town-<stations>)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    options = TownOptions(
        stations=args.stations, slots=args.slots, residents=args.residents, speed=args.speed, hours=args.hours,
        trips_per_day=args.trips_per_day, start_hour=6,
        mix=Mix(forger=0.01, replayer=0.01, keeper=0.02, door_leaver=0.01),
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        log_to(work / "town.log")
        embedded = start_embedded(
            work / "cloud", port=free_port(), broker="mosquitto", settings=cloud_settings(options)
        )
        admin = CloudClient(embedded.base_url).login(ADMIN, embedded.admin_password)
        town = Town(
            options, workdir=work, cloud_url=embedded.base_url, admin=admin, sms_file=embedded.sms_file,
            mqtt_port=embedded.broker.port,
        )  # fmt: skip
        pids = {"simulator": __import__("os").getpid(), "cloud": embedded.cloud.pid}
        broker = getattr(embedded.broker, "process", None)
        if broker is not None:
            pids["broker"] = broker.pid
        try:
            t0 = time.monotonic()
            town.build(
                lambda step, done, total: print(f"  {step}: {done}/{total}", flush=True) if done == total else None
            )
            built = time.monotonic() - t0
            print(f"built in {built:.0f} s: {town.helmets} helmets", flush=True)
            with ProcWatch(pids) as idle:
                time.sleep(args.baseline)
            town.populate()
            town.start()
            with ProcWatch(pids) as busy:
                printed = time.monotonic()
                while not town.finished():
                    time.sleep(1)
                    if time.monotonic() - printed >= 30:
                        printed = time.monotonic()
                        town.refresh_alerts()
                        print(" ".join(f"{k}={v}" for k, v in town.figures().items()), flush=True)
            t1 = time.monotonic()
            problems = town.check()
            checked = time.monotonic() - t1
            town.refresh_alerts()
            events = sum(r.service.store.last_seq() for r in town.rigs)
        finally:
            town.close()
            admin.close()
            embedded.stop()
    t = town.tally
    out = sum(len(r.holding) for r in town.residents)
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(town.alerts.items())) or "none"
    rows = [
        (
            "simulated time",
            f"{str(town.ended).split('.')[0]} from 06:00 at x{options.speed:g} ({busy.seconds:.0f} s real)",
        ),
        ("set-up (register, start, stock)", f"{built:.0f} s for {options.stations} lockers, {town.helmets} helmets"),
        ("residents", f"{options.residents} ({options.trips_per_day:g} trips/day on average)"),
        ("trips / helmets borrowed / returned / still out", f"{t.trips} / {t.borrows} / {t.returns} / {out}"),
        ("refusals seen (forged / replayed shown)", f"{t.refused_as_expected} ({t.forged_shown} / {t.replays_shown})"),
        ("no helmet anywhere tried / locker full on return", f"{t.no_helmet} / {t.no_slot}"),
        ("cloud refused a pass / doors left open / errors", f"{t.cloud_refused} / {t.doors_left_open} / {t.errors}"),
        ("codes a kiosk did not read within 10 s (overload)", str(t.unread)),
        (
            "events recorded by the lockers (all reached the cloud once)" if not problems else "events recorded",
            str(events),
        ),
        ("alerts raised by the cloud", kinds),
        ("worst scheduler lag (simulated)", f"{town.max_lag.total_seconds() / 60:.1f} min"),
        ("consistency check", f"{'OK' if not problems else 'FAILED'} after {checked:.0f} s"),
    ]
    cpu = [
        f"| {name} | {idle.cpu[name]:.0f} % | {busy.cpu[name]:.0f} % "
        f"| {busy.cpu[name] / max(idle.cpu[name], 0.1):.1f}x | {busy.peak(name):.0f} MB |"
        for name in pids
    ]
    report = (
        "| figure | value |\n|---|---|\n"
        + "\n".join(f"| {a} | {b} |" for a, b in rows)
        + "\n\nCPU (% of one core) and memory, idle town (baseline, every locker up, no resident) against the run:\n\n"
        "| process | idle | with residents | ratio | peak RSS |\n|---|---|---|---|---|\n"
        + "\n".join(cpu)
        + f"\n\nWhole machine busy: {idle.machine_cpu:.0f} % idle town, {busy.machine_cpu:.0f} % with residents "
        "(shared with other work).\n"
        + ("" if not problems else "\nProblems:\n\n" + "\n".join(f"- {p}" for p in problems) + "\n")
    )
    summary = Summary(
        figure=f"Simulated town: {options.stations} stations x {options.slots} slots, {options.residents} residents",
        command=command_line(),
        report=report,
        goals=[Goal("consistency check passes", "OK" if not problems else f"{len(problems)} problems", not problems)],
        data={"events": events, "borrows": t.borrows, "returns": t.returns, "problems": problems},
    )
    finish(summary, args.name or f"town-{options.stations}", args.json)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
