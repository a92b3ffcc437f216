"""What technicians do with the helmet registry: register helmets, retire one, print label sheets; all audited."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement
from sqlmodel import Session, col, select

from helmet_cloud.context import AppContext
from helmet_cloud.domain.roles import Caller
from helmet_cloud.errors import InvalidError, NotFoundError
from helmet_cloud.models import Helmet
from helmet_cloud.services import audit
from helmet_cloud.services.alerts import Changes
from helmet_cloud.services.helmets import MAX_BATCH, check_retired, numbered_ids, register, retire
from helmet_cloud.services.labels import label_sheet
from helmet_cloud.timeutil import utcnow


def register_helmets(
    session: Session,
    *,
    caller: Caller,
    ids: Sequence[str] = (),
    prefix: str = "H-",
    count: int | None = None,
    digits: int = 5,
    start: int | None = None,
) -> list[str]:
    """Register ``ids``, or ``count`` numbered ids after ``prefix``; all or none."""
    try:
        wanted = (
            list(ids) if ids else numbered_ids(session, prefix=prefix, count=count or 0, digits=digits, start=start)
        )
        register(session, ids=wanted, actor=caller.subject)
    except InvalidError:
        session.rollback()
        raise
    audit.record(
        session,
        actor=caller,
        action="helmets.register",
        subject_type="helmet",
        subject_id=wanted[0] if len(wanted) == 1 else f"{wanted[0]}..{wanted[-1]}",
        detail={"count": len(wanted)},
    )
    session.commit()
    return wanted


def retire_helmet(session: Session, ctx: AppContext, *, caller: Caller, helmet_id: str, reason: str | None) -> Helmet:
    """Take a helmet out of service (damaged, too old). If it sits in a slot, an alert asks to take it out."""
    helmet = retire(session, helmet_id=helmet_id, actor=caller.subject, reason=reason)
    audit.record(
        session,
        actor=caller,
        action="helmet.retire",
        subject_type="helmet",
        subject_id=helmet_id,
        detail={"reason": helmet.retired_reason} if helmet.retired_reason else None,
    )
    session.commit()
    session.refresh(helmet)
    if ctx.alerter is not None:

        def evaluate(s: Session, changes: Changes, now: datetime) -> None:
            check_retired(s, changes, now, [helmet_id])

        ctx.alerter.run(evaluate, utcnow())
    return helmet


def label_pdf(
    session: Session, ctx: AppContext, *, ids: str | None, first: str | None, last: str | None
) -> tuple[bytes, str]:
    """An A4 sheet of labels for registered, unretired helmets, and a file name for it.

    Either ``ids`` (comma-separated), or the range ``first``..``last`` (by id, inclusive).
    """
    if ids is not None:
        wanted = [i.strip() for i in ids.split(",") if i.strip()]
        if not 1 <= len(wanted) <= MAX_BATCH:
            raise InvalidError("give 1 to {most} helmet ids", most=MAX_BATCH)
        known = set(session.exec(select(Helmet.id).where(col(Helmet.id).in_(wanted), *_printable())).all())
        missing = [i for i in wanted if i not in known]
        if missing:
            more = "" if len(missing) <= 5 else f" and {len(missing) - 5} more"
            raise InvalidError("not registered, or retired: {ids}", ids=", ".join(missing[:5]) + more)
    elif first is not None and last is not None:
        q = select(Helmet.id).where(col(Helmet.id) >= first, col(Helmet.id) <= last, *_printable())
        wanted = list(session.exec(q.order_by(col(Helmet.id)).limit(MAX_BATCH + 1)).all())
        if not wanted:
            raise NotFoundError("no registered helmet from {first} to {last}", first=first, last=last)
    else:
        raise InvalidError("give ids, or first and last")
    return label_sheet(ctx.settings.public_host, wanted), f"helmet-labels-{wanted[0]}-{wanted[-1]}.pdf"


def _printable() -> tuple[ColumnElement[bool], ...]:
    return (col(Helmet.registered_at).is_not(None), col(Helmet.retired_at).is_(None))
