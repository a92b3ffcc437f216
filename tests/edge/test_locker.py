"""The locker's decisions at the kiosk: passes, stickers, maintenance, foreign codes."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from support.lockers import (
    FREE,
    FULL,
    HOST,
    NOW,
    RULES,
    make_locker,
    make_pass,
    never,
    pass_id,
    states,
    sticker,
)

from helmet_edge.locker import Feedback, Locker, Outcome, Rules
from helmet_edge.slot_machine import EventDraft, Purpose, SlotRecord
from helmet_edge.store import Store
from helmet_protocol.events import EventKind, SlotState
from helmet_protocol.passes import PREFIX, Role


class Kiosk:
    """The service's part, by hand: a replay memory filled from each outcome's ``honour``."""

    def __init__(self, locker: Locker) -> None:
        self.locker = locker
        self.honoured: set[str] = set()
        self.outcomes: list[Outcome] = []

    def show(self, data: bytes, mono: float, wall: datetime = NOW) -> Outcome | None:
        out = self.locker.scan(data, wall=wall, mono=mono, honoured=self.honoured.__contains__)
        if out is not None:
            self.honoured.update(pid for pid, _ in out.honour)
            self.outcomes.append(out)
        return out


def only_rejection(out: Outcome | None) -> EventDraft:
    assert out is not None
    assert len(out.events) == 1, out.events
    event = out.events[0]
    assert event.kind == EventKind.PASS_REJECTED
    assert out.feedback == Feedback.REJECTED
    assert out.locks == {} and out.opened == [] and out.honour == []
    assert out.refusal is not None and out.refusal == out.message  # the decision says it refused, and why
    return event


# -- borrowing with a pass ----------------------------------------------------------


def test_valid_pass_opens_as_many_occupied_slots_as_asked() -> None:
    locker = make_locker(FREE, FULL, FULL, FREE, FULL)
    text = make_pass(quantity=2)
    out = locker.scan(text, wall=NOW, mono=10.0, honoured=never)

    assert out is not None
    assert out.feedback == Feedback.ACCEPTED
    assert len(out.opened) == 2
    assert set(out.opened) <= {2, 3, 5}
    assert out.locks == dict.fromkeys(out.opened, True)
    assert out.events == [], "nothing happened yet: events come when the doors close"
    assert [pid for pid, _ in out.honour] == [pass_id(text)]
    for n in out.opened:
        rec = locker.machines[n].record
        assert (rec.state, rec.purpose, rec.pass_id, rec.resident_id) == (
            SlotState.UNLOCKING,
            Purpose.BORROW,
            pass_id(text),
            "R-42",
        )
    assert out.records.keys() == set(out.opened)
    assert [locker.machines[n].state for n in (1, 4)] == [FREE, FREE]


def test_borrow_through_the_doors_records_one_event_per_helmet() -> None:
    locker = make_locker(FULL, FULL, FULL)
    text = make_pass(quantity=2)
    out = locker.scan(text, wall=NOW, mono=0.0, honoured=never)
    assert out is not None
    opened = out.opened
    events: list[EventDraft] = []
    t = 0.0

    def hold(readings: dict[int, tuple[bool, bool]], seconds: float) -> None:
        nonlocal t
        for _ in range(int(seconds / 0.02)):
            t += 0.02
            events.extend(locker.tick(t, readings).events)

    closed_full = dict.fromkeys((1, 2, 3), (True, True))
    hold(closed_full | dict.fromkeys(opened, (False, True)), 1)  # doors open
    hold(closed_full | dict.fromkeys(opened, (False, False)), 1)  # helmets out
    hold(closed_full | dict.fromkeys(opened, (True, False)), 1)  # doors shut

    assert [e.kind for e in events] == [EventKind.HELMET_BORROWED] * 2
    assert sorted(e.helmet_id or "" for e in events) == sorted(f"H-000{n}" for n in opened)
    assert {(e.pass_id, e.resident_id) for e in events} == {(pass_id(text), "R-42")}
    assert sum(s == FREE for s in states(locker)) == 2


def test_fewer_helmets_than_asked_opens_what_there_is_and_says_so() -> None:
    locker = make_locker(FREE, FULL, FREE, FREE)
    out = locker.use_pass(make_pass(quantity=3), wall=NOW, mono=0.0, honoured=never)
    assert out.opened == [2]
    assert out.locks == {2: True}
    assert out.feedback == Feedback.ACCEPTED
    assert out.message is not None and "2 fewer than asked" in out.message
    assert len(out.honour) == 1


def test_no_helmets_rejects_and_opens_nothing() -> None:
    locker = make_locker(FREE, FREE, FREE)
    text = make_pass(quantity=1)
    event = only_rejection(locker.scan(text, wall=NOW, mono=0.0, honoured=never))
    assert (event.reason, event.pass_id, event.resident_id) == ("no_helmets", pass_id(text), "R-42")
    assert states(locker) == [FREE, FREE, FREE]


def test_replayed_pass_is_rejected() -> None:
    locker = make_locker(FULL, FULL)
    text = make_pass()
    event = only_rejection(locker.scan(text, wall=NOW, mono=0.0, honoured=lambda pid: pid == pass_id(text)))
    assert (event.reason, event.pass_id) == ("replayed", pass_id(text))
    assert states(locker) == [FULL, FULL]


def test_revoked_pass_is_rejected() -> None:
    text = make_pass()
    rules = Rules(keys=RULES.keys, helmet_host=HOST, revoked=frozenset({pass_id(text)}))
    locker = make_locker(FULL, FULL, rules=rules)
    event = only_rejection(locker.scan(text, wall=NOW, mono=0.0, honoured=never))
    assert (event.reason, event.pass_id) == ("revoked", pass_id(text))
    assert states(locker) == [FULL, FULL]


def test_a_pass_used_at_another_locker_is_refused_with_its_own_reason() -> None:
    text = make_pass(quantity=2)
    locker = make_locker(FULL, FULL, rules=replace(RULES, used=frozenset({pass_id(text)})))
    event = only_rejection(locker.scan(text, wall=NOW, mono=0.0, honoured=never))
    assert (event.reason, event.pass_id, event.resident_id) == ("used_elsewhere", pass_id(text), "R-42")
    assert states(locker) == [FULL, FULL]


def test_withdrawn_beats_used_here_which_beats_used_elsewhere() -> None:
    """revoked, then replayed, then used_elsewhere: each locker says the most specific reason it knows."""
    text = make_pass()
    pid = pass_id(text)
    here = {pid}.__contains__
    both = replace(RULES, revoked=frozenset({pid}), used=frozenset({pid}))
    assert only_rejection(make_locker(FULL, rules=both).use_pass(text, wall=NOW, mono=0.0, honoured=here)).reason == (
        "revoked"
    )
    used = replace(RULES, used=frozenset({pid}))
    assert only_rejection(make_locker(FULL, rules=used).use_pass(text, wall=NOW, mono=0.0, honoured=here)).reason == (
        "replayed"
    )


def flip_signed_byte(text: bytes) -> bytes:
    b32 = text[len(PREFIX) :].decode()
    raw = bytearray(base64.b32decode(b32 + "=" * (-len(b32) % 8)))
    raw[4] ^= 0x01  # inside the pass id: still well formed, no longer signed
    return (PREFIX + base64.b32encode(bytes(raw)).decode().rstrip("=")).encode()


BAD_PASSES: dict[str, tuple[Callable[[], bytes], datetime]] = {
    "bad_signature": (lambda: flip_signed_byte(make_pass()), NOW),
    "expired": (lambda: make_pass(ttl=timedelta(minutes=5)), NOW + timedelta(minutes=7, seconds=1)),
    "not_yet_valid": (lambda: make_pass(now=NOW + timedelta(minutes=10)), NOW),
    "unknown_key": (lambda: make_pass(key=Ed25519PrivateKey.generate(), kid="k9"), NOW),
    "over_quantity": (lambda: make_pass(quantity=5), NOW),
    "malformed": (lambda: b"HP1:!!!!", NOW),
}


@pytest.mark.parametrize("reason", BAD_PASSES)
def test_bad_pass_is_one_rejection_and_no_lock_moves(reason: str) -> None:
    build, wall = BAD_PASSES[reason]
    locker = make_locker(FULL, FULL, FULL)
    event = only_rejection(locker.scan(build(), wall=wall, mono=0.0, honoured=never))
    assert event.reason == reason
    assert states(locker) == [FULL, FULL, FULL]
    if reason == "malformed":
        assert event.pass_id is None and event.resident_id is None
    else:
        assert event.pass_id is not None and event.resident_id == "R-42"


def test_bad_pass_by_command_is_rejected_the_same_way() -> None:
    locker = make_locker(FULL)
    out = locker.use_pass(flip_signed_byte(make_pass()).decode(), wall=NOW, mono=0.0, honoured=never)
    assert only_rejection(out).reason == "bad_signature"


def test_replay_memory_outlasts_expiry_by_the_clock_skew(tmp_path: Path) -> None:
    """A pass is accepted until expires_at + skew, so the locker must remember it that long."""
    store = Store(tmp_path / "locker.db", "LK-0001")
    try:
        locker = make_locker(FULL, FULL, FULL)
        text = make_pass(ttl=timedelta(minutes=5))
        out = locker.use_pass(text, wall=NOW, mono=0.0, honoured=store.is_honoured)
        assert out.opened
        store.commit(records=out.records.values(), events=out.events, honour=out.honour, now=NOW)

        later = NOW + timedelta(minutes=6)  # past expiry, within the 2 min skew
        store.forget_expired_passes(later)
        again = locker.use_pass(text, wall=later, mono=100.0, honoured=store.is_honoured)
        assert only_rejection(again).reason == "replayed"
    finally:
        store.close()


# -- the same code in front of the camera ----------------------------------------------


def test_pass_held_in_front_for_many_frames_acts_once() -> None:
    kiosk = Kiosk(make_locker(FULL, FULL, FULL, FULL))
    text = make_pass(quantity=1)
    first = kiosk.show(text, mono=0.0)
    assert first is not None and len(first.opened) == 1

    # Held for 10 s at 15 fps, longer than the 4 s repeat window: still once.
    for frame in range(1, 150):
        assert kiosk.show(text, mono=frame / 15) is None
    assert states(kiosk.locker).count(SlotState.UNLOCKING) == 1

    # Taken away, shown again after the window: acts again (and is refused as used).
    again = kiosk.show(text, mono=10.0 + 4.1)
    assert only_rejection(again).reason == "replayed"
    assert states(kiosk.locker).count(SlotState.UNLOCKING) == 1


def test_a_different_code_is_not_held_back_by_the_repeat_window() -> None:
    kiosk = Kiosk(make_locker(FULL, FULL, FULL, FULL))
    assert kiosk.show(make_pass(holder_id="R-1"), mono=0.0) is not None
    assert kiosk.show(make_pass(holder_id="R-2"), mono=0.1) is not None
    assert states(kiosk.locker).count(SlotState.UNLOCKING) == 2


def test_rejected_pass_held_in_front_is_rejected_once() -> None:
    kiosk = Kiosk(make_locker(FULL))
    forged = flip_signed_byte(make_pass())
    for frame in range(60):
        kiosk.show(forged, mono=frame / 15)
    assert [e.reason for o in kiosk.outcomes for e in o.events] == ["bad_signature"]


# -- helmet stickers --------------------------------------------------------------------


def test_sticker_opens_one_empty_slot_never_an_occupied_one() -> None:
    locker = make_locker(FULL, FREE, FREE, FULL)
    out = locker.scan(sticker("H-0099"), wall=NOW, mono=0.0, honoured=never)
    assert out is not None
    assert out.feedback == Feedback.SLOT_OPEN
    assert len(out.opened) == 1
    (n,) = out.opened
    assert n in (2, 3)
    assert out.locks == {n: True}
    rec = locker.machines[n].record
    assert (rec.state, rec.purpose, rec.incoming_helmet_id) == (SlotState.UNLOCKING, Purpose.RETURN, "H-0099")
    assert [locker.machines[i].state for i in (1, 4)] == [FULL, FULL]


def test_sticker_with_no_empty_slot_opens_nothing_and_is_recorded() -> None:
    locker = make_locker(FULL, FULL)
    out = locker.scan(sticker("H-0099"), wall=NOW, mono=0.0, honoured=never)
    assert out is not None
    assert out.locks == {} and out.opened == []
    assert out.feedback == Feedback.REJECTED
    assert out.refusal == "no free slot here"
    assert [(e.kind, e.reason, e.helmet_id) for e in out.events] == [
        (EventKind.PASS_REJECTED, "no_free_slot", "H-0099")
    ]
    assert states(locker) == [FULL, FULL]


# -- the cloud's slot count (config.slot_count) --------------------------------------------


def test_a_pass_opens_no_slot_past_the_cloud_slot_count() -> None:
    """The cloud counts slots 1..slot_count only: a helmet past it is in none of its counts."""
    locker = make_locker(FULL, FULL, FULL, FULL, rules=replace(RULES, slot_count=2))
    out = locker.use_pass(make_pass(quantity=4), wall=NOW, mono=1.0, honoured=never)
    assert out.opened == [1, 2] and out.refusal is None
    assert out.message == "opened 2 slot(s); 2 fewer than asked"


def test_a_sticker_returns_to_no_slot_past_the_cloud_slot_count() -> None:
    locker = make_locker(FULL, FULL, FREE, rules=replace(RULES, slot_count=2))
    out = locker.scan(sticker("H-0099"), wall=NOW, mono=0.0, honoured=never)
    assert out is not None and out.opened == [] and out.refusal == "no free slot here"
    assert states(locker) == [FULL, FULL, FREE]


def test_a_technician_still_empties_a_slot_past_the_cloud_slot_count() -> None:
    locker = make_locker(FULL, FULL, FULL, rules=replace(RULES, slot_count=2))
    locker.use_pass(make_pass(role=Role.TECHNICIAN), wall=NOW, mono=0.0, honoured=never)
    out = locker.scan(sticker("H-0003"), wall=NOW, mono=1.0, honoured=never)
    assert out is not None and out.opened == [3]


def test_sticker_of_a_helmet_already_in_a_slot_opens_nothing_and_says_where_it_is() -> None:
    locker = make_locker(FULL, FREE, FREE)  # slot 1 holds H-0001
    out = locker.scan(sticker("H-0001"), wall=NOW, mono=0.0, honoured=never)
    assert out is not None and not out.durable and out.locks == {} and out.opened == []
    assert (out.reason, out.about) == ("already_here", [1])
    assert states(locker) == [FULL, FREE, FREE]


def test_sticker_of_a_helmet_taken_from_a_disabled_slot_opens_a_slot_later() -> None:
    locker = make_locker(FULL, FREE)
    locker.set_disabled(1, True)
    for t in range(10):  # a technician empties the disabled slot
        locker.tick(t * 0.02, {1: (True, False), 2: (True, False)})
    locker.set_disabled(1, False)
    out = locker.scan(sticker("H-0001"), wall=NOW, mono=1.0, honoured=never)
    assert out is not None and len(out.opened) == 1


def test_sticker_shown_again_while_its_slot_is_open_opens_no_second_slot() -> None:
    locker = make_locker(FREE, FREE)
    first = locker.scan(sticker("H-0099"), wall=NOW, mono=0.0, honoured=never)
    assert first is not None and first.opened == [1]
    again = locker.scan(sticker("H-0099"), wall=NOW, mono=10.0, honoured=never)
    assert again is not None and again.opened == [] and not again.durable and again.locks == {}
    assert (again.reason, again.about) == ("already_open", [1])  # the face repeats which door is open for it
    assert states(locker).count(SlotState.UNLOCKING) == 1


# -- maintenance ---------------------------------------------------------------------------


def test_technician_pass_enters_maintenance_and_a_sticker_then_stocks() -> None:
    locker = make_locker(FULL, FREE)
    tech = make_pass(role=Role.TECHNICIAN, holder_id="T-7")
    out = locker.scan(tech, wall=NOW, mono=0.0, honoured=never)
    assert out is not None
    assert out.feedback == Feedback.MAINTENANCE
    assert out.locks == {} and out.opened == [] and out.events == []
    assert [pid for pid, _ in out.honour] == [pass_id(tech)]
    assert locker.in_maintenance(1.0)

    out = locker.scan(sticker("H-0099"), wall=NOW, mono=5.0, honoured=never)
    assert out is not None and out.opened == [2]
    assert locker.machines[2].record.purpose == Purpose.STOCK

    events: list[EventDraft] = []
    t = 5.0
    for reading in ((True, True), (False, False), (False, True), (True, True)):
        for _ in range(10):
            t += 0.02
            events.extend(locker.tick(t, {1: (True, True), 2: reading}).events)
    assert [(e.kind, e.slot, e.helmet_id, e.resident_id) for e in events] == [
        (EventKind.HELMET_STOCKED, 2, "H-0099", "T-7")
    ]
    assert locker.machines[2].record == SlotRecord(slot=2, state=SlotState.OCCUPIED, helmet_id="H-0099")


def test_maintenance_ends_and_stickers_return_again() -> None:
    locker = make_locker(FREE, FREE)
    locker.scan(make_pass(role=Role.TECHNICIAN, holder_id="T-7"), wall=NOW, mono=0.0, honoured=never)
    assert not locker.in_maintenance(RULES.maintenance_seconds + 1)
    out = locker.scan(sticker("H-0099"), wall=NOW, mono=RULES.maintenance_seconds + 1, honoured=never)
    assert out is not None
    assert locker.machines[out.opened[0]].record.purpose == Purpose.RETURN


def test_the_technician_shows_their_pass_again_to_leave_maintenance() -> None:
    locker = make_locker(FREE, FREE)
    tech = make_pass(role=Role.TECHNICIAN, holder_id="T-7")
    locker.scan(tech, wall=NOW, mono=0.0, honoured=never)
    out = locker.scan(tech, wall=NOW, mono=10.0, honoured=lambda _: True)  # the same pass, honoured at the first scan
    assert out is not None and out.feedback == Feedback.MAINTENANCE_END
    assert out.opened == [] and out.honour == [] and out.events == []
    assert not locker.in_maintenance(10.5)
    out = locker.scan(sticker("H-0099"), wall=NOW, mono=11.0, honoured=never)
    assert out is not None and locker.machines[out.opened[0]].record.purpose == Purpose.RETURN
    # Shown a third time, the used pass is refused like any replay: it does not re-open maintenance mode.
    out = locker.scan(tech, wall=NOW, mono=20.0, honoured=lambda _: True)
    assert out is not None and out.feedback == Feedback.REJECTED and not locker.in_maintenance(20.5)


def test_another_technician_or_a_forged_pass_does_not_end_maintenance() -> None:
    locker = make_locker(FREE, FREE)
    locker.scan(make_pass(role=Role.TECHNICIAN, holder_id="T-7"), wall=NOW, mono=0.0, honoured=never)
    forged = make_pass(role=Role.TECHNICIAN, holder_id="T-7", key=Ed25519PrivateKey.generate())
    out = locker.scan(forged, wall=NOW, mono=10.0, honoured=never)
    assert out is not None and out.feedback == Feedback.REJECTED and locker.in_maintenance(10.5)
    other = make_pass(role=Role.TECHNICIAN, holder_id="T-8")
    out = locker.scan(other, wall=NOW, mono=20.0, honoured=never)  # a colleague takes over: maintenance goes on
    assert out is not None and out.feedback == Feedback.MAINTENANCE and locker.in_maintenance(20.5)


def test_every_feedback_has_an_led_pattern() -> None:
    from helmet_edge.slots_gpiozero import _PATTERNS

    assert set(_PATTERNS) == {f.value for f in Feedback}


# -- codes that are not ours -------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        sticker("H-0001", host="evil.example.com"),
        b"https://www.example.org/menu",
        b"http://helmets.example.org/h/H-0009",
        b"WIFI:S:TownHall;T:WPA;P:hunter2;;",
        b"\xff\xfe\x00\x01binary",
        b"just some text",
        b"",
    ],
    ids=["sticker-other-host", "other-url", "http-sticker", "wifi", "binary", "text", "empty"],
)
def test_foreign_codes_change_nothing_and_the_person_is_told_what_to_show(data: bytes) -> None:
    locker = make_locker(FULL, FREE)
    out = locker.scan(data, wall=NOW, mono=0.0, honoured=never)
    assert out is not None and not out.durable and out.locks == {} and out.opened == []
    assert (out.reason, out.feedback) == ("foreign", Feedback.REJECTED)
    assert states(locker) == [FULL, FREE]


def test_the_stations_poster_held_to_the_camera_is_told_apart_from_other_codes() -> None:
    locker = make_locker(FULL, FREE)
    out = locker.scan(b"https://helmets.example.org/s/ST-1", wall=NOW, mono=0.0, honoured=never)
    assert out is not None and out.reason == "poster" and not out.durable
    other = locker.scan(b"https://elsewhere.example.com/s/ST-1", wall=NOW, mono=0.0, honoured=never)
    assert other is not None and other.reason == "foreign"


def test_a_resident_pass_ends_maintenance_so_returns_are_returns_again() -> None:
    locker = make_locker(FULL, FREE)
    locker.use_pass(make_pass(role=Role.TECHNICIAN), wall=NOW, mono=0.0, honoured=never)
    assert locker.in_maintenance(1.0)
    locker.use_pass(make_pass(), wall=NOW, mono=2.0, honoured=never)
    assert not locker.in_maintenance(3.0)
    out = locker.scan(sticker("H-0099"), wall=NOW, mono=4.0, honoured=never)
    assert out is not None and locker.machines[2].record.purpose == "return"


def test_in_maintenance_the_sticker_of_a_stocked_helmet_opens_its_slot_for_removal() -> None:
    locker = make_locker(FULL, FREE)
    locker.use_pass(make_pass(role=Role.TECHNICIAN), wall=NOW, mono=0.0, honoured=never)
    out = locker.scan(sticker("H-0001"), wall=NOW, mono=1.0, honoured=never)
    assert out is not None and out.opened == [1]
    m = locker.machines[1]
    m.step(2.0, door_closed=False, present=True)
    m.step(2.1, door_closed=False, present=True)
    m.step(3.0, door_closed=False, present=False)
    m.step(3.1, door_closed=False, present=False)
    m.step(4.0, door_closed=True, present=False)
    step = m.step(4.1, door_closed=True, present=False)
    assert [e.kind for e in step.events] == [EventKind.HELMET_REMOVED]
    assert step.events[0].helmet_id == "H-0001"
