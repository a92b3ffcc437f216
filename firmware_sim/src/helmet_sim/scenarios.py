"""Named fault scenarios, reusable by tests, benchmarks and the town simulator.

Each is a plain function acting on the simulated world only: the broker
process, a locker's network cable, its camera, its clock. None of them reaches
into the locker's or the cloud's internals.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from helmet_sim.broker import Broker, start_mosquitto
from helmet_sim.camera import VirtualCamera
from helmet_sim.network import Cable
from helmet_sim.rig import SimLocker


def broker_restart(broker: Broker, workdir: Path, *, down_for: float = 1.0) -> Broker:
    """The broker dies without warning (SIGKILL) and comes back on the same port."""
    process = getattr(broker, "process", None)
    if process is None:
        raise ValueError("broker_restart needs a Mosquitto process started by helmet_sim.broker")
    process.kill()
    broker.stop()
    time.sleep(down_for)
    return start_mosquitto(workdir, broker.port)


@contextmanager
def locker_offline(cable: Cable) -> Iterator[None]:
    """The locker's network is gone for as long as the ``with`` block runs."""
    cable.unplug()
    try:
        yield
    finally:
        cable.plug()


@contextmanager
def locker_offline_for(cable: Cable, simulated: timedelta, speed: float) -> Iterator[None]:
    """The locker's network is gone for ``simulated`` town time (an hour at x60 is a real minute).

    The ``with`` block runs while it is gone (residents keep using the locker); on leaving it,
    the rest of the outage is waited out before the cable goes back in.
    """
    ends = time.monotonic() + simulated.total_seconds() / speed
    with locker_offline(cable):
        yield
        time.sleep(max(0.0, ends - time.monotonic()))


def power_cut(rig: SimLocker, *, off_for: float = 1.0) -> SimLocker:
    """The Pi loses power (no goodbye, no lock driven, only committed data kept) and boots again.

    Doors and helmets stay as they are. Returns the new locker instance, which reconciles what it
    stored with what its sensors read. The rig must keep its physical world (``persist_physical``).
    """
    rig.cut_power()
    time.sleep(off_for)
    return rig.power_on()


@contextmanager
def camera_frozen(camera: VirtualCamera) -> Iterator[None]:
    """The camera stops delivering frames (a frozen USB camera) for the ``with`` block."""
    camera.frozen = True
    try:
        yield
    finally:
        camera.frozen = False


class SkewedClock:
    """A locker clock that is ``offset`` off real time (a Pi without RTC after a power cut)."""

    def __init__(self, offset: timedelta) -> None:
        self.offset = offset

    def wall(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def mono(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)  # only the wall clock is off; time still passes at the real rate
