"""What a resident may still borrow: helmets out plus helmets on passes no locker has used yet (nor withdrawn),
against the limit; and those open passes themselves, which the station page and ``/api/me`` list."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, col, func, or_, select

from helmet_cloud.domain.allowance import Allowance
from helmet_cloud.domain.states import LoanStatus
from helmet_cloud.models import IssuedPass, Loan


def _holding(resident_id: str, now: datetime) -> list[Any]:
    """The passes that hold helmets against the allowance.

    A pass holds its helmets until a locker uses it (or "open now" has sent it and no event says yet): once
    used, every locker refuses it, so what it did not open is free again (the helmets taken are loans).
    """
    return [
        IssuedPass.holder_id == resident_id,
        col(IssuedPass.expires_at) > now,
        col(IssuedPass.withdrawn_at).is_(None),
        or_(col(IssuedPass.used_at).is_(None), col(IssuedPass.used_cmd_id).is_not(None)),
    ]


def allowance(session: Session, resident_id: str, *, limit: int, now: datetime) -> Allowance:
    held = session.exec(
        select(func.count()).where(Loan.resident_id == resident_id, Loan.status == LoanStatus.OPEN)
    ).one()
    pending = session.exec(
        select(func.coalesce(func.sum(IssuedPass.quantity), 0)).where(*_holding(resident_id, now))
    ).one()
    return Allowance(limit=limit, held=held, pending=pending)


def open_passes(session: Session, resident_id: str, *, now: datetime) -> list[IssuedPass]:
    """The resident's passes that still hold helmets (exactly those :func:`allowance` counts), newest first."""
    q = select(IssuedPass).where(*_holding(resident_id, now)).order_by(col(IssuedPass.issued_at).desc())
    return list(session.exec(q).all())
