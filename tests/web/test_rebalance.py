"""Rebalancing advice: who gives helmets to whom, and how many; the round's moves done."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from helmet_cloud.domain.rebalance import DoneMove, Move, StationLoad, advise, round_day, round_moves


def load(
    sid: str, helmets: int, slots: int, *, lon: float = 8.5, low: int = 1, high: int = 1, **kw: object
) -> StationLoad:
    return StationLoad(sid, f"Station {sid}", 47.37, lon, helmets, slots, low, high, **kw)  # type: ignore[arg-type]


def moved(moves: list[Move]) -> list[tuple[str, str, int]]:
    return [(m.source, m.target, m.count) for m in moves]


def test_an_empty_station_gets_helmets_from_a_full_one() -> None:
    moves = advise([load("A", 6, 6), load("B", 0, 6)])
    # B needs its low threshold (1); A keeps at most 6 - 1 free = 5: one move of one helmet covers both.
    assert moved(moves) == [("A", "B", 1)]
    assert moves[0].km == 0.0 and moves[0].source_name == "Station A"


def test_recent_demand_raises_what_a_station_should_keep() -> None:
    # B handed out 4 more than it took back in the window: it should hold 1 + 4.
    moves = advise([load("A", 8, 8), load("B", 0, 6, borrowed=5, returned=1)])
    assert moved(moves) == [("A", "B", 5)]


def test_a_station_people_return_to_needs_room() -> None:
    # A takes back 3 more than it hands out, so it should keep 3 more slots free than its threshold asks.
    moves = advise([load("A", 5, 6, borrowed=0, returned=3), load("B", 1, 6)])
    assert moved(moves) == [("A", "B", 3)]


def test_needs_are_filled_from_the_nearest_donor_first() -> None:
    # A and FAR each have two helmets above their band (1..4); B (two slots, no free-slot threshold) needs two.
    stations = [
        load("FAR", 6, 6, lon=8.90, high=2),
        load("A", 6, 6, lon=8.50, high=2),
        load("B", 0, 2, lon=8.51, low=2, high=0),
    ]
    moves = advise(stations)
    assert moved(moves) == [("A", "B", 2)]
    assert 0.5 < moves[0].km < 1.0


def test_surplus_anywhere_is_used_before_a_station_dips_into_its_spare() -> None:
    # A and FAR each have one helmet above their band; B needs two: one from each, A's first.
    stations = [load("FAR", 6, 6, lon=8.90), load("A", 6, 6, lon=8.50), load("B", 0, 6, lon=8.51, low=2)]
    assert sorted(moved(advise(stations))) == [("A", "B", 1), ("FAR", "B", 1)]


def test_nothing_moves_when_every_station_is_in_its_band() -> None:
    assert advise([load("A", 3, 6), load("B", 2, 6)]) == []


def test_offline_stations_are_left_out() -> None:
    assert advise([load("A", 6, 6, online=False), load("B", 0, 6)]) == []


def test_no_move_exceeds_what_the_donor_has_or_the_target_can_hold() -> None:
    stations = [load("A", 2, 2, high=0), load("B", 0, 1, low=5, high=0), load("C", 0, 0)]
    moves = advise(stations)
    assert moved(moves) == [("A", "B", 1)]


def test_spare_helmets_are_shared_when_no_station_has_surplus() -> None:
    # A is inside its band (1..5) with 4; B needs 3. A can spare 3 down to its own minimum of 1.
    assert moved(advise([load("A", 4, 6), load("B", 0, 6, low=3)])) == [("A", "B", 3)]


def test_a_move_recorded_done_is_done_whatever_the_recomputed_advice_says() -> None:
    stations = [load("A", 6, 6), load("B", 0, 6), load("C", 0, 6, lon=8.6)]
    done = DoneMove("A", "B", 2, 1, "tex", datetime(2026, 12, 3, 9, 0, tzinfo=UTC))
    # Helmets still in the van: the advice asks A to B again; the round shows it done, the rest still to do.
    lines = round_moves(advise(stations), [done], stations)
    assert [(m.source, m.target, m.done is not None, m.count) for m in lines] == [
        ("A", "C", False, 1),
        ("A", "B", True, 2),
    ]
    # After the move the advice no longer lists A to B: the round keeps it, with its names and distance.
    after = [load("A", 4, 6), load("B", 2, 6), load("C", 0, 6, lon=8.6)]
    lines = round_moves(advise(after), [done], after)
    done_line = [m for m in lines if m.done is not None]
    assert [(m.source_name, m.target_name, m.advised, m.km) for m in done_line] == [
        ("Station A", "Station B", None, 0.0)
    ]


def test_a_round_is_the_towns_day() -> None:
    late = datetime(2026, 12, 3, 23, 30, tzinfo=UTC)
    assert round_day(late, ZoneInfo("UTC")) == date(2026, 12, 3)
    assert round_day(late, ZoneInfo("Europe/Zurich")) == date(2026, 12, 4)
