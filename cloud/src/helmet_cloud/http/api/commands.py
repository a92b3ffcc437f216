"""Commands to lockers: technicians' remote actions and residents' "open now"."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status
from pydantic import BaseModel, Field
from sqlmodel import col, select

from helmet_cloud.errors import NotFoundError
from helmet_cloud.http.deps import CallerDep, CtxDep, ResidentDep, SessionDep, TechnicianDep
from helmet_cloud.models import LockerCommand
from helmet_cloud.services import commands
from helmet_cloud.services.commands import CommandPublic
from helmet_protocol.messages import MAX_SLOTS, CmdOp
from helmet_protocol.topics import LOCKER_ID_RE

router = APIRouter(prefix="/api", tags=["commands"])
LockerIdPath = Annotated[str, Path(pattern=LOCKER_ID_RE.pattern)]


class CommandRequest(BaseModel):
    op: CmdOp = Field(
        description="one of the ops a technician sends by hand: unlock, disable_slot, enable_slot, selftest, reboot"
    )
    slot: int | None = Field(default=None, ge=1, le=MAX_SLOTS)
    reason: str | None = Field(
        default=None, max_length=200, description="why it is sent (kept with the command and in the audit log)"
    )


class OpenNow(BaseModel):
    locker_id: str = Field(pattern=LOCKER_ID_RE.pattern)


@router.post("/lockers/{locker_id}/commands", status_code=status.HTTP_202_ACCEPTED)
def command_locker(
    locker_id: LockerIdPath, body: CommandRequest, session: SessionDep, ctx: CtxDep, caller: TechnicianDep
) -> CommandPublic:
    """Open a slot, disable or enable one, run the self-test, or restart the service."""
    return commands.command_locker(
        session, ctx, caller=caller, locker_id=locker_id, op=body.op, slot=body.slot, reason=body.reason
    )


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
        raise NotFoundError("no command {cmd_id}", cmd_id=cmd_id)
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
    return commands.open_pass_now(session, ctx, caller=caller, pass_id=pass_id, locker_id=body.locker_id)
