"""Locker clocks ten minutes fast and slow (docs/reliability.md, scenario 6).

With a pass tolerance wider than the clock error (``passes.skew_s``), a
locker 10 minutes off either way still honours a fresh pass; with the default
2 minutes it refuses it, saying why. End to end, a helmet borrowed at a locker
10 minutes fast and returned at one 10 minutes slow must come out as one
returned loan, over the real broker and the real ingest.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from support.cloud_events import insert_town
from support.waiting import eventually

from helmet_cloud.ingest.worker import IngestWorker
from helmet_cloud.models import Helmet, Loan
from helmet_cloud.settings import CloudSettings
from helmet_edge.locker import Locker, Rules
from helmet_edge.slot_machine import SlotMachine, SlotRecord, Timing
from helmet_protocol.events import RejectReason, SlotState
from helmet_protocol.keys import public_key_b64
from helmet_protocol.messages import LockerConfig
from helmet_protocol.passes import Role, issue_pass
from helmet_sim import scenarios
from helmet_sim.broker import Broker
from helmet_sim.rig import SimLocker

KEY = Ed25519PrivateKey.generate()
NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
OFF = timedelta(minutes=10)


def a_pass(now: datetime, role: Role = Role.RESIDENT) -> str:
    return issue_pass(
        signing_key=KEY, kid="k1", holder_id="R-1", quantity=1, now=now, ttl=timedelta(minutes=5), role=role
    )


@pytest.mark.parametrize("clock", [OFF, -OFF], ids=["fast", "slow"])
@pytest.mark.parametrize(
    ("tolerance", "refused"),
    [(timedelta(minutes=15), None), (timedelta(minutes=2), "either")],
    ids=["tolerance-15min", "default-2min"],
)
def test_a_pass_verifies_within_the_configured_tolerance(
    clock: timedelta, tolerance: timedelta, refused: str | None
) -> None:
    machines = {
        1: SlotMachine(
            SlotRecord(slot=1, state=SlotState.OCCUPIED, helmet_id="H-1"), Timing(), door_closed=True, present=True
        )
    }
    locker = Locker(machines, Rules(keys={"k1": KEY.public_key()}, skew=tolerance))
    # Issued by the cloud at true time NOW, shown a minute later at a locker whose clock is off.
    out = locker.use_pass(a_pass(NOW), wall=NOW + timedelta(minutes=1) + clock, mono=0.0, honoured=lambda _: False)
    if refused is None:
        assert out.opened == [1]
    else:
        assert out.opened == []
        expected = RejectReason.EXPIRED if clock > timedelta(0) else RejectReason.NOT_YET_VALID
        assert [e.reason for e in out.events] == [expected]


# -- end to end: borrow at a fast locker, return at a slow one ------------------------------------------------


def send_configs(port: int, lockers: list[str], key: Ed25519PrivateKey = KEY) -> None:
    """The cloud's retained config for each locker: trust ``key`` as ``k1``."""
    c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="config-publisher")
    c.connect("127.0.0.1", port)
    c.loop_start()
    for lk in lockers:
        cfg = LockerConfig(
            locker_id=lk,
            slot_count=6,
            pass_keys={"k1": public_key_b64(key)},
            revoked_pass_ids=[],
            helmet_url_host="helmets.example.org",
            ts=datetime.now(UTC),
        )
        c.publish(f"helmet/v1/{lk}/config", cfg.to_json(), qos=1, retain=True).wait_for_publish(5)
    c.disconnect()
    c.loop_stop()


@pytest.fixture
def ingest(settings: CloudSettings, engine: Engine) -> Iterator[IngestWorker]:
    insert_town(engine, {"LK-000A": ("ST-A", 6), "LK-000B": ("ST-B", 6)}, slots=True)
    w = IngestWorker(settings, engine, worker_id="ingest-skew")
    w.start()
    yield w
    w.stop()


@pytest.mark.slow
def test_a_borrow_at_a_fast_locker_and_a_return_at_a_slow_one_make_one_returned_loan(
    tmp_path: Path, mosquitto: Broker, engine: Engine, ingest: IngestWorker
) -> None:
    send_configs(mosquitto.port, ["LK-000A", "LK-000B"])
    lockers = {
        name: SimLocker(
            name,
            data_dir=tmp_path / name,
            mqtt_port=mosquitto.port,
            clock=scenarios.SkewedClock(offset),
            skew_s=900,
        )
        for name, offset in (("LK-000A", OFF), ("LK-000B", -OFF))
    }
    fast, slow = lockers["LK-000A"], lockers["LK-000B"]
    for rig in lockers.values():
        rig.start()
    try:
        for rig in lockers.values():
            eventually(lambda r=rig: r.service.rules.keys)
        fast.show(a_pass(datetime.now(UTC), Role.TECHNICIAN), seconds=0.6)
        fast.insert("H-1", pause=0.15)
        fast.show(a_pass(datetime.now(UTC)), seconds=0.6)
        assert fast.take(1, timeout=5) == ["H-1"]
        slow.insert("H-1", pause=0.15)  # a short ride later, 20 minutes "earlier" by the slow locker's clock
        eventually(lambda: not fast.service.store.outbox_size() and not slow.service.store.outbox_size(), timeout=20)

        def loans() -> list[Loan]:
            with Session(engine) as s:
                return list(s.exec(select(Loan)).all())

        [loan] = eventually(loans)
        with Session(engine) as s:
            helmet = s.get(Helmet, "H-1")
        assert (loan.status, loan.borrow_locker_id, loan.return_locker_id) == ("returned", "LK-000A", "LK-000B")
        assert helmet is not None and (helmet.status, helmet.locker_id) == ("in_slot", "LK-000B")
        assert loan.returned_at is not None and loan.returned_at >= loan.borrowed_at
    finally:
        for rig in lockers.values():
            rig.stop()
