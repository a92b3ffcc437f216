"""What a resident may still borrow: helmets out plus helmets on passes not yet used (nor withdrawn), against the
limit."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, func, select

from helmet_cloud.domain.allowance import Allowance
from helmet_cloud.domain.states import LoanStatus
from helmet_cloud.models import IssuedPass, Loan, RawEvent
from helmet_protocol.events import EventKind


def allowance(session: Session, resident_id: str, *, limit: int, now: datetime) -> Allowance:
    held = session.exec(
        select(func.count()).where(Loan.resident_id == resident_id, Loan.status == LoanStatus.OPEN)
    ).one()
    live = session.exec(
        select(IssuedPass).where(
            IssuedPass.holder_id == resident_id,
            col(IssuedPass.expires_at) > now,
            col(IssuedPass.withdrawn_at).is_(None),  # a withdrawn pass opens nothing more: it holds no helmets
        )
    ).all()
    pending = 0
    for p in live:
        used = session.exec(
            select(func.count()).where(RawEvent.pass_id == p.id, RawEvent.kind == EventKind.HELMET_BORROWED)
        ).one()
        pending += max(0, p.quantity - used)
    return Allowance(limit=limit, held=held, pending=pending)
