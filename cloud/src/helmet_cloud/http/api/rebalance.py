"""The rebalancing round for technicians: today's moves (to do and done), and ticking a move done."""

from __future__ import annotations

from datetime import date, datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field

from helmet_cloud.domain.rebalance import DoneMove, RoundMove
from helmet_cloud.http.deps import SessionDep, TechnicianDep
from helmet_cloud.services import rebalance_round
from helmet_cloud.timeutil import aware, utcnow

router = APIRouter(prefix="/api/rebalance", tags=["rebalancing"])


class DonePublic(BaseModel):
    moved: int = Field(description="helmets moved, as recorded")
    advised: int | None = Field(description="what the advice asked when it was recorded")
    done_by: str
    done_at: datetime

    @classmethod
    def of(cls, d: DoneMove) -> DonePublic:
        return cls(moved=d.moved, advised=d.advised, done_by=d.done_by, done_at=aware(d.done_at))


class MovePublic(BaseModel):
    source: str = Field(description="station to take helmets from")
    source_name: str
    target: str = Field(description="station to bring them to")
    target_name: str
    km: float | None = Field(description="straight-line distance")
    advised: int | None = Field(description="helmets the advice asks to move now; null once it no longer asks")
    done: DonePublic | None = Field(description="null while the move is still to do")

    @classmethod
    def of(cls, m: RoundMove) -> MovePublic:
        return cls(
            source=m.source,
            source_name=m.source_name,
            target=m.target,
            target_name=m.target_name,
            km=m.km,
            advised=m.advised,
            done=DonePublic.of(m.done) if m.done is not None else None,
        )


class RoundPublic(BaseModel):
    day: date = Field(description="the round: today in the town's time zone")
    computed_at: datetime
    demand_hours: int = rebalance_round.DEMAND_HOURS
    moves: list[MovePublic] = Field(description="moves to do (largest first), then the ones done (latest first)")


class MoveDone(BaseModel):
    source: str = Field(max_length=32)
    target: str = Field(max_length=32)
    moved: int = Field(ge=0, le=rebalance_round.MAX_MOVED, description="helmets actually moved")
    advised: int | None = Field(default=None, ge=0, le=rebalance_round.MAX_MOVED, description="default: the advice now")


@router.get("")
def current_round(session: SessionDep, _: TechnicianDep) -> RoundPublic:
    """Today's round, recomputed from live counts; a move recorded done today stays done for the day."""
    now = utcnow()
    r = rebalance_round.current_round(session, now)
    return RoundPublic(day=r.day, computed_at=now, moves=[MovePublic.of(m) for m in r.moves])


@router.post("/moves")
def move_done(body: MoveDone, session: SessionDep, caller: TechnicianDep) -> DonePublic:
    """Record a move as done in today's round (who, when, how many; audited as ``rebalance.move_done``).

    Recording the same two stations again today corrects the number. 404 for an unknown station,
    422 for the same station twice.
    """
    done = rebalance_round.record_move(
        session,
        caller=caller,
        source=body.source,
        target=body.target,
        moved=body.moved,
        advised=body.advised,
        now=utcnow(),
    )
    return DonePublic.of(done)
