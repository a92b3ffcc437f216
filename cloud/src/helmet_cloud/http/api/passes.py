"""Borrow passes for residents, maintenance passes for technicians."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, status
from pydantic import BaseModel, Field

from helmet_cloud.http.deps import CallerDep, CtxDep, ResidentDep, SessionDep, TechnicianDep, client_address
from helmet_cloud.services import passes
from helmet_cloud.services.passes import PassPublic, SignedPass

router = APIRouter(prefix="/api/passes", tags=["passes"])
PassIdPath = Annotated[str, Path(max_length=36)]


def rate_limit(request: Request, ctx: CtxDep, caller: CallerDep) -> None:
    """Refuse a caller or client address asking for passes faster than the settings allow (429)."""
    passes.check_pass_rate(ctx, caller=caller, address=client_address(request), now=time.monotonic())


RateLimited = Annotated[None, Depends(rate_limit)]


class PassRequest(BaseModel):
    quantity: int = Field(ge=1, le=16)
    station_id: str | None = Field(default=None, max_length=32)


@router.post("", status_code=status.HTTP_201_CREATED, responses={429: {"description": "too many pass requests"}})
def request_pass(
    body: PassRequest, session: SessionDep, ctx: CtxDep, caller: ResidentDep, _limit: RateLimited
) -> SignedPass:
    """A resident asks for a pass for ``quantity`` helmets, within their limit."""
    return passes.issue_resident_pass(session, ctx, caller=caller, quantity=body.quantity, station_id=body.station_id)


@router.post(
    "/technician", status_code=status.HTTP_201_CREATED, responses={429: {"description": "too many pass requests"}}
)
def technician_pass(session: SessionDep, ctx: CtxDep, caller: TechnicianDep, _limit: RateLimited) -> SignedPass:
    """A maintenance pass: shown at a locker it opens maintenance mode."""
    return passes.issue_technician_pass(session, ctx, caller=caller)


@router.get("/{pass_id}")
def get_pass(pass_id: PassIdPath, session: SessionDep, caller: CallerDep) -> PassPublic:
    """A pass and whether it is still good (``unused``, ``used``, ``withdrawn``, ``expired``): one's own, or any for
    staff."""
    return passes.get_pass(session, caller=caller, pass_id=pass_id)


@router.post(
    "/{pass_id}/withdraw", responses={409: {"description": "the pass was used"}, 410: {"description": "expired"}}
)
def withdraw_pass(pass_id: PassIdPath, session: SessionDep, ctx: CtxDep, caller: CallerDep) -> PassPublic:
    """Withdraw a pass: its holder while it is unused, staff any. Every locker refuses it within seconds."""
    return passes.withdraw_pass(session, ctx, caller=caller, pass_id=pass_id)
