"""The locker loop on its ports alone: a link and a clock of the test's own, the SQLite store, and the
simulated slots (gpiozero mock pins behind doors and helmets). No broker: what the loop publishes is read
straight off the link."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from helmet_edge.config import EdgeSettings, MqttSettings
from helmet_edge.loop import LockerLoop
from helmet_edge.ports import Frame
from helmet_edge.profile import load_profile
from helmet_edge.slots_gpiozero import GpioSlotBank
from helmet_edge.store import Store
from helmet_protocol.keys import public_key_b64
from helmet_protocol.messages import Command, LockerConfig
from helmet_protocol.passes import issue_pass
from helmet_protocol.topics import Channel
from helmet_sim.physical import PhysicalLocker

LOCKER = "LK-0001"
KEY = Ed25519PrivateKey.generate()


class SetClock:
    """Real time, a wall clock that can be set off, and sleeps that are only written down."""

    def __init__(self) -> None:
        self.offset = timedelta(0)
        self.sleeps: list[float] = []

    def wall(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def mono(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


class LoopbackLink:
    """A link that is connected to nothing and keeps what is published on it."""

    def __init__(
        self,
        settings: MqttSettings,
        locker_id: str,
        *,
        online_payload: Callable[[], bytes],
        offline_payload: bytes,
        on_message: Callable[[Channel, bytes], None],
        on_connect: Callable[[], None],
    ) -> None:
        self.online_payload = online_payload
        self.deliver = on_message
        self.on_connect = on_connect
        self.connected = False
        self.sent: list[tuple[Channel, dict[str, Any]]] = []

    def wait_connected(self, timeout: float) -> bool:
        return self.connected

    def start(self) -> None:  # connects at once, as MqttLink does once the broker answers
        self.connected = True
        self.sent.append((Channel.STATUS, json.loads(self.online_payload())))
        self.on_connect()

    def stop(self, offline_payload: bytes | None = None) -> None:
        self.connected = False

    def publish(self, channel: Channel, payload: bytes, *, retain: bool = False) -> object | None:
        self.sent.append((channel, json.loads(payload)))
        return True

    def on(self, channel: Channel) -> list[dict[str, Any]]:
        return [body for ch, body in self.sent if ch == channel]


class NoDecoder:
    def decode(self, frame: Frame) -> list[bytes]:
        return []


class Rig:
    def __init__(self, data_dir: Path, clock: SetClock, helmets: int) -> None:
        profile = load_profile("pi-gpio-6")
        self.physical = PhysicalLocker(profile, {n: f"H-{n:04d}" for n in range(1, helmets + 1)})
        bank = GpioSlotBank(profile, pin_factory=self.physical.factory)
        self.physical.sync()
        self.clock = clock
        self.links: list[LoopbackLink] = []
        settings = EdgeSettings(locker_id=LOCKER, data_dir=data_dir)
        self.loop = LockerLoop(
            settings,
            slots=bank,
            camera=None,
            decoder=NoDecoder(),
            store=Store.in_data_dir(data_dir, LOCKER),
            link_factory=self._link,
            clock=clock,
        )

    def _link(self, *args: Any, **kwargs: Any) -> LoopbackLink:
        self.links.append(LoopbackLink(*args, **kwargs))
        return self.links[-1]

    @property
    def link(self) -> LoopbackLink:
        return self.links[-1]

    def receive(self, channel: Channel, payload: bytes) -> None:
        self.link.deliver(channel, payload)
        self.loop.step()

    def command(self, cmd_id: str, op: str, **args: Any) -> dict[str, Any]:
        self.receive(Channel.CMD, Command(cmd_id=cmd_id, op=op, **args).to_json())  # type: ignore[arg-type]
        return next(a for a in self.link.on(Channel.CMD_ACK) if a["cmd_id"] == cmd_id)


@pytest.fixture
def clock() -> SetClock:
    return SetClock()


@pytest.fixture
def make_rig(tmp_path: Path, clock: SetClock) -> Iterator[Callable[..., Rig]]:
    rigs: list[Rig] = []

    def make(helmets: int = 6) -> Rig:
        if rigs:
            rigs[-1].loop.close()  # the same locker, started again
        rigs.append(Rig(tmp_path / "locker", clock, helmets))
        rigs[-1].loop.start()
        return rigs[-1]

    yield make
    if rigs:
        rigs[-1].loop.close()
    for r in rigs:
        r.physical.factory.reset()


def config(slot_count: int = 6) -> bytes:
    return LockerConfig(
        locker_id=LOCKER,
        slot_count=slot_count,
        pass_keys={"k1": public_key_b64(KEY)},
        ts=datetime.now(UTC),
    ).to_json()


def a_pass(quantity: int = 1) -> str:
    return issue_pass(
        signing_key=KEY, kid="k1", holder_id="R-1", quantity=quantity, now=datetime.now(UTC), ttl=timedelta(minutes=5)
    )


def test_start_up_settles_the_sensors_on_the_injected_clock(
    tmp_path: Path, clock: SetClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_sleep(_: float) -> None:
        raise AssertionError("time.sleep at start-up: the loop must wait on its clock")

    monkeypatch.setattr(time, "sleep", no_sleep)
    rig = Rig(tmp_path, clock, helmets=2)
    try:
        assert clock.sleeps == [0.05]  # the readings held still across one debounce time
    finally:
        rig.loop.close()
        rig.physical.factory.reset()


def test_a_borrow_command_is_acked_by_what_the_locker_did(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig()
    rig.receive(Channel.CONFIG, config())
    text = a_pass(quantity=2)
    ack = rig.command("c-1", "borrow", pass_text=text)
    assert (ack["ok"], ack["data"]) == (True, {"message": "opened 2 slot(s)", "opened": [1, 2]})
    assert [s.number for s in rig.physical.released()] == [1, 2]
    refused = rig.command("c-2", "borrow", pass_text=text)
    assert (refused["ok"], refused["error"]) == (False, "replayed: pass was already used here")
    assert [s.number for s in rig.physical.released()] == [1, 2]


def test_a_cloud_slot_count_below_the_wiring_is_logged_and_those_slots_stay_shut(
    make_rig: Callable[..., Rig], caplog: pytest.LogCaptureFixture
) -> None:
    rig = make_rig(helmets=6)
    with caplog.at_level(logging.WARNING, logger="helmet_edge.loop"):
        rig.receive(Channel.CONFIG, config(slot_count=4))
    assert caplog.messages == [
        "config: the cloud registered this locker with 4 slots, pin profile pi-gpio-6 wires 6: slots 5-6 open for "
        "no pass or sticker until they agree (register the locker with 6 slots in the cloud, or set the "
        "pin_profile it is wired to)"
    ]
    ack = rig.command("c-1", "borrow", pass_text=a_pass(quantity=4))
    assert ack["data"]["opened"] == [1, 2, 3, 4]
    none_left = rig.command("c-2", "borrow", pass_text=a_pass())
    assert (none_left["ok"], none_left["error"]) == (False, "no_helmets: no helmet in this locker")
    # The state still reports every wired slot: the cloud flags the locker until the two agree.
    rig.loop.step()
    assert [s["slot"] for s in rig.link.on(Channel.STATE)[-1]["slots"]] == [1, 2, 3, 4, 5, 6]


def test_a_cloud_slot_count_above_the_wiring_is_logged_again_at_start_up(
    make_rig: Callable[..., Rig], caplog: pytest.LogCaptureFixture
) -> None:
    rig = make_rig()
    rig.receive(Channel.CONFIG, config(slot_count=8))
    expected = (
        "config: the cloud registered this locker with 8 slots, pin profile pi-gpio-6 wires 6: slots 7-8 do not "
        "exist here and never open (register the locker with 6 slots in the cloud, or set the pin_profile it is "
        "wired to)"
    )
    assert caplog.messages[-1] == expected
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="helmet_edge.loop"):
        make_rig()  # restarted: the stored config is checked before the broker is reached
    assert caplog.messages == [expected]


def test_matching_slot_counts_say_nothing(make_rig: Callable[..., Rig], caplog: pytest.LogCaptureFixture) -> None:
    rig = make_rig()
    with caplog.at_level(logging.WARNING, logger="helmet_edge.loop"):
        rig.receive(Channel.CONFIG, config(slot_count=6))
    assert caplog.messages == []


def test_a_clock_step_is_published_as_a_status_at_once(make_rig: Callable[..., Rig], clock: SetClock) -> None:
    """Even a step between the connect (its status has the old time) and the loop's first turn."""
    rig = make_rig()
    before = len(rig.link.on(Channel.STATUS))
    clock.offset = timedelta(minutes=10)  # NTP stepped the clock
    rig.loop.step()
    statuses = rig.link.on(Channel.STATUS)
    assert len(statuses) == before + 1 and statuses[-1]["online"] is True


def test_a_clock_step_while_the_link_is_down_is_announced_once_it_is_up(
    make_rig: Callable[..., Rig], clock: SetClock
) -> None:
    """The link publishes its online status before it reads as connected: a step in that gap was lost."""
    rig = make_rig()
    rig.loop.step()
    rig.link.connected = False
    clock.offset = timedelta(minutes=10)
    rig.loop.step()
    before = len(rig.link.on(Channel.STATUS))
    rig.link.connected = True
    rig.loop.step()
    statuses = rig.link.on(Channel.STATUS)
    assert len(statuses) == before + 1
    assert abs(datetime.fromisoformat(statuses[-1]["ts"]) - clock.wall()) < timedelta(seconds=5)
