"""Pull the plug (SIGKILL) in the middle of borrows and returns, again and again.

The locker runs as its own process; the simulated doors and helmets outlive it
(as a real locker's do when its Pi loses power). After each restart the locker
reconciles what it stored with what its sensors read. In the end, the events
the cloud received must account for every physical change exactly once, and no
lock may be left released.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from support.fake_cloud import LOCKER, FakeCloud
from support.processes import LockerProcess
from support.waiting import eventually

from helmet_protocol.passes import Role, issue_pass
from helmet_sim.broker import Broker

pytestmark = pytest.mark.slow
KEY = Ed25519PrivateKey.generate()
HELMETS = ["H-1", "H-2", "H-3", "H-4"]


def a_pass(role: Role = Role.RESIDENT, quantity: int = 1) -> str:
    return issue_pass(
        signing_key=KEY,
        kid="k1",
        holder_id="R-1",
        quantity=quantity,
        role=role,
        now=datetime.now(UTC),
        ttl=timedelta(minutes=5),
    )


def replay(events: list[dict[str, Any]]) -> dict[int, str | None]:
    """Fold the cloud's events per slot in seq order; refuse any impossible step (a double record)."""
    slots: dict[int, str | None] = dict.fromkeys(range(1, 7))
    for e in sorted(events, key=lambda e: e["seq"]):
        kind, slot, helmet = e["kind"], e.get("slot"), e.get("helmet_id")
        if kind in ("helmet.borrowed", "helmet.removed"):
            assert slots[slot] == helmet is not None, (
                f"seq {e['seq']}: {kind} of {helmet} from slot {slot} holding {slots[slot]}"
            )
            slots[slot] = None
        elif kind in ("helmet.returned", "helmet.stocked"):
            assert slots[slot] is None, f"seq {e['seq']}: {kind} into slot {slot} already holding {slots[slot]}"
            slots[slot] = helmet
    return slots


# Six cuts cover both a borrow and a return cut short; tests/reliability/test_edge_power_cuts.py (HELMET_LONG=1)
# runs hundreds.
CUTS = 6


def test_power_cuts_during_borrows_and_returns_record_each_change_once(tmp_path: Path, mosquitto: Broker) -> None:
    cloud = FakeCloud(mosquitto.port)
    cloud.send_config(KEY)
    workdir = tmp_path / "lockers"
    rng = random.Random(11)
    locker = LockerProcess(LOCKER, workdir, mosquitto.port)
    try:
        locker.wait_for_keys()
        assert locker.ask(op="show", text=a_pass(Role.TECHNICIAN), seconds=0.6)["ok"]
        for h in HELMETS:
            assert locker.ask(op="insert", helmet_id=h)["ok"]
        time.sleep(4)  # let the sticker repeat window pass
        cuts = 0
        for _ in range(CUTS):
            state = locker.ask(op="state")
            in_slots = {h for h in state["helmets"].values() if h}
            outside = [h for h in HELMETS if h not in in_slots]
            if outside and (rng.random() < 0.5 or not in_slots):
                locker.send(op="insert", helmet_id=rng.choice(outside), timeout=3)
            else:
                locker.send(op="show", text=a_pass(), seconds=0.5)
                locker.send(op="take", count=1, timeout=3)
            time.sleep(rng.uniform(0.2, 2.0))
            locker.kill()
            cuts += 1
            locker = LockerProcess(LOCKER, workdir, mosquitto.port)
            assert locker.ask(op="close_all")["ok"]  # whoever stood there shuts the door
            settled = eventually(lambda lk=locker: (s := lk.ask(op="state"))["released"] == [] and s, timeout=25)
            assert settled["doors_open"] == []
            time.sleep(4.5)  # a person reads the next code only after the repeat window
        assert cuts == CUTS
        final = locker.ask(op="state")
        eventually(lambda: locker.ask(op="state")["outbox"] == 0, timeout=30)
        physical = {int(k): v for k, v in final["helmets"].items()}
        with cloud.lock:
            events = list(cloud.events)
        assert sorted(e["seq"] for e in events) == list(range(1, len(events) + 1))
        assert replay(events) == physical
        kinds = [e["kind"] for e in events]
        assert kinds.count("helmet.borrowed") >= 1 and kinds.count("helmet.returned") >= 1
    finally:
        locker.stop()
        cloud.close()
