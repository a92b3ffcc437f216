"""Ingest throughput: the cloud's database step against a raw batched idempotent insert.

Feeds the same 10,000 events (20 lockers, borrow/return cycles so that helmets,
loans and slots are derived) to the cloud's ``Ingestor`` in batches of
500, and, as the baseline in the same run, inserts the same rows with a raw
batched ``INSERT ... ON CONFLICT DO NOTHING`` (psycopg for PostgreSQL, sqlite3
for SQLite). Writes bench/results/ingest.md.

    .venv/bin/python bench/ingest.py [--events 10000] [--pg postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from sqlmodel import Session

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, Goal, Summary

from helmet_cloud.models import Locker, Station

# bench/ingest_ab.py runs this script on an older checkout too: its modules had other homes then.
try:
    from helmet_cloud.adapters.database import make_engine, migrate
except ImportError:  # before the layers (466a5fd and older)
    from helmet_cloud.db import make_engine, migrate  # type: ignore[no-redef]
try:
    from helmet_cloud.ingest.ingestor import Ingestor
    from helmet_cloud.ingest.records import Inbound

    def inbound(msgs: list[tuple[str, bytes]]) -> list[Any]:
        return [Inbound(t, p) for t, p in msgs]
except ImportError:  # ingest took (topic, payload) tuples
    from helmet_cloud.ingest import Ingestor  # type: ignore[no-redef,attr-defined]

    def inbound(msgs: list[tuple[str, bytes]]) -> list[Any]:
        return list(msgs)


from helmet_protocol.messages import Event, new_event_id

LOCKERS, BATCH = 20, 500


def events(total: int) -> list[tuple[str, bytes]]:
    """Per locker: stock 6 helmets, then borrow and return them in turn (every event touches a helmet)."""
    out: list[tuple[str, bytes]] = []
    t0 = datetime(2026, 11, 28, 6, 0, tzinfo=UTC)
    per = total // LOCKERS
    for n in range(1, LOCKERS + 1):
        lk = f"LK-{n:04d}"
        for seq in range(1, per + 1):
            slot = (seq - 1) % 6 + 1
            helmet = f"H-{n:03d}{slot}"
            kind = "helmet.stocked" if seq <= 6 else ("helmet.borrowed", "helmet.returned")[(seq - 7) // 6 % 2]
            e = Event(
                event_id=new_event_id(),
                locker_id=lk,
                seq=seq,
                ts=t0 + timedelta(seconds=seq),
                kind=kind,
                slot=slot,
                helmet_id=helmet,
                resident_id="R-1" if kind == "helmet.borrowed" else None,
            )
            out.append((f"helmet/v1/{lk}/events", e.to_json()))
    # Interleave lockers as the broker would.
    return sorted(out, key=lambda m: json.loads(m[1])["seq"])


def register(url: str) -> None:
    migrate(url)
    engine = make_engine(url)
    with Session(engine) as s:
        s.add(Station(id="ST-1", name="Hall", lat=47.0, lon=8.0))
        s.flush()
        for n in range(1, LOCKERS + 1):
            s.add(Locker(id=f"LK-{n:04d}", station_id="ST-1", slot_count=6))
        s.commit()
    engine.dispose()


def ours(url: str, msgs: list[tuple[str, bytes]]) -> float:
    register(url)
    engine = make_engine(url)
    ingest = Ingestor(engine, lambda *_: None)
    batches = [inbound(msgs[i : i + BATCH]) for i in range(0, len(msgs), BATCH)]
    t0 = time.perf_counter()
    for batch in batches:
        ingest.handle(batch)
    elapsed = time.perf_counter() - t0
    engine.dispose()
    return elapsed


COLS = "event_id, locker_id, seq, ts, kind, known, slot, helmet_id, pass_id, resident_id, payload, received_at"


def rows(msgs: list[tuple[str, bytes]]) -> list[tuple[object, ...]]:
    now = datetime.now(UTC)
    out = []
    for _, payload in msgs:
        d = json.loads(payload)
        out.append(
            (
                d["event_id"],
                d["locker_id"],
                d["seq"],
                d["ts"],
                d["kind"],
                True,
                d.get("slot"),
                d.get("helmet_id"),
                d.get("pass_id"),
                d.get("resident_id"),
                payload.decode(),
                now.isoformat(),
            )
        )
    return out


def raw_pg(url: str, msgs: list[tuple[str, bytes]]) -> float:
    data = rows(msgs)
    with psycopg.connect(url.replace("+psycopg", "")) as conn:
        t0 = time.perf_counter()
        for i in range(0, len(data), BATCH):
            with conn.cursor() as cur:
                cur.executemany(
                    f"INSERT INTO rawevent ({COLS}) VALUES ({', '.join(['%s'] * 12)}) ON CONFLICT DO NOTHING",  # noqa: S608
                    data[i : i + BATCH],
                )
            conn.commit()
        return time.perf_counter() - t0


def raw_sqlite(path: str, msgs: list[tuple[str, bytes]]) -> float:
    data = rows(msgs)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    t0 = time.perf_counter()
    for i in range(0, len(data), BATCH):
        conn.executemany(
            f"INSERT OR IGNORE INTO rawevent ({COLS}) VALUES ({', '.join(['?'] * 12)})",  # noqa: S608
            data[i : i + BATCH],
        )
        conn.commit()
    elapsed = time.perf_counter() - t0
    conn.close()
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=10_000)
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    ap.add_argument("--json", type=Path, default=None, help="also write a summary for bench/run.py")
    ap.add_argument("--no-report", action="store_true", help="leave bench/results/ingest.md as it is (ingest_ab.py)")
    args = ap.parse_args()
    msgs = events(args.events)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        a, b = f"{tmp}/ours.db", f"{tmp}/raw.db"
        register(f"sqlite:///{b}")
        t_raw = raw_sqlite(b, msgs)
        t_ours = ours(f"sqlite:///{a}", msgs)
        results.append(("SQLite", t_ours, t_raw))
    names = [f"bench_{uuid.uuid4().hex[:8]}" for _ in range(2)]
    with psycopg.connect(args.pg, autocommit=True) as admin:
        for name in names:
            admin.execute(f'CREATE DATABASE "{name}"')
    base = args.pg.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    try:
        register(f"{base}/{names[1]}")
        t_raw = raw_pg(f"{base}/{names[1]}", msgs)
        t_ours = ours(f"{base}/{names[0]}", msgs)
        results.append(("PostgreSQL", t_ours, t_raw))
    finally:
        with psycopg.connect(args.pg, autocommit=True) as admin:
            for name in names:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    n = len(msgs)
    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        platform.processor(),
    )
    lines = [
        "# Ingest: the database step",
        "",
        f"Machine: {os.cpu_count()} cores, {cpu}; load average {os.getloadavg()[0]:.2f}. "
        f"Command: `.venv/bin/python bench/ingest.py --events {args.events}` ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC).",
        "",
        f"{n} events from {LOCKERS} lockers (stock, then borrow/return cycles), batches of {BATCH}. "
        "Ours: validate, de-duplicate, store, derive helmets, loans and slots, advance acks (no MQTT). "
        "Baseline: the same rows with a raw batched idempotent insert and nothing derived. Goal: ratio >= 0.5.",
        "",
        "| database | ours (events/s) | raw insert (events/s) | ratio |",
        "|---|---:|---:|---:|",
    ]
    for db, t_ours, t_raw in results:
        lines.append(f"| {db} | {n / t_ours:,.0f} | {n / t_raw:,.0f} | {t_raw / t_ours:.2f} |")
    report = "\n".join(lines) + "\n"
    if args.json is not None:
        goals = [
            Goal(
                f"{db}: database step at least 0.5 of the raw insert",
                f"{t_raw / t_ours:.2f} ({n / t_ours:,.0f} / {n / t_raw:,.0f} events/s)",
                t_raw / t_ours >= 0.5,
                ""
                if t_raw / t_ours >= 0.5
                else f"ours takes {t_ours / t_raw:.1f}x the raw insert's time: the baseline only inserts the raw "
                "rows; each of our batches also reads the lockers, folds the events into helmets, loans and slots "
                "(about 600 derived rows per 500 events here) and advances the acks, in the same transaction",
            )
            for db, t_ours, t_raw in results
        ]
        Summary(
            "Ingest: the database step",
            f".venv/bin/python bench/ingest.py --events {args.events}",
            report.split("\n", 2)[2],
            goals,
            {db: {"ours": n / t_ours, "raw": n / t_raw} for db, t_ours, t_raw in results},
        ).write(args.json)
    if not args.no_report:
        (RESULTS / "ingest.md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
