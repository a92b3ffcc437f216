"""A pass's use and withdrawal in the database, and the refusals every locker's config carries.

The rules are :mod:`helmet_cloud.domain.pass_refusals`. What writes here: ingest (a locker's event
saying it honoured a pass, :func:`mark_used`; a refused ``borrow`` command, :func:`release`), "open
now" (:func:`claim`) and withdrawing (:mod:`helmet_cloud.services.passes`). What reads:
:func:`current_refusals`, for the configs :mod:`helmet_cloud.services.config_publisher` publishes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, or_, select

from helmet_cloud.domain.pass_refusals import USE_KINDS, Refusal, Refused, refused_at
from helmet_cloud.ingest.records import StoredEvent
from helmet_cloud.models import IssuedPass
from helmet_cloud.timeutil import aware
from helmet_protocol.passes import DEFAULT_SKEW

_table = IssuedPass.metadata.tables["issuedpass"]
_c = _table.c


def current_refusals(session: Session, now: datetime) -> list[Refusal]:
    """Every pass used or withdrawn that a locker could still accept (until expiry plus the clock skew)."""
    rows = session.exec(
        select(IssuedPass.id, IssuedPass.expires_at, IssuedPass.withdrawn_at, IssuedPass.used_locker_id).where(
            col(IssuedPass.expires_at) > now - DEFAULT_SKEW,
            or_(col(IssuedPass.used_at).is_not(None), col(IssuedPass.withdrawn_at).is_not(None)),
        )
    ).all()
    return [
        Refusal(pass_id=pid, until=aware(expires) + DEFAULT_SKEW, withdrawn=withdrawn is not None, used_at=used_at)
        for pid, expires, withdrawn, used_at in rows
    ]


def refused_for(session: Session, locker_id: str, now: datetime) -> Refused:
    return refused_at(locker_id, current_refusals(session, now), now=now)


def uses_in(events: Iterable[StoredEvent]) -> dict[str, StoredEvent]:
    """The first event (by the locker's corrected time) honouring each pass, among ``events``."""
    first: dict[str, StoredEvent] = {}
    for e in events:
        if e.pass_id is None or e.kind not in USE_KINDS:
            continue
        seen = first.get(e.pass_id)
        if seen is None or (e.ts, e.locker_id, e.seq) < (seen.ts, seen.locker_id, seen.seq):
            first[e.pass_id] = e
    return first


def mark_used(session: Session, events: Sequence[StoredEvent]) -> bool:
    """Record the passes these newly stored events say were honoured; True if any is a pass the cloud issued.

    An event is a fact: it confirms a claim by "open now" (or, from another locker, replaces it), so a
    later refusal of that command no longer releases the pass. The first use the cloud heard of is kept.
    """
    uses = uses_in(events)
    if not uses:
        return False
    claimed = _c.used_cmd_id.is_not(None)
    ts = sa.bindparam("ts", type_=_c.used_at.type)
    lk = sa.bindparam("lk", type_=_c.used_locker_id.type)
    stmt = (
        sa.update(_table)
        .where(_c.id == sa.bindparam("pid"))
        .values(
            used_at=sa.case((claimed, ts), else_=sa.func.coalesce(_c.used_at, ts)),
            used_locker_id=sa.case((claimed, lk), else_=sa.func.coalesce(_c.used_locker_id, lk)),
            used_cmd_id=None,
        )
    )
    params = [{"pid": pid, "ts": e.ts, "lk": e.locker_id} for pid, e in sorted(uses.items())]
    result = session.connection().execute(stmt, params)
    return bool(result.rowcount)


def claim(session: Session, pass_id: str, *, locker_id: str, cmd_id: str, now: datetime) -> bool:
    """Take an unused, not withdrawn pass for "open now" at ``locker_id``: False if it is no longer free.

    Part of the caller's transaction; the UPDATE's row lock (PostgreSQL) or write lock (SQLite) makes two
    claims at once take turns, so only one of them finds the pass free.
    """
    result = session.connection().execute(
        sa.update(_table)
        .where(_c.id == pass_id, _c.used_at.is_(None), _c.withdrawn_at.is_(None))
        .values(used_at=now, used_locker_id=locker_id, used_cmd_id=cmd_id)
    )
    return result.rowcount == 1


def release(session: Session, pass_id: str, cmd_id: str) -> bool:
    """Free a pass claimed by the ``borrow`` command ``cmd_id`` that the locker did not carry out.

    Only while no event has said the pass was honoured (that clears the claim): a fact is never undone.
    """
    result = session.connection().execute(
        sa.update(_table)
        .where(_c.id == pass_id, _c.used_cmd_id == cmd_id)
        .values(used_at=None, used_locker_id=None, used_cmd_id=None)
    )
    return result.rowcount == 1
