"""Offline catch-up: a locker back online with ``--events`` queued events drains them into the cloud.

The locker is ``tests/support/synthetic_locker.SyntheticLocker``: the edge's
real SQLite outbox (``Store``), ``Forwarder`` (at most 200 events ahead of the
cloud's ``ack``, as configured on a locker) and MQTT link, without slots. Its
outbox is filled while it is offline (stocking, then borrows and returns),
then it connects; the clock runs until the cloud's ``ack`` covers the last
event. The cloud is the real ``helmet-cloud ingest`` worker on a fresh
PostgreSQL database and a private Mosquitto.

Baseline, same run, same worker: the same number of events (another locker's)
published at once by a plain paho publisher with no window, timed the same way.

    .venv/bin/python bench/catchup.py [--events 10000]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BIN, Goal, ProcWatch, Summary, command_line, finish, pg_database
from ingest_e2e import AckWatch, publish_all
from support.synthetic_locker import SyntheticLocker

from helmet_cloud.adapters.database import make_engine, migrate
from helmet_edge.slot_machine import EventDraft
from helmet_protocol.events import EventKind
from helmet_protocol.messages import Event, new_event_id
from helmet_sim.broker import start_mosquitto


def drafts(count: int) -> list[EventDraft]:
    """Stock 6 helmets, then borrow and return them in turn."""
    out = []
    for i in range(count):
        slot = i % 6 + 1
        kind = (
            EventKind.HELMET_STOCKED
            if i < 6
            else (EventKind.HELMET_BORROWED, EventKind.HELMET_RETURNED)[(i - 6) // 6 % 2]
        )
        out.append(
            EventDraft(
                kind,
                slot=slot,
                helmet_id=f"H-1{slot}",
                resident_id="R-1" if kind == EventKind.HELMET_BORROWED else None,
            )
        )
    return out


def plain(locker_id: str, count: int) -> list[tuple[str, bytes]]:
    t0 = datetime.now(UTC)
    msgs = []
    for seq, d in enumerate(drafts(count), start=1):
        e = Event(
            event_id=new_event_id(),
            locker_id=locker_id,
            seq=seq,
            ts=t0 + timedelta(milliseconds=seq),
            kind=d.kind,
            slot=d.slot,
            helmet_id=d.helmet_id.replace("H-1", "H-2") if d.helmet_id else None,
            resident_id=d.resident_id,
        )
        msgs.append((f"helmet/v1/{locker_id}/events", e.to_json()))
    return msgs


def register(url: str) -> None:
    from sqlmodel import Session

    from helmet_cloud.models import Locker, Station

    migrate(url)
    engine = make_engine(url)
    with Session(engine) as s:
        s.add(Station(id="ST-1", name="Hall", lat=47.0, lon=8.0))
        s.flush()
        s.add(Locker(id="LK-0001", station_id="ST-1", slot_count=6))
        s.add(Locker(id="LK-0002", station_id="ST-1", slot_count=6))
        s.commit()
    engine.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=10_000)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    n = args.events
    with tempfile.TemporaryDirectory() as tmp_s, pg_database() as url:
        tmp = Path(tmp_s)
        register(url)
        broker = start_mosquitto(tmp / "broker")
        env = {**os.environ, "HELMET_DATABASE_URL": url, "HELMET_MQTT_PORT": str(broker.port), "HELMET_DATA_DIR": tmp_s}
        log = tmp / "ingest.log"
        with log.open("w") as out:
            worker = subprocess.Popen([BIN / "helmet-cloud", "ingest"], env=env, stdout=out, stderr=out)
        try:
            deadline = time.monotonic() + 60
            while "MQTT connected" not in log.read_text():
                if time.monotonic() > deadline or worker.poll() is not None:
                    raise RuntimeError(f"ingest worker did not connect: {log.read_text()[-2000:]}")
                time.sleep(0.1)
            time.sleep(0.5)
            # Ours: the outbox fills while offline, then the locker connects.
            locker = SyntheticLocker("LK-0001", tmp / "edge", broker.port, resend_after=30)
            for i in range(0, n, 500):  # a day offline: many small transactions, here 500 at a time
                locker.store.commit(events=drafts(n)[i : i + 500], now=datetime.now(UTC))
            assert locker.store.outbox_size() == n
            acks = AckWatch(broker.port, {"LK-0001": n})
            with ProcWatch({"ingest": worker.pid}) as watch:
                t0 = time.time()
                locker.start()
                if not acks.done.wait(600):
                    raise RuntimeError(f"not drained: {acks.acked}")
            t_ours = acks.last - t0
            deadline = time.monotonic() + 10
            while locker.store.outbox_size() and time.monotonic() < deadline:  # its thread applies the last ack
                time.sleep(0.05)
            left = locker.store.outbox_size()
            locker.stop()
            acks.close()
            # Baseline: a plain publisher, everything at once.
            msgs = plain("LK-0002", n)
            acks = AckWatch(broker.port, {"LK-0002": n})
            with ProcWatch({"ingest": worker.pid}) as bwatch:
                t0 = time.time()
                publish_all(broker.port, msgs)
                if not acks.done.wait(600):
                    raise RuntimeError(f"baseline not drained: {acks.acked}")
            t_base = acks.last - t0
            acks.close()
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(30)
            broker.stop()
    ratio = t_base / t_ours
    lines = [
        f"{n:,} events queued in one locker's outbox while it was offline (6 stocked, then borrows and returns).",
        "",
        "| | time to drain (s) | events/s | ingest CPU |",
        "|---|---:|---:|---:|",
        f"| the locker's outbox + forwarder (window 200) | {t_ours:.2f} | {n / t_ours:,.0f} | "
        f"{watch.cpu['ingest']:.0f} % |",
        f"| baseline: plain publisher, no window | {t_base:.2f} | {n / t_base:,.0f} | {bwatch.cpu['ingest']:.0f} % |",
        "",
        f"Ratio (baseline time / ours): {ratio:.2f}. Outbox after the drain: {left} events (acknowledged ones are "
        "deleted). The window keeps at most 200 events in flight, so the locker waits for an `ack` after each "
        "window: the cloud acknowledges after each committed batch.",
    ]
    goals = [
        Goal(
            f"{n:,} queued events drain (no goal set; reported with its baseline)",
            f"{t_ours:.1f} s, {n / t_ours:,.0f} events/s, {ratio:.2f} of a plain publisher's rate",
            None,
        )
    ]
    data = {"seconds": t_ours, "rate": n / t_ours, "baseline_rate": n / t_base, "ratio": ratio}
    finish(Summary("Offline catch-up", command_line(), "\n".join(lines) + "\n", goals, data), "catchup", args.json)


if __name__ == "__main__":
    main()
