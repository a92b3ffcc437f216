"""Sending commands to lockers; their results arrive on cmd/ack through ingest."""

from __future__ import annotations

import uuid

from sqlmodel import Session

from helmet_cloud.context import AppContext
from helmet_cloud.models import LockerCommand
from helmet_cloud.timeutil import utcnow
from helmet_protocol import topics
from helmet_protocol.messages import CmdOp, Command
from helmet_protocol.topics import Channel


class CommandNotSentError(RuntimeError):
    """The broker connection is down; nothing was sent."""


def send_command(
    ctx: AppContext,
    session: Session,
    *,
    locker_id: str,
    op: CmdOp,
    requested_by: str,
    slot: int | None = None,
    pass_text: str | None = None,
) -> LockerCommand:
    """Record the command, then publish it; the locker executes it at most once (by cmd_id)."""
    now = utcnow()
    cmd = Command(cmd_id=f"c-{uuid.uuid4().hex}", op=op, slot=slot, pass_text=pass_text, ts=now)
    row = LockerCommand(
        id=cmd.cmd_id, locker_id=locker_id, op=op, slot=slot, requested_by=requested_by, requested_at=now
    )
    session.add(row)
    session.commit()
    session.refresh(row)
    if not ctx.mqtt.publish(topics.topic(locker_id, Channel.CMD), cmd.to_json()):
        row.status, row.error = "failed", "not sent: the cloud has no broker connection"
        session.add(row)
        session.commit()
        raise CommandNotSentError(row.error)
    return row
