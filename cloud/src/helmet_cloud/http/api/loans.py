"""Loans: residents see their own, staff see the town."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlmodel import col, select

from helmet_cloud.domain.phones import MAX_TYPED
from helmet_cloud.domain.states import LoanStatus
from helmet_cloud.errors import ForbiddenError, NotFoundError
from helmet_cloud.http.deps import DB_INT_MAX, CallerDep, CtxDep, SessionDep, TechnicianDep
from helmet_cloud.models import Helmet, Loan
from helmet_cloud.services import phones

router = APIRouter(prefix="/api", tags=["loans"])


class LoanPublic(BaseModel):
    id: str
    helmet_id: str
    resident_id: str | None
    pass_id: str | None
    borrowed_at: datetime
    borrow_locker_id: str
    returned_at: datetime | None
    return_locker_id: str | None
    status: str
    overdue_at: datetime | None = None
    missing_at: datetime | None = None
    lost_at: datetime | None = None
    found_at: datetime | None = None


@router.get("/loans")
def list_loans(
    session: SessionDep,
    ctx: CtxDep,
    caller: CallerDep,
    status_: Annotated[LoanStatus | None, Query(alias="status")] = None,
    resident_id: str | None = Query(
        default=None,
        max_length=MAX_TYPED,
        description="an R-... id, or the resident's phone number in any local or international form",
    ),
    limit: int = Query(default=100, ge=1, le=1000),
    offset: int = Query(default=0, ge=0, le=DB_INT_MAX),
) -> list[LoanPublic]:
    """Loans, newest first. A resident only ever sees their own."""
    q = select(Loan)
    if caller.role == "resident":
        q = q.where(Loan.resident_id == caller.subject)
    elif caller.role in ("staff", "admin"):
        if resident_id:
            who = phones.find_resident(session, ctx.settings, resident_id)
            q = q.where(Loan.resident_id == (who.id if who is not None else resident_id.strip()))
    else:
        raise ForbiddenError("needs role resident or staff")
    if status_:
        q = q.where(Loan.status == status_)
    rows = session.exec(q.order_by(col(Loan.borrowed_at).desc()).offset(offset).limit(limit)).all()
    return [LoanPublic.model_validate(r, from_attributes=True) for r in rows]


@router.get("/helmets/{helmet_id}")
def get_helmet(helmet_id: str, session: SessionDep, _: TechnicianDep) -> Helmet:
    helmet = session.get(Helmet, helmet_id)
    if helmet is None:
        raise NotFoundError("no helmet {helmet}", helmet=helmet_id)
    return helmet
