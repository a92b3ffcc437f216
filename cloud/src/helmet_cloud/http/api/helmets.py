"""The helmet registry: register in bulk, list, retire, print label sheets."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Self

from fastapi import APIRouter, Query, Response, status
from fastapi import Path as PathParam
from pydantic import BaseModel, Field, model_validator

from helmet_cloud.domain.states import HelmetStatus
from helmet_cloud.http.deps import DB_INT_MAX, CtxDep, SessionDep, TechnicianDep
from helmet_cloud.models import Helmet
from helmet_cloud.services import helmet_actions
from helmet_cloud.services.helmets import MAX_BATCH, HelmetQuery, listing
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


@router.post("/helmets", status_code=status.HTTP_201_CREATED)
def register_helmets(body: HelmetRegistration, session: SessionDep, caller: TechnicianDep) -> Registered:
    """Register helmets in bulk; all or none."""
    ids = helmet_actions.register_helmets(
        session,
        caller=caller,
        ids=body.ids or (),
        prefix=body.prefix,
        count=body.count,
        digits=body.digits,
        start=body.start,
    )
    return Registered(registered=len(ids), ids=ids, labels_url=f"/api/labels/helmets.pdf?first={ids[0]}&last={ids[-1]}")


@router.get("/helmets")
def list_helmets(
    session: SessionDep,
    _: TechnicianDep,
    status_: Annotated[HelmetStatus | None, Query(alias="status", description="where it is")] = None,
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
    ctx: CtxDep,
    caller: TechnicianDep,
    body: RetireRequest | None = None,
) -> HelmetPublic:
    """Take a helmet out of service (damaged, too old). If it sits in a slot, an alert asks to take it out."""
    reason = body.reason if body else None
    return HelmetPublic.of(
        helmet_actions.retire_helmet(session, ctx, caller=caller, helmet_id=helmet_id, reason=reason)
    )


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
    pdf, name = helmet_actions.label_pdf(session, ctx, ids=ids, first=first, last=last)
    return Response(pdf, media_type="application/pdf", headers={"Content-Disposition": f'inline; filename="{name}"'})
