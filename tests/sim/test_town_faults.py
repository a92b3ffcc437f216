"""Fault scenarios in a running town: a locker offline for an hour, a power cut in the middle of a borrow.

Residents keep borrowing and returning around the faults; a scripted resident
borrows at the offline locker and at the one that loses power. The town must
still end with a passing consistency check.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from support.town import embedded_town
from support.waiting import eventually

from helmet_sim import kiosk, scenarios
from helmet_sim.residents import Behaviour, Mix, Resident
from helmet_sim.town import Town, TownOptions

pytestmark = pytest.mark.slow

OPTIONS = TownOptions(
    stations=3, slots=6, residents=9, speed=120, hours=1.5, seed=5, fill=0.5, mix=Mix(0, 0, 0, 0), faults=True
)


@pytest.fixture
def town(tmp_path: Path) -> Iterator[Town]:
    with embedded_town(tmp_path, OPTIONS) as t:
        t.build()
        t.populate()
        t.start()
        yield t


def scripted(town: Town, n: int) -> Resident:
    """A resident outside the scheduler, whom the test moves by hand; the check counts their hands too."""
    r = Resident(900 + n, 0, Behaviour.REGULAR, random.Random(n), town.clock.now())
    town.residents.append(r)
    return r


def online(town: Town, station: int) -> int:
    return int(town.admin.station(town.station_ids[station])["lockers_online"])


def test_a_locker_offline_for_an_hour_and_a_power_cut_mid_borrow_end_consistent(town: Town) -> None:
    ana, ben = scripted(town, 1), scripted(town, 2)

    # LK-0001 loses its network for a simulated hour (30 s at x120); Ana borrows there meanwhile.
    with scenarios.locker_offline_for(town.cables[0], timedelta(hours=1), town.options.speed):
        eventually(lambda: online(town, 0) == 0, timeout=20)  # the broker published its Last Will
        p = ana._signed_in(town).request_pass(1, station_id=town.station_ids[0])
        with town.kiosks[0]:
            visit = kiosk.use_pass(town.rigs[0], p["text"])
        assert len(visit.taken) == 1, "the offline locker verified the pass itself"
        ana.holding += visit.taken
        assert ana._signed_in(town).loans(status="open") == []  # the cloud has not heard yet
    eventually(lambda: online(town, 0) == 1, timeout=60)
    eventually(lambda: [ln["helmet_id"] for ln in ana._signed_in(town).loans(status="open")] == ana.holding)

    # LK-0002 loses power after Ben took the helmet and before he shut the door.
    p = ben._signed_in(town).request_pass(1, station_id=town.station_ids[1])
    with town.kiosks[1]:
        rig = town.rigs[1]
        opened = kiosk._show(rig, p["text"], timeout=kiosk.READ_TIMEOUT).opened
        assert len(opened) == 1
        slot = rig.physical.slots[opened[0]]
        slot.open_door()
        time.sleep(kiosk.PAUSE)
        ben.holding.append(slot.take_helmet())
        town.rigs[1] = rig = scenarios.power_cut(rig)
        eventually(lambda: online(town, 1) == 1, timeout=60)
        rig.physical.slots[opened[0]].close_door()  # the new boot finds the door open, then sees it shut
    eventually(lambda: [ln["helmet_id"] for ln in ben._signed_in(town).loans(status="open")] == ben.holding)
    assert rig.physical.released() == []

    while not town.finished():
        time.sleep(0.5)
    assert town.check() == []
    assert town.tally.borrows >= 1  # the other residents kept going around the faults
