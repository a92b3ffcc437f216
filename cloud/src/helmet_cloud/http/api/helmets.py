"""The helmet registry: register in bulk, list, retire, print label sheets."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, Self

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from fastapi import Path as PathParam
from pydantic import BaseModel, Field, model_validator
from sqlalchemy import ColumnElement
from sqlmodel import Session, col, select

from helmet_cloud.http.api.deps import DB_INT_MAX, CtxDep, SessionDep, TechnicianDep
from helmet_cloud.models import Helmet
from helmet_cloud.services import audit
from helmet_cloud.services.alerter import Alerter
from helmet_cloud.services.alerts import Changes
from helmet_cloud.services.helmets import (
    MAX_BATCH,
    HelmetQuery,
    RegistryError,
    check_retired,
    listing,
    numbered_ids,
    register,
    retire,
)
from helmet_cloud.services.labels import LabelError, label_sheet
from helmet_cloud.timeutil import utcnow
from helmet_protocol.stickers import HELMET_ID_RE

router = APIRouter(prefix="/api", tags=["helmets"])


class HelmetRegistration(BaseModel):
    """Either ``ids``, or ``count`` numbered ids after ``prefix`` (continuing after the highest one known)."""

    ids: list[Annotated[str, Field(max_length=16)]] | None = Field(default=None, max_length=MAX_BATCH)
    count: int | None = Field(default=None, ge=1, le=MAX_BATCH)
    prefix: str = Field(default="H-", max_length=13)
    digits: int = Field(default=5, ge=1, le=11)
    start: int | None = Field(default=None, ge=0, description="first number; default: after the highest known")

    @model_validator(mode="after")
    def _one_way(self) -> Self:
        if (self.ids is None) == (self.count is None):
            raise ValueError("give either ids or count (with prefix), not both")
        return self


class HelmetPublic(BaseModel):
    id: str
    status: str
    locker_id: str | None
    slot: int | None
    holder_id: str | None
    since: datetime | None
    registered_at: datetime | None
    registered_by: str | None
    retired_at: datetime | None
    retired_by: str | None
    retired_reason: str | None

    @classmethod
    def of(cls, row: Helmet) -> HelmetPublic:
        return cls.model_validate(row, from_attributes=True)


class Registered(BaseModel):
    registered: int
    ids: list[str]
    labels_url: str


class RetireRequest(BaseModel):
    reason: str | None = Field(default=None, max_length=200)


def _refuse(exc: RegistryError | LabelError) -> HTTPException:
    return HTTPException(exc.status if isinstance(exc, RegistryError) else 422, str(exc))


@router.post("/helmets", status_code=status.HTTP_201_CREATED)
def register_helmets(body: HelmetRegistration, session: SessionDep, caller: TechnicianDep) -> Registered:
    """Register helmets in bulk; all or none."""
    try:
        ids = body.ids or numbered_ids(
            session, prefix=body.prefix, count=body.count or 0, digits=body.digits, start=body.start
        )
        register(session, ids=ids, actor=caller.subject)
    except RegistryError as exc:
        session.rollback()
        raise _refuse(exc) from None
    audit.record(
        session,
        actor=caller,
        action="helmets.register",
        subject_type="helmet",
        subject_id=ids[0] if len(ids) == 1 else f"{ids[0]}..{ids[-1]}",
        detail={"count": len(ids)},
    )
    session.commit()
    return Registered(registered=len(ids), ids=ids, labels_url=f"/api/labels/helmets.pdf?first={ids[0]}&last={ids[-1]}")


@router.get("/helmets")
def list_helmets(
    session: SessionDep,
    _: TechnicianDep,
    status_: Annotated[
        Literal["in_slot", "on_loan", "removed", "unknown"] | None, Query(alias="status", description="where it is")
    ] = None,
    retired: bool | None = None,
    registered: bool | None = None,
    prefix: Annotated[str | None, Query(max_length=16)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=DB_INT_MAX)] = 0,
) -> list[HelmetPublic]:
    """Helmets by id, with where each is and its registry dates."""
    q = HelmetQuery(status=status_, retired=retired, registered=registered, prefix=prefix, limit=limit, offset=offset)
    return [HelmetPublic.of(h) for h in listing(session, q)]


@router.post("/helmets/{helmet_id}/retire")
def retire_helmet(
    helmet_id: Annotated[str, PathParam(pattern=HELMET_ID_RE.pattern)],
    session: SessionDep,
    request: Request,
    caller: TechnicianDep,
    body: RetireRequest | None = None,
) -> HelmetPublic:
    """Take a helmet out of service (damaged, too old). If it sits in a slot, an alert asks to take it out."""
    try:
        helmet = retire(session, helmet_id=helmet_id, actor=caller.subject, reason=body.reason if body else None)
    except RegistryError as exc:
        raise _refuse(exc) from None
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
    alerter: Alerter | None = getattr(request.app.state, "alerter", None)
    if alerter is not None:

        def evaluate(s: Session, changes: Changes, now: datetime) -> None:
            check_retired(s, changes, now, [helmet_id])

        alerter.run(evaluate, utcnow())
    return HelmetPublic.of(helmet)


@router.get("/labels/helmets.pdf", response_class=Response)
def helmet_labels(
    session: SessionDep,
    ctx: CtxDep,
    _: TechnicianDep,
    ids: Annotated[str | None, Query(max_length=20_000, description="comma-separated helmet ids")] = None,
    first: Annotated[str | None, Query(max_length=16)] = None,
    last: Annotated[str | None, Query(max_length=16)] = None,
) -> Response:
    """An A4 sheet of labels (QR of the sticker URL and the id) for registered, unretired helmets.

    Either ``ids``, or the range ``first``..``last`` (by id, inclusive).
    """
    if ids is not None:
        wanted = [i.strip() for i in ids.split(",") if i.strip()]
        known = set(session.exec(select(Helmet.id).where(col(Helmet.id).in_(wanted[:MAX_BATCH]), *_printable())).all())
        if not 1 <= len(wanted) <= MAX_BATCH:
            raise HTTPException(422, f"1..{MAX_BATCH} helmet ids")
        missing = [i for i in wanted if i not in known]
        if missing:
            more = "" if len(missing) <= 5 else f" and {len(missing) - 5} more"
            raise HTTPException(422, f"not registered, or retired: {', '.join(missing[:5])}{more}")
    elif first is not None and last is not None:
        q = select(Helmet.id).where(col(Helmet.id) >= first, col(Helmet.id) <= last, *_printable())
        wanted = list(session.exec(q.order_by(col(Helmet.id)).limit(MAX_BATCH + 1)).all())
        if not wanted:
            raise HTTPException(404, f"no registered helmet from {first} to {last}")
    else:
        raise HTTPException(422, "give ids, or first and last")
    try:
        pdf = label_sheet(ctx.settings.public_host, wanted)
    except LabelError as exc:
        raise _refuse(exc) from None
    name = f"helmet-labels-{wanted[0]}-{wanted[-1]}.pdf"
    return Response(pdf, media_type="application/pdf", headers={"Content-Disposition": f'inline; filename="{name}"'})


def _printable() -> tuple[ColumnElement[bool], ...]:
    return (col(Helmet.registered_at).is_not(None), col(Helmet.retired_at).is_(None))
