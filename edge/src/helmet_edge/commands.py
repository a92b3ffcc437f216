"""The cloud's commands: one handler per protocol op, each with an explicit result for ``cmd/ack``.

A command runs at most once per ``cmd_id``: its answer is stored, and a redelivery gets the stored
answer, nothing moves. A command older than ``mqtt.command_max_age_s`` is refused: a remote unlock queued
while the locker was offline must not fire hours later. ``ok`` says whether the locker carried the command
out (a refused pass is not; a self-test that found problems is, and says so in its data); it never depends
on what the kiosk's LED shows.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TypeVar

from helmet_edge.config import MqttSettings
from helmet_edge.forwarder import Forwarder
from helmet_edge.locker import Feedback, Locker, Outcome
from helmet_edge.ports import Clock, SlotBank, Store
from helmet_edge.selftest import as_data, run_selftest, summary
from helmet_edge.slot_machine import EventDraft
from helmet_protocol.events import EventKind
from helmet_protocol.messages import CmdOp, Command, CommandAck

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Result:
    """What a command did: ``ok`` (carried out), ``error`` when not, ``data`` for the ack, and the
    :class:`Outcome` to make durable and act on (before the ack goes out)."""

    ok: bool
    error: str | None = None
    data: dict[str, object] | None = None
    outcome: Outcome | None = None


class CommandExecutor:
    def __init__(
        self,
        *,
        locker: Locker,
        store: Store,
        clock: Clock,
        forwarder: Forwarder,
        slots: SlotBank,
        restart: threading.Event,
        mqtt: MqttSettings,
    ) -> None:
        self.locker = locker
        self.store = store
        self.clock = clock
        self.forwarder = forwarder
        self.slots = slots
        self.restart = restart
        self.mqtt = mqtt  # read per command: command_max_age_s

    def answer(self, cmd: Command, mono: float, apply: Callable[[Outcome], None]) -> bytes:
        """Execute ``cmd`` once (``apply`` makes its outcome durable and moves the locks); the ``cmd/ack``."""
        earlier = self.store.command_ack(cmd.cmd_id)
        if earlier is not None:  # executed before: the same answer again, nothing else
            return earlier
        result = self.execute(cmd, mono)
        if result.outcome is not None:
            apply(result.outcome)
        now = self.clock.wall()
        ack = CommandAck(cmd_id=cmd.cmd_id, ok=result.ok, error=result.error, data=result.data, ts=now).to_json()
        self.store.save_command_ack(cmd.cmd_id, ack, now)
        return ack

    def selftest(self, mono: float) -> Result:
        """Pulse every idle lock and read every sensor; record a ``locker.selftest`` event (the cloud's command,
        or the technician's touch on the locker's screen)."""
        checks = run_selftest(self.slots, {n: m.state for n, m in self.locker.machines.items()}, sleep=self.clock.sleep)
        passed = all(c.ok for c in checks)
        out = Outcome(
            events=[
                EventDraft(EventKind.LOCKER_SELFTEST, reason="ok" if passed else "problems", detail=summary(checks))
            ],
            feedback=None if passed else Feedback.FAULT,
            message=summary(checks),
        )
        return Result(ok=True, data=as_data(checks), outcome=out)

    def execute(self, cmd: Command, mono: float) -> Result:
        age = (self.clock.wall() - cmd.ts).total_seconds() if cmd.ts is not None else 0.0
        limit = self.mqtt.command_max_age_s
        if age > limit:
            return Result(ok=False, error=f"command is {age:.0f} s old; refused (limit {limit:.0f} s)")
        handler = HANDLERS.get(cmd.op)
        if handler is None:  # a newer protocol than this locker knows
            return Result(ok=False, error=f"op {cmd.op!r} is not supported by this locker")
        try:
            return handler(self, cmd, mono)
        except ValueError as exc:  # the locker refused: no such slot, slot busy
            return Result(ok=False, error=str(exc))


Handler = Callable[[CommandExecutor, Command, float], Result]


def _arg(value: T | None, name: str) -> T:
    if value is None:  # Command's validation requires every op's arguments (COMMAND_ARGS): never here
        raise ValueError(f"missing {name}")
    return value


def _opened(out: Outcome) -> dict[str, object]:
    return {"message": out.message, "opened": out.opened}


def _borrow(ex: CommandExecutor, cmd: Command, mono: float) -> Result:
    text = _arg(cmd.pass_text, "pass_text")
    out = ex.locker.use_pass(text, wall=ex.clock.wall(), mono=mono, honoured=ex.store.is_honoured)
    return Result(ok=out.refusal is None, error=out.refusal, data=_opened(out), outcome=out)


def _unlock(ex: CommandExecutor, cmd: Command, mono: float) -> Result:
    out = ex.locker.service_unlock(_arg(cmd.slot, "slot"), mono=mono)
    return Result(ok=True, data=_opened(out), outcome=out)


def _disable_slot(ex: CommandExecutor, cmd: Command, mono: float) -> Result:
    return Result(ok=True, outcome=ex.locker.set_disabled(_arg(cmd.slot, "slot"), True))


def _enable_slot(ex: CommandExecutor, cmd: Command, mono: float) -> Result:
    return Result(ok=True, outcome=ex.locker.set_disabled(_arg(cmd.slot, "slot"), False))


def _selftest(ex: CommandExecutor, cmd: Command, mono: float) -> Result:
    return ex.selftest(mono)


def _resend(ex: CommandExecutor, cmd: Command, mono: float) -> Result:
    ex.forwarder.rewind(cmd.from_seq)
    return Result(ok=True)


def _reboot(ex: CommandExecutor, cmd: Command, mono: float) -> Result:
    # The loop stops after this turn; the supervisor (systemd Restart=always) starts a fresh process.
    ex.restart.set()
    return Result(ok=True, data={"message": "restarting the locker service"})


HANDLERS: Mapping[CmdOp, Handler] = MappingProxyType(
    {
        "borrow": _borrow,
        "unlock": _unlock,
        "disable_slot": _disable_slot,
        "enable_slot": _enable_slot,
        "selftest": _selftest,
        "resend": _resend,
        "reboot": _reboot,
    }
)
"""Every op of :data:`helmet_protocol.messages.CMD_OPS` and its handler (a test holds the two equal)."""
