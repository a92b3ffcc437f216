"""The rebalancing round: the advice from live counts, and the moves technicians record as done.

The advice (:mod:`helmet_cloud.domain.rebalance`) is recomputed from the
stations' counts on every look; a move someone recorded in today's round (the
town's day) stays done for the rest of the day, whatever the recomputed advice
then says about the same two stations. Recording is audited
(``rebalance.move_done``) in the same transaction; recording the same move
again corrects its number (the audit entry keeps the number before).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from helmet_cloud.domain import rebalance
from helmet_cloud.domain.roles import Caller
from helmet_cloud.errors import InvalidError, NotFoundError
from helmet_cloud.i18n import zone
from helmet_cloud.models import Locker, RawEvent, RebalanceMove, Station
from helmet_cloud.services import audit, towns
from helmet_cloud.services.stations import stations_with_counts
from helmet_protocol.events import EventKind

DEMAND_HOURS = 24
MAX_MOVED = 1000  # helmets in one move: more than any van carries


@dataclass(frozen=True, slots=True)
class Round:
    day: date
    computed_at: datetime
    moves: list[rebalance.RoundMove]
    loads: list[rebalance.StationLoad]


def town_zone(session: Session) -> ZoneInfo:
    """The town's clock, whose day a round is (services.towns holds each town's zone)."""
    return zone(towns.zone_name(session))


def demand(session: Session, since: datetime) -> dict[str, tuple[int, int]]:
    """(borrows, returns) per station since ``since``."""
    rows = session.exec(
        select(Locker.station_id, RawEvent.kind, func.count())
        .join(Locker, col(Locker.id) == col(RawEvent.locker_id))
        .where(
            col(RawEvent.ts) >= since, col(RawEvent.kind).in_((EventKind.HELMET_BORROWED, EventKind.HELMET_RETURNED))
        )
        .group_by(col(Locker.station_id), col(RawEvent.kind))
    ).all()
    out: dict[str, tuple[int, int]] = {}
    for station, kind, n in rows:
        b, r = out.get(station, (0, 0))
        out[station] = (b + n, r) if kind == EventKind.HELMET_BORROWED else (b, r + n)
    return out


def loads(session: Session, now: datetime) -> list[rebalance.StationLoad]:
    """Each station's load now: helmets, usable slots (occupied and empty), thresholds, the last day's flows."""
    flows = demand(session, now - timedelta(hours=DEMAND_HOURS))
    stations = stations_with_counts(session, list(session.exec(select(Station).order_by(col(Station.id))).all()))
    return [
        rebalance.StationLoad(
            id=s.id,
            name=s.name,
            lat=s.lat,
            lon=s.lon,
            helmets=s.helmets_available,
            usable_slots=s.helmets_available + s.free_slots,
            low_threshold=s.low_threshold,
            high_threshold=s.high_threshold,
            borrowed=flows.get(s.id, (0, 0))[0],
            returned=flows.get(s.id, (0, 0))[1],
            online=s.lockers_online > 0,
        )
        for s in stations
    ]


def _done(row: RebalanceMove) -> rebalance.DoneMove:
    return rebalance.DoneMove(
        row.source_station_id, row.target_station_id, row.moved, row.advised, row.done_by, row.done_at
    )


def done_moves(session: Session, day: date) -> list[rebalance.DoneMove]:
    rows = session.exec(select(RebalanceMove).where(RebalanceMove.round_day == day)).all()
    return [_done(r) for r in rows]


def current_round(session: Session, now: datetime) -> Round:
    """Today's round: the advice from live counts, with the moves already recorded today marked done."""
    day = rebalance.round_day(now, town_zone(session))
    station_loads = loads(session, now)
    advice = rebalance.advise(station_loads)
    return Round(day, now, rebalance.round_moves(advice, done_moves(session, day), station_loads), station_loads)


def record_move(
    session: Session,
    *,
    caller: Caller,
    source: str,
    target: str,
    moved: int,
    now: datetime,
    advised: int | None = None,
) -> rebalance.DoneMove:
    """Record "``moved`` helmets went from ``source`` to ``target``" in today's round, audited; again corrects it.

    ``advised`` is what the advice asked as the person saw it; by default, what it asks now.
    """
    if source == target:
        raise InvalidError("a move needs two different stations")
    if not 0 <= moved <= MAX_MOVED:
        raise InvalidError("helmets moved must be between 0 and {most}", most=MAX_MOVED)
    for sid in (source, target):
        if session.get(Station, sid) is None:
            raise NotFoundError("no station {station}", station=sid)
    day = rebalance.round_day(now, town_zone(session))
    if advised is None:
        advice = rebalance.advise(loads(session, now))
        advised = next((m.count for m in advice if (m.source, m.target) == (source, target)), None)
    for attempt in (1, 2):
        try:
            return _record(session, caller, day, source, target, moved, advised, now)
        except IntegrityError:  # someone recorded the same move at the same moment: theirs is corrected
            session.rollback()
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _record(
    session: Session,
    caller: Caller,
    day: date,
    source: str,
    target: str,
    moved: int,
    advised: int | None,
    now: datetime,
) -> rebalance.DoneMove:
    row = session.exec(
        select(RebalanceMove)
        .where(
            RebalanceMove.round_day == day,
            RebalanceMove.source_station_id == source,
            RebalanceMove.target_station_id == target,
        )
        .with_for_update()
    ).first()
    detail: dict[str, object] = {"from": source, "to": target, "moved": moved, "round": day.isoformat()}
    if row is None:
        row = RebalanceMove(
            round_day=day,
            source_station_id=source,
            target_station_id=target,
            moved=moved,
            advised=advised,
            done_by=caller.subject,
            done_at=now,
        )
        detail["advised"] = advised
    else:
        detail["moved_before"] = row.moved
        row.moved, row.done_by, row.done_at = moved, caller.subject, now
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=caller,
        action="rebalance.move_done",
        subject_type="rebalance_move",
        subject_id=str(row.id),
        detail=detail,
    )
    session.commit()
    session.refresh(row)
    return _done(row)
