"""A locker's decisions in tests: a signing key, passes, stickers and lockers in given slot states."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from helmet_edge.locker import Locker, Rules
from helmet_edge.slot_machine import SlotMachine, SlotRecord, Timing
from helmet_protocol.events import SlotState
from helmet_protocol.passes import Role, decode_pass, issue_pass
from helmet_protocol.stickers import helmet_url

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
KEY = Ed25519PrivateKey.generate()
HOST = "helmets.example.org"
RULES = Rules(keys={"k1": KEY.public_key()}, helmet_host=HOST, max_quantity=4)
FULL, FREE = SlotState.OCCUPIED, SlotState.EMPTY


def make_pass(
    *,
    quantity: int = 1,
    holder_id: str = "R-42",
    role: Role = Role.RESIDENT,
    key: Ed25519PrivateKey = KEY,
    kid: str = "k1",
    now: datetime = NOW,
    ttl: timedelta = timedelta(minutes=5),
) -> bytes:
    return issue_pass(
        signing_key=key, kid=kid, holder_id=holder_id, quantity=quantity, now=now, ttl=ttl, role=role
    ).encode()


def pass_id(text: bytes) -> str:
    return decode_pass(text)[0].pass_id


def sticker(helmet_id: str, host: str = HOST) -> bytes:
    return helmet_url(host, helmet_id).encode()


def make_locker(*states: SlotState, rules: Rules = RULES) -> Locker:
    """A locker whose slots hold ``H-000{n}`` when occupied, doors shut."""
    machines = {
        n: SlotMachine(
            SlotRecord(slot=n, state=s, helmet_id=f"H-000{n}" if s == FULL else None),
            Timing(),
            door_closed=True,
            present=s == FULL,
        )
        for n, s in enumerate(states, start=1)
    }
    return Locker(machines, rules)


def states(locker: Locker) -> list[SlotState]:
    return [m.state for m in locker.machines.values()]


def never(_: str) -> bool:
    return False
