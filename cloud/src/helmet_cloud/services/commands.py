"""Commands to lockers: technicians' remote actions and residents' "open now"; results arrive on cmd/ack."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlmodel import Session

from helmet_cloud.context import AppContext
from helmet_cloud.domain.roles import Caller
from helmet_cloud.domain.states import CommandStatus
from helmet_cloud.errors import CloudError, ConflictError, GoneError, InvalidError, NotFoundError, UnavailableError
from helmet_cloud.models import IssuedPass, Locker, LockerCommand
from helmet_cloud.services import audit, pass_refusals
from helmet_cloud.services.committed import Committed
from helmet_cloud.timeutil import aware, utcnow
from helmet_protocol import topics
from helmet_protocol.messages import COMMAND_ARGS, CmdOp, Command, new_cmd_id
from helmet_protocol.topics import Channel

# What a technician may send by hand: every op but the ones the cloud sends itself.
TECHNICIAN_OPS: tuple[CmdOp, ...] = tuple(op for op in COMMAND_ARGS if op not in ("borrow", "resend"))


class CommandNotSentError(UnavailableError):
    """The broker connection is down; nothing was sent."""


class CommandPublic(BaseModel):
    id: str
    locker_id: str
    op: str
    slot: int | None
    status: str
    error: str | None
    result: dict[str, Any] | None
    reason: str | None = None
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
            reason=row.reason,
            requested_at=row.requested_at,
            answered_at=row.answered_at,
        )


def send_command(
    ctx: AppContext,
    session: Session,
    *,
    locker_id: str,
    op: CmdOp,
    requested_by: str,
    slot: int | None = None,
    pass_text: str | None = None,
    pass_id: str | None = None,
    cmd_id: str | None = None,
    reason: str | None = None,
) -> LockerCommand:
    """Record the command (with what the session holds), then publish it; the locker executes it at most once."""
    now = utcnow()
    cmd = Command(cmd_id=cmd_id or new_cmd_id(), op=op, slot=slot, pass_text=pass_text, ts=now)
    row = LockerCommand(
        id=cmd.cmd_id,
        locker_id=locker_id,
        op=op,
        slot=slot,
        pass_id=pass_id,
        requested_by=requested_by,
        reason=reason,
        requested_at=now,
    )
    session.add(row)
    session.commit()
    session.refresh(row)
    if not ctx.mqtt.publish(topics.topic(locker_id, Channel.CMD), cmd.to_json()):
        row.status, row.error = CommandStatus.FAILED, "not sent: the cloud has no broker connection"
        session.add(row)
        session.commit()
        raise CommandNotSentError(row.error)
    return row


def online_locker(session: Session, locker_id: str) -> Locker:
    locker = session.get(Locker, locker_id)
    if locker is None:
        raise NotFoundError("no locker {locker}", locker=locker_id)
    if not locker.online:
        raise ConflictError("locker {locker} is offline", locker=locker_id)
    return locker


def command_locker(
    session: Session,
    ctx: AppContext,
    *,
    caller: Caller,
    locker_id: str,
    op: CmdOp,
    slot: int | None,
    reason: str | None = None,
) -> CommandPublic:
    """A technician's remote action on an online locker, audited with its reason (the pages ask one for a remote
    open: someone may be standing at the slot, or nobody)."""
    reason = " ".join((reason or "").split())[:200] or None
    if op not in TECHNICIAN_OPS:
        raise InvalidError("{op} is not sent by hand; one of {ops}", op=op, ops=", ".join(TECHNICIAN_OPS))
    locker = online_locker(session, locker_id)
    if "slot" in COMMAND_ARGS[op] and (slot is None or slot > locker.slot_count):
        raise InvalidError("{op} needs a slot from 1 to {most}", op=op, most=locker.slot_count)
    audit.record(
        session,
        actor=caller,
        action=f"command.{op}",
        subject_type="locker" if slot is None else "slot",
        subject_id=locker_id if slot is None else f"{locker_id}/{slot}",
        detail={"reason": reason} if reason else None,
    )
    row = send_command(ctx, session, locker_id=locker_id, op=op, slot=slot, requested_by=caller.subject, reason=reason)
    return CommandPublic.of(row)


def open_pass_now(session: Session, ctx: AppContext, *, caller: Caller, pass_id: str, locker_id: str) -> CommandPublic:
    """ "Open now": send the resident's own unused pass to an online locker as a ``borrow`` command.

    The pass is claimed for that locker in the command's transaction, so a second "open now" (here or at
    another locker) is refused; if the locker opens nothing, ingest frees the pass again (its ``cmd/ack``).
    """
    issued = session.get(IssuedPass, pass_id)
    if issued is None or issued.holder_id != caller.subject or issued.text is None:
        raise NotFoundError("no pass {pass_id}", pass_id=pass_id)
    now = utcnow()
    if aware(issued.expires_at) <= now:
        raise GoneError("the pass has expired: ask for a new one")
    online_locker(session, locker_id)
    cmd_id = new_cmd_id()
    if not pass_refusals.claim(session, pass_id, locker_id=locker_id, cmd_id=cmd_id, now=now):
        session.rollback()
        session.refresh(issued)
        raise pass_unusable(issued)
    try:
        row = send_command(
            ctx,
            session,
            locker_id=locker_id,
            op="borrow",
            pass_text=issued.text,
            pass_id=pass_id,
            cmd_id=cmd_id,
            requested_by=caller.subject,
        )
    except CommandNotSentError:
        pass_refusals.release(session, pass_id, cmd_id)
        session.commit()
        raise
    finally:
        ctx.after_commit(Committed(passes_changed=True))
    return CommandPublic.of(row)


def pass_unusable(issued: IssuedPass) -> CloudError:
    """Why a pass may not be sent to a locker: withdrawn (410) or used already (409)."""
    if issued.withdrawn_at is not None:
        return GoneError("the pass was withdrawn: ask for a new one")
    return ConflictError("the pass was already used at {locker}: ask for a new one", locker=issued.used_locker_id)
