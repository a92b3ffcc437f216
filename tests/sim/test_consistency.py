"""The end-of-run verdict finds every kind of disagreement."""

from __future__ import annotations

from helmet_sim.consistency import LockerView, compare, verdict


def view(**changes: object) -> LockerView:
    base: dict[str, object] = {
        "locker_id": "LK-0001",
        "physical": {1: "H-1", 2: None},
        "last_seq": 5,
        "outbox": 0,
        "cloud_slots": {1: ("occupied", "H-1"), 2: ("empty", None)},
        "cloud_acked_seq": 5,
    }
    base.update(changes)
    return LockerView(**base)  # type: ignore[arg-type]


def test_agreement_passes() -> None:
    problems = compare([view()], {"+41": ["H-2"]}, {"+41": ["H-2"]})
    assert problems == []
    assert verdict(problems, lockers=1, helmets_out=1).startswith("consistency check: OK")


def test_each_disagreement_is_named() -> None:
    problems = compare(
        [view(cloud_acked_seq=4, outbox=1, cloud_slots={1: ("empty", None), 2: ("empty", None)})],
        {"+41": ["H-2"], "+42": []},
        {"+41": [], "+42": ["H-3"]},
    )
    assert any("recorded 5 events, cloud acknowledged 4, 1 still in the outbox" in p for p in problems)
    assert any("slot 1: holds H-1, cloud says empty" in p for p in problems)
    assert any("resident +41: has ['H-2']" in p for p in problems)
    assert any("resident +42: has nothing, cloud's open loans ['H-3']" in p for p in problems)
    assert verdict(problems, lockers=1, helmets_out=1).startswith("consistency check: FAILED")
