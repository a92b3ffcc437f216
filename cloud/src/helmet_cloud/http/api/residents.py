"""Residents: each sees their own account; staff look residents up (to reach one with a lost helmet)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field
from sqlmodel import Session, col, select

from helmet_cloud.domain.phones import MAX_TYPED
from helmet_cloud.domain.states import LoanStatus
from helmet_cloud.errors import NotFoundError, NotSignedInError
from helmet_cloud.http.deps import DB_INT_MAX, CtxDep, ResidentDep, SessionDep, StaffDep
from helmet_cloud.models import Loan, Resident
from helmet_cloud.services import phones
from helmet_cloud.services.passes import pass_progress
from helmet_cloud.services.residents import allowance, open_passes
from helmet_cloud.timeutil import utcnow

router = APIRouter(prefix="/api", tags=["residents"])
ResidentId = Annotated[str, Path(max_length=16)]


class OpenPass(BaseModel):
    """A pass of the resident's that still holds helmets: not used yet (or "open now" sent it and no locker has
    said so yet), not withdrawn, not expired. Its helmets count in ``helmets_on_unused_passes``."""

    pass_id: str
    quantity: int
    issued_at: datetime
    expires_at: datetime
    station_id: str | None
    phase: str = Field(description='"ready" (show it, or open now) or "sent" (open now is on its way)')


class ResidentPublic(BaseModel):
    id: str
    phone: str
    created_at: datetime
    limit: int
    helmets_out: int
    helmets_on_unused_passes: int
    may_borrow: int
    lost_helmets: int


class Me(ResidentPublic):
    """The signed-in resident's account, with the open passes that hold helmets against the limit."""

    open_passes: list[OpenPass]


def _public(session: Session, resident: Resident, limit: int) -> ResidentPublic:
    mine = allowance(session, resident.id, limit=limit, now=utcnow())
    lost = session.exec(
        select(Loan.id).where(
            Loan.resident_id == resident.id, Loan.status == LoanStatus.OPEN, col(Loan.lost_at).is_not(None)
        )
    ).all()
    return ResidentPublic(
        id=resident.id,
        phone=resident.phone,
        created_at=resident.created_at,
        limit=mine.limit,
        helmets_out=mine.held,
        helmets_on_unused_passes=mine.pending,
        may_borrow=mine.room,
        lost_helmets=len(lost),
    )


@router.get("/me")
def me(session: SessionDep, ctx: CtxDep, caller: ResidentDep) -> Me:
    """The signed-in resident's account: helmets out, open passes, and how many more they may borrow now."""
    resident = session.get(Resident, caller.subject)
    if resident is None:
        raise NotSignedInError("unknown resident")
    now = utcnow()
    held = [
        OpenPass(
            pass_id=p.id,
            quantity=p.quantity,
            issued_at=p.issued_at,
            expires_at=p.expires_at,
            station_id=p.station_id,
            phase=pass_progress(session, p, now).phase,
        )
        for p in open_passes(session, resident.id, now=now)
    ]
    return Me(**_public(session, resident, ctx.settings.max_helmets_per_resident).model_dump(), open_passes=held)


@router.get("/residents")
def list_residents(
    session: SessionDep,
    ctx: CtxDep,
    _: StaffDep,
    phone: str | None = Query(
        default=None,
        max_length=MAX_TYPED,
        description=(
            "the number in any local or international form (read in the deployment's region, then each town's), "
            "or an R-... id"
        ),
    ),
    limit: int = Query(default=100, ge=1, le=1000),
    offset: int = Query(default=0, ge=0, le=DB_INT_MAX),
) -> list[ResidentPublic]:
    """Residents, newest first, or the one with ``phone``."""
    if phone:
        who = phones.find_resident(session, ctx.settings, phone)
        return [] if who is None else [_public(session, who, ctx.settings.max_helmets_per_resident)]
    q = select(Resident)
    rows = session.exec(q.order_by(col(Resident.created_at).desc()).offset(offset).limit(limit)).all()
    return [_public(session, r, ctx.settings.max_helmets_per_resident) for r in rows]


@router.get("/residents/{resident_id}")
def get_resident(resident_id: ResidentId, session: SessionDep, ctx: CtxDep, _: StaffDep) -> ResidentPublic:
    resident = session.get(Resident, resident_id)
    if resident is None:
        raise NotFoundError("no resident {resident_id}", resident_id=resident_id)
    return _public(session, resident, ctx.settings.max_helmets_per_resident)
