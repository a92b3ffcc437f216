"""Hostile and reused passes at the kiosk (docs/reliability.md, scenario 8).

Random bytes, random pass-shaped text and mutations of genuine passes go into
the kiosk's decision code (:class:`helmet_edge.locker.Locker`): nothing
crashes, and a slot opens only for the exact bytes of a pass the cloud signed.
A genuine pass shown twice at one locker opens once and is refused once; shown
at two offline lockers it opens at both, and the cloud raises one over-use
alert when their events arrive.

The CI run tries a few thousand inputs; ``HELMET_PASS_FUZZ=100000`` runs the
documented 100,000.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlmodel import Session
from support.alerting import Town

from helmet_cloud.adapters.database import make_engine, migrate
from helmet_cloud.models import IssuedPass
from helmet_cloud.settings import CloudSettings
from helmet_edge.locker import Feedback, Locker, Rules
from helmet_edge.slot_machine import SlotMachine, SlotRecord, Timing
from helmet_edge.store import Store
from helmet_protocol.events import EventKind, RejectReason, SlotState
from helmet_protocol.passes import PREFIX, Role, decode_pass, issue_pass
from reliability.kiosk import Kiosk
from reliability.sizes import scale

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
KEY = Ed25519PrivateKey.generate()
OTHER = Ed25519PrivateKey.generate()
RULES = Rules(keys={"k1": KEY.public_key()}, helmet_host="helmets.example.org", max_quantity=4)
B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def genuine(quantity: int = 1, role: Role = Role.RESIDENT, holder: str = "R-42", now: datetime = NOW) -> str:
    return issue_pass(
        signing_key=KEY, kid="k1", holder_id=holder, quantity=quantity, now=now, ttl=timedelta(minutes=5), role=role
    )


# Genuine passes the mutations start from; the only inputs allowed to open anything are these exact texts.
SEEDS = [genuine(q, role) for q in (1, 2, 4) for role in (Role.RESIDENT, Role.TECHNICIAN)]
SIGNED = {decode_pass(s)[1:] for s in SEEDS}  # (body, signature) of every pass the "cloud" issued


def full_locker(slots: int = 6) -> Locker:
    machines = {
        n: SlotMachine(
            SlotRecord(slot=n, state=SlotState.OCCUPIED, helmet_id=f"H-{n:04d}"),
            Timing(),
            door_closed=True,
            present=True,
        )
        for n in range(1, slots + 1)
    }
    return Locker(machines, RULES)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A genuine pass, changed the way a forger or a bad camera read would change it."""
    text = draw(st.sampled_from(SEEDS))
    body = text[len(PREFIX) :]
    how = draw(st.sampled_from(["flip", "truncate", "extend", "splice", "case", "resign", "field", "prefix"]))
    if how == "flip":
        i = draw(st.integers(0, len(body) - 1))
        body = body[:i] + draw(st.sampled_from([c for c in B32 if c != body[i]])) + body[i + 1 :]
    elif how == "truncate":
        body = body[: draw(st.integers(0, len(body) - 1))]
    elif how == "extend":
        body += draw(st.text(alphabet=B32 + "=-:/", min_size=1, max_size=20))
    elif how == "splice":
        other = draw(st.sampled_from(SEEDS))[len(PREFIX) :]
        cut = draw(st.integers(1, min(len(body), len(other)) - 1))
        body = body[:cut] + other[cut:]
    elif how == "case":
        body = body.lower()
    elif how == "resign":  # a well-formed pass signed by a key the locker does not trust, under a trusted kid
        forged = issue_pass(
            signing_key=OTHER,
            kid="k1",
            holder_id="R-666",
            quantity=draw(st.integers(1, 16)),
            now=NOW,
            ttl=timedelta(minutes=draw(st.integers(1, 60))),
            role=draw(st.sampled_from(Role)),
        )
        body = forged[len(PREFIX) :]
    elif how == "field":  # change one byte of the signed body, keep the old signature
        raw = bytearray(base64.b32decode(body + "=" * (-len(body) % 8)))
        i = draw(st.integers(0, len(raw) - 65))
        raw[i] = draw(st.integers(0, 255).filter(lambda b, old=raw[i]: b != old))
        body = base64.b32encode(bytes(raw)).decode().rstrip("=")
    else:
        return (draw(st.sampled_from(["HP2:", "hp1:", "HP1", " HP1:", "HP1::"])) + body).encode()
    return (PREFIX + body).encode()


ANY_INPUT = st.one_of(
    mutated(),
    st.binary(max_size=400),
    st.text(max_size=300).map(str.encode),
    st.text(alphabet=B32 + "=", max_size=200).map(lambda s: (PREFIX + s).encode()),
    st.sampled_from(SEEDS).map(str.encode),
)


@settings(
    max_examples=scale("pass_fuzz", 3000),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(data=ANY_INPUT, skew_min=st.integers(-10, 10))
def test_no_input_crashes_the_kiosk_and_only_a_signed_pass_opens_a_slot(data: bytes, skew_min: int) -> None:
    locker = full_locker()
    wall = NOW + timedelta(minutes=1, seconds=skew_min * 6)  # a locker clock up to a minute off either way
    out = locker.scan(data, wall=wall, mono=100.0, honoured=lambda _pid: False)
    if out is None or out.reason in ("foreign", "poster"):
        event("ignored (not a pass)")  # told on the screen, nothing recorded, nothing opened
        assert out is None or (not out.durable and not out.locks and not out.opened)
        return
    if out.opened or out.locks or out.feedback == Feedback.MAINTENANCE:
        event("opened (a signed pass)")
        assert decode_pass(data)[1:] in SIGNED, f"opened for {data!r}"
    else:
        event(f"refused: {out.events[0].reason}")
        assert out.feedback == Feedback.REJECTED
        assert [e.kind for e in out.events] == [EventKind.PASS_REJECTED]
        assert all(m.state == SlotState.OCCUPIED for m in locker.machines.values())


# -- a genuine pass used twice ------------------------------------------------------------------------------


def kiosk(locker_id: str, data_dir: Path) -> Kiosk:
    return Kiosk(locker_id, data_dir, {1: "H-0001", 2: "H-0002"}, rules=RULES, start=NOW)


def test_a_pass_shown_twice_at_one_locker_opens_once_and_is_refused_once(tmp_path: Path) -> None:
    a = kiosk("LK-000A", tmp_path)
    text = genuine()
    first = a.show(text)
    assert first is not None and len(first.opened) == 1
    a.take(first.opened[0])
    # The same phone again, and again after the locker's service restarted (the memory is on disk).
    second = a.show(text)
    a.store.close()
    a.store = Store(tmp_path / "LK-000A.db", "LK-000A")
    third = a.show(text)
    for refused in (second, third):
        assert refused is not None and refused.opened == [] and refused.feedback == Feedback.REJECTED
        assert [(e.kind, e.reason) for e in refused.events] == [(EventKind.PASS_REJECTED, RejectReason.REPLAYED)]
    assert [e["kind"] for e in a.events()] == ["helmet.borrowed", "pass.rejected", "pass.rejected"]


@pytest.fixture
def town(database_url: str, tmp_path: Path) -> Iterator[Town]:
    settings = CloudSettings(database_url=database_url, data_dir=tmp_path / "cloud")
    migrate(settings.database_url)
    engine = make_engine(settings.database_url)
    yield Town(engine, settings)
    engine.dispose()


def test_a_pass_used_at_two_offline_lockers_opens_both_and_the_cloud_raises_one_overuse_alert(
    town: Town, tmp_path: Path
) -> None:
    text = genuine(quantity=1, holder="R-1")
    pass_id = decode_pass(text)[0].pass_id
    with Session(town.engine) as s:
        s.add(
            IssuedPass(
                id=pass_id, holder_id="R-1", role="resident", quantity=1, kid="k1", issued_at=NOW, expires_at=NOW
            )
        )
        s.commit()
    a, b = kiosk("LK-000A", tmp_path), kiosk("LK-000B", tmp_path)
    for k in (a, b):  # both offline: neither can know of the other's borrow
        out = k.show(text)
        assert out is not None and len(out.opened) == 1
        k.take(out.opened[0])
    assert town.alerts("pass_overuse") == []
    town.feed(*a.published())  # A reconnects
    assert town.alerts("pass_overuse") == []
    town.feed(*b.published())  # then B
    town.feed(*a.published(), *b.published())  # and both resend before their acks arrive
    [alert] = town.alerts("pass_overuse")
    assert (alert.subject_id, alert.status) == (pass_id, "open")
    assert "(LK-000A (1), LK-000B (1))" in alert.message
