"""Two ingest worker processes on one real Mosquitto; one is killed mid-stream.

20 lockers record 10,000 events between them; lockers re-send whatever the
cloud has not acknowledged. The killed worker is replaced by a new one with a
name of its own (as a deploy or an autoscaler does), and then the fleet is
scaled from two workers to one while events keep coming. In the end the cloud
holds each event exactly once and the broker keeps no session for a worker
that is gone (docs/reliability.md, scenario 4).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select
from support.broker_sys import gone_sessions
from support.cloud_events import insert_town
from support.synthetic_locker import SyntheticLocker

from helmet_cloud.models import DeadLetter, Locker, RawEvent
from helmet_cloud.settings import CloudSettings

pytestmark = pytest.mark.slow
LOCKERS, PER_LOCKER = 20, 500
BIN = Path(sys.executable).parent


def worker(settings: CloudSettings, name: str | None, log: IO[bytes]) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "HELMET_DATABASE_URL": settings.database_url,
        "HELMET_MQTT_PORT": str(settings.mqtt_port),
        "HELMET_DATA_DIR": str(settings.data_dir),
    }
    return subprocess.Popen(
        [BIN / "helmet-cloud", "ingest", *(["--worker-id", name] if name else [])],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def test_a_killed_worker_loses_nothing_and_doubles_nothing(
    tmp_path: Path, settings: CloudSettings, engine: Engine
) -> None:
    ids = [f"LK-{n:04d}" for n in range(1, LOCKERS + 1)]
    insert_town(engine, dict.fromkeys(ids, ("ST-1", 6)))
    log = (tmp_path / "workers.log").open("ab")
    workers = [worker(settings, "w1", log), worker(settings, "w2", log)]
    lockers = [SyntheticLocker(lk, tmp_path / "lockers", settings.mqtt_port) for lk in ids]
    try:
        (tmp_path / "lockers").mkdir(exist_ok=True)
        time.sleep(2)  # both workers subscribed
        for lk in lockers:
            lk.start()
        for round_ in range(10):
            for lk in lockers:
                lk.record(PER_LOCKER // 10)
            time.sleep(0.3)
            if round_ == 3:
                workers[0].kill()  # mid-stream, no goodbye
                workers[0].wait()
                workers.append(worker(settings, None, log))  # its replacement, under a new name
            if round_ == 6:
                workers[1].terminate()  # scaled from two workers to one
                workers[1].wait(timeout=30)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and any(lk.store.outbox_size() for lk in lockers):
            time.sleep(0.5)
        assert [lk.store.outbox_size() for lk in lockers] == [0] * LOCKERS
        with Session(engine) as s:
            total = s.exec(select(func.count()).select_from(RawEvent)).one()
            distinct = s.exec(select(func.count(func.distinct(RawEvent.event_id)))).one()
            dead = s.exec(select(func.count()).select_from(DeadLetter)).one()
            per_locker = dict(
                s.exec(select(RawEvent.locker_id, func.max(RawEvent.seq)).group_by(RawEvent.locker_id)).all()
            )
            acked = {lk.id: lk.acked_seq for lk in s.exec(select(Locker)).all()}
        assert total == distinct == LOCKERS * PER_LOCKER
        assert dead == 0
        assert per_locker == dict.fromkeys(ids, PER_LOCKER)
        assert acked == dict.fromkeys(ids, PER_LOCKER)
        assert gone_sessions(settings.mqtt_port) == 0  # no queue is kept for w1 or w2
    finally:
        for lk in lockers:
            lk.stop()
        for w in workers:
            w.terminate()
            w.wait(timeout=10)
        log.close()
