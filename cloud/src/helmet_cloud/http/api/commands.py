"""Commands to lockers: technicians' remote actions and residents' "open now"."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, status
from pydantic import BaseModel, Field
from sqlmodel import col, select

from helmet_cloud.http.api.deps import CallerDep, CtxDep, ResidentDep, SessionDep, TechnicianDep
from helmet_cloud.models import IssuedPass, Locker, LockerCommand
from helmet_cloud.services import audit
from helmet_cloud.services.commands import CommandNotSentError, send_command
from helmet_cloud.timeutil import aware, utcnow
from helmet_protocol.topics import LOCKER_ID_RE

router = APIRouter(prefix="/api", tags=["commands"])
LockerIdPath = Annotated[str, Path(pattern=LOCKER_ID_RE.pattern)]


class CommandRequest(BaseModel):
    op: Literal["unlock", "disable_slot", "enable_slot", "selftest", "reboot"]
    slot: int | None = Field(default=None, ge=1, le=64)


class OpenNow(BaseModel):
    locker_id: str = Field(pattern=LOCKER_ID_RE.pattern)


class CommandPublic(BaseModel):
    id: str
    locker_id: str
    op: str
    slot: int | None
    status: str
    error: str | None
    result: dict[str, Any] | None
    requested_at: datetime
    answered_at: datetime | None

    @classmethod
    def of(cls, row: LockerCommand) -> CommandPublic:
        return cls(
            id=row.id,
            locker_id=row.locker_id,
            op=row.op,
            slot=row.slot,
            status=row.status,
            error=row.error,
            result=json.loads(row.result) if row.result else None,
            requested_at=row.requested_at,
            answered_at=row.answered_at,
        )


def _online_locker(session: SessionDep, locker_id: str) -> Locker:
    locker = session.get(Locker, locker_id)
    if locker is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no locker {locker_id}")
    if not locker.online:
        raise HTTPException(status.HTTP_409_CONFLICT, f"locker {locker_id} is offline")
    return locker


def _send(ctx: CtxDep, session: SessionDep, **kwargs: Any) -> CommandPublic:
    try:
        return CommandPublic.of(send_command(ctx, session, **kwargs))
    except CommandNotSentError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from None


@router.post("/lockers/{locker_id}/commands", status_code=status.HTTP_202_ACCEPTED)
def command_locker(
    locker_id: LockerIdPath, body: CommandRequest, session: SessionDep, ctx: CtxDep, caller: TechnicianDep
) -> CommandPublic:
    """Open a slot, disable or enable one, run the self-test, or restart the service."""
    locker = _online_locker(session, locker_id)
    needs_slot = body.op in ("unlock", "disable_slot", "enable_slot")
    if needs_slot and (body.slot is None or body.slot > locker.slot_count):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"{body.op} needs a slot in 1..{locker.slot_count}")
    audit.record(
        session,
        actor=caller,
        action=f"command.{body.op}",
        subject_type="locker" if body.slot is None else "slot",
        subject_id=locker_id if body.slot is None else f"{locker_id}/{body.slot}",
    )
    return _send(ctx, session, locker_id=locker_id, op=body.op, slot=body.slot, requested_by=caller.subject)


@router.get("/lockers/{locker_id}/commands")
def locker_commands(locker_id: LockerIdPath, session: SessionDep, _: TechnicianDep) -> list[CommandPublic]:
    rows = session.exec(
        select(LockerCommand)
        .where(LockerCommand.locker_id == locker_id)
        .order_by(col(LockerCommand.requested_at).desc())
        .limit(100)
    ).all()
    return [CommandPublic.of(r) for r in rows]


@router.get("/commands/{cmd_id}")
def get_command(cmd_id: Annotated[str, Path(max_length=64)], session: SessionDep, caller: CallerDep) -> CommandPublic:
    """A command's state; a resident may see only the ones they asked for."""
    row = session.get(LockerCommand, cmd_id)
    if row is None or (caller.role == "resident" and row.requested_by != caller.subject):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no command {cmd_id}")
    return CommandPublic.of(row)


@router.post("/passes/{pass_id}/open", status_code=status.HTTP_202_ACCEPTED)
def open_now(
    pass_id: Annotated[str, Path(max_length=36)],
    body: OpenNow,
    session: SessionDep,
    ctx: CtxDep,
    caller: ResidentDep,
) -> CommandPublic:
    """ "Open now": send the resident's pass to an online locker as a ``borrow`` command."""
    issued = session.get(IssuedPass, pass_id)
    if issued is None or issued.holder_id != caller.subject or issued.text is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no pass {pass_id}")
    if aware(issued.expires_at) <= utcnow():
        raise HTTPException(status.HTTP_410_GONE, "the pass has expired: ask for a new one")
    _online_locker(session, body.locker_id)
    return _send(
        ctx, session, locker_id=body.locker_id, op="borrow", pass_text=issued.text, requested_by=caller.subject
    )
