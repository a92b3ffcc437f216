"""Broker credentials of a locker: a new password for a replaced Pi, revocation at decommissioning."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Response, status
from pydantic import BaseModel

from helmet_cloud.api.deps import AdminDep, CtxDep, SessionDep, TechnicianDep
from helmet_cloud.broker_admin import BrokerAdminError, DynsecAdmin
from helmet_cloud.context import AppContext
from helmet_cloud.models import Locker
from helmet_protocol.topics import LOCKER_ID_RE

router = APIRouter(prefix="/api/lockers", tags=["provisioning"])
LockerIdPath = Annotated[str, Path(pattern=LOCKER_ID_RE.pattern)]


class Credentials(BaseModel):
    mqtt_username: str
    mqtt_password: str


def _admin(ctx: AppContext, session: SessionDep, locker_id: str) -> DynsecAdmin:
    if session.get(Locker, locker_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no locker {locker_id}")
    if ctx.broker_admin is None:
        raise HTTPException(status.HTTP_409_CONFLICT, "this cloud does not manage broker users (broker_admin_*)")
    return ctx.broker_admin


@router.post("/{locker_id}/credentials")
def new_credentials(locker_id: LockerIdPath, session: SessionDep, ctx: CtxDep, _: TechnicianDep) -> Credentials:
    """A new broker password for the locker (a replaced Pi); the old one stops working at once."""
    admin = _admin(ctx, session, locker_id)
    try:
        return Credentials(mqtt_username=locker_id, mqtt_password=admin.rotate_locker(locker_id))
    except BrokerAdminError as exc:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, f"the broker refused: {exc}") from None


@router.post("/{locker_id}/revoke", status_code=status.HTTP_204_NO_CONTENT)
def revoke(locker_id: LockerIdPath, session: SessionDep, ctx: CtxDep, _: AdminDep) -> Response:
    """Decommission: the locker's broker user is deleted and its connection dropped at once."""
    admin = _admin(ctx, session, locker_id)
    try:
        admin.delete_locker(locker_id)
    except BrokerAdminError as exc:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, f"the broker refused: {exc}") from None
    return Response(status_code=status.HTTP_204_NO_CONTENT)
