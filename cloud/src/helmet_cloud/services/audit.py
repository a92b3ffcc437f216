"""The audit log: one row per staff, technician or admin action, in the same transaction as the action.

Callers add the entry to the session that makes the change, so an action that rolls back leaves no entry and
a committed action always has one. Never put a secret (password, one-time code, token) into ``detail``.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Protocol

from sqlmodel import Session

from helmet_cloud.models import AuditEntry
from helmet_cloud.timeutil import utcnow

log = logging.getLogger(__name__)


class Actor(Protocol):
    """A signed-in caller (``helmet_cloud.http.deps.Caller``)."""

    @property
    def subject(self) -> str: ...

    @property
    def role(self) -> str: ...


def record(
    session: Session,
    *,
    actor: str | Actor,
    action: str,
    subject_type: str,
    subject_id: str,
    detail: dict[str, Any] | None = None,
    role: str | None = None,
) -> AuditEntry:
    """Add an entry for ``action`` (e.g. ``locker.register``) to ``session``; it commits with the action.

    ``actor`` is a signed-in caller (its username and role are recorded) or a name such as ``cli:root``.
    """
    name = actor if isinstance(actor, str) else actor.subject
    role = role if isinstance(actor, str) else actor.role
    entry = AuditEntry(
        at=utcnow(),
        actor=name,
        role=role,
        action=action,
        subject_type=subject_type,
        subject_id=subject_id,
        detail=json.dumps(detail, sort_keys=True, default=str) if detail else None,
    )
    session.add(entry)
    log.info("audit: %s %s %s/%s", name, action, subject_type, subject_id)
    return entry
