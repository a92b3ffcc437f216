"""The command executor: one handler per protocol op, and an ack that says what the locker did."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from gpiozero.pins.mock import MockFactory

from helmet_edge.commands import HANDLERS, CommandExecutor
from helmet_edge.config import MqttSettings
from helmet_edge.forwarder import Forwarder
from helmet_edge.locker import Feedback, Locker, Outcome, Rules
from helmet_edge.profile import load_profile
from helmet_edge.slot_machine import SlotMachine, SlotRecord, Timing
from helmet_edge.slots_gpiozero import GpioSlotBank
from helmet_edge.store import Store
from helmet_protocol.events import SlotState
from helmet_protocol.messages import CMD_OPS, COMMAND_ARGS, Command, CommandAck, decode
from helmet_protocol.passes import decode_pass, issue_pass

KEY = Ed25519PrivateKey.generate()
RULES = Rules(keys={"k1": KEY.public_key()})


class RecordingClock:
    """The real time, but a sleep is only written down: the executor must wait on its clock alone."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    def wall(self) -> datetime:
        return datetime.now(UTC)

    def mono(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


class ScriptedLocker(Locker):
    """A locker whose pass decision is given: to see what the ack makes of exactly that outcome."""

    def __init__(self, machines: dict[int, SlotMachine], outcome: Outcome) -> None:
        super().__init__(machines, RULES)
        self.outcome = outcome

    def use_pass(self, data: bytes | str, **_: object) -> Outcome:  # type: ignore[override]
        return self.outcome


def occupied(slots: int) -> dict[int, SlotMachine]:
    return {
        n: SlotMachine(
            SlotRecord(slot=n, state=SlotState.OCCUPIED, helmet_id=f"H-{n:04d}"),
            Timing(),
            door_closed=True,
            present=True,
        )
        for n in range(1, slots + 1)
    }


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "locker.db", "LK-0001")
    yield s
    s.close()


@pytest.fixture
def bank() -> Iterator[GpioSlotBank]:
    factory = MockFactory()  # no sensor wired: every door reads open
    b = GpioSlotBank(load_profile("pi-gpio-6"), pin_factory=factory)
    yield b
    b.close()
    factory.reset()


def executor(store: Store, bank: GpioSlotBank, locker: Locker, clock: RecordingClock | None = None) -> CommandExecutor:
    return CommandExecutor(
        locker=locker,
        store=store,
        clock=clock or RecordingClock(),
        forwarder=Forwarder(store, window=10, resend_after=30),
        slots=bank,
        restart=threading.Event(),
        mqtt=MqttSettings(),
    )


def a_pass(quantity: int = 1) -> str:
    return issue_pass(
        signing_key=KEY, kid="k1", holder_id="R-1", quantity=quantity, now=datetime.now(UTC), ttl=timedelta(minutes=5)
    )


def ack_of(ex: CommandExecutor, cmd: Command) -> CommandAck:
    return decode(CommandAck, ex.answer(cmd, time.monotonic(), lambda _: None))


def test_every_protocol_op_has_a_handler() -> None:
    assert set(HANDLERS) == set(CMD_OPS) == set(COMMAND_ARGS)


@pytest.mark.parametrize(
    ("outcome", "ok", "error"),
    [
        # The LED says "rejected", but the locker opened a slot: the command was carried out.
        (Outcome(feedback=Feedback.REJECTED, opened=[1], message="opened 1 slot(s)"), True, None),
        # The LED says nothing, but the locker refused: the command was not carried out.
        (
            Outcome(refusal="revoked: pass was revoked", message="revoked: pass was revoked"),
            False,
            "revoked: pass was revoked",
        ),
    ],
)
def test_ok_is_what_the_locker_did_never_what_the_led_shows(
    store: Store, bank: GpioSlotBank, outcome: Outcome, ok: bool, error: str | None
) -> None:
    ex = executor(store, bank, ScriptedLocker(occupied(6), outcome))
    ack = ack_of(ex, Command(cmd_id="c-1", op="borrow", pass_text=a_pass()))
    assert (ack.ok, ack.error) == (ok, error)
    assert ack.data == {"message": outcome.message, "opened": outcome.opened}


def test_a_borrow_answers_with_the_slots_it_opened_or_the_refusal(store: Store, bank: GpioSlotBank) -> None:
    ex = executor(store, bank, Locker(occupied(6), RULES))
    text = a_pass(quantity=2)
    ack = ack_of(ex, Command(cmd_id="c-1", op="borrow", pass_text=text))
    assert (ack.ok, ack.error, ack.data) == (True, None, {"message": "opened 2 slot(s)", "opened": [1, 2]})
    store.commit(honour=[(decode_pass(text)[0].pass_id, datetime.now(UTC) + timedelta(hours=1))], now=datetime.now(UTC))
    again = ack_of(ex, Command(cmd_id="c-2", op="borrow", pass_text=text))
    assert (again.ok, again.error) == (False, "replayed: pass was already used here")
    assert again.data == {"message": "replayed: pass was already used here", "opened": []}


def test_a_selftest_that_finds_problems_was_carried_out_and_pulses_on_the_clock(
    store: Store, bank: GpioSlotBank, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_sleep(_: float) -> None:
        raise AssertionError("time.sleep in the executor: it must wait on the injected clock")

    monkeypatch.setattr(time, "sleep", no_sleep)
    clock = RecordingClock()
    locker = Locker(occupied(6), RULES)
    applied: list[Outcome] = []
    payload = executor(store, bank, locker, clock).answer(Command(cmd_id="c-1", op="selftest"), 0.0, applied.append)
    ack = decode(CommandAck, payload)
    assert ack.ok and ack.error is None
    assert ack.data is not None and ack.data["ok"] is False and len(ack.data["slots"]) == 6
    assert clock.sleeps == [0.3] * 6  # each lock released for 0.3 s, on the clock
    assert applied[0].feedback == Feedback.FAULT and applied[0].events[0].reason == "problems"


def test_unlocking_a_slot_the_locker_does_not_have_is_refused(store: Store, bank: GpioSlotBank) -> None:
    ack = ack_of(executor(store, bank, Locker(occupied(6), RULES)), Command(cmd_id="c-1", op="unlock", slot=9))
    assert (ack.ok, ack.error, ack.data) == (False, "no slot 9; this locker has 6", None)


def test_reboot_asks_for_a_restart_and_says_so(store: Store, bank: GpioSlotBank) -> None:
    ex = executor(store, bank, Locker(occupied(6), RULES))
    ack = ack_of(ex, Command(cmd_id="c-1", op="reboot"))
    assert (ack.ok, ack.data) == (True, {"message": "restarting the locker service"})
    assert ex.restart.is_set()


def test_a_redelivered_command_gets_the_same_answer_and_runs_once(store: Store, bank: GpioSlotBank) -> None:
    ex = executor(store, bank, Locker(occupied(6), RULES))
    cmd = Command(cmd_id="c-1", op="reboot")
    first = ex.answer(cmd, 0.0, lambda _: None)
    ex.restart.clear()
    assert ex.answer(cmd, 1.0, lambda _: None) == first
    assert not ex.restart.is_set()


def test_a_stale_command_is_refused_and_nothing_runs(store: Store, bank: GpioSlotBank) -> None:
    ex = executor(store, bank, Locker(occupied(6), RULES))
    old = Command(cmd_id="c-1", op="reboot", ts=datetime.now(UTC) - timedelta(hours=2))
    ack = ack_of(ex, old)
    assert not ack.ok and ack.error == "command is 7200 s old; refused (limit 60 s)"
    assert not ex.restart.is_set()
    assert json.loads(store.command_ack("c-1") or b"{}")["ok"] is False  # remembered: a redelivery is refused alike
