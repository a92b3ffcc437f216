"""The helmet registry: which helmets the town owns, added in bulk and retired.

Registration and retirement are decisions people make; where a helmet is
comes from events (:mod:`helmet_cloud.ingest.inventory`) and never touches these
fields. A retired helmet that sits in a slot raises the ``helmet_retired``
alert until a technician takes it out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from helmet_cloud.domain import alert_texts as texts
from helmet_cloud.domain.alert_rules import AlertKind
from helmet_cloud.domain.alert_texts import AlertText
from helmet_cloud.domain.states import AlertSeverity, HelmetStatus
from helmet_cloud.errors import ConflictError, InvalidError, NotFoundError
from helmet_cloud.ingest.derived import chunks
from helmet_cloud.models import Helmet
from helmet_cloud.services.alerts import Changes, Subject, prefetch, settle
from helmet_cloud.timeutil import utcnow
from helmet_protocol.stickers import HELMET_ID_RE

MAX_BATCH = 1000
PREFIX_RE = re.compile(r"^H-[0-9A-Z]{0,11}$")


def numbered_ids(session: Session, *, prefix: str, count: int, digits: int, start: int | None) -> list[str]:
    """``count`` ids ``{prefix}{n:0{digits}}``, from ``start`` or after the highest such id already known."""
    if not PREFIX_RE.fullmatch(prefix):
        raise InvalidError("prefix {prefix!r} must look like 'H-' or 'H-A' (capitals and digits)", prefix=prefix)
    if not 1 <= count <= MAX_BATCH:
        raise InvalidError("count must be 1 to {most}", most=MAX_BATCH)
    if start is None:
        pattern = re.compile(rf"^{re.escape(prefix)}(\d{{{digits}}})$")
        known = session.exec(select(Helmet.id).where(col(Helmet.id).startswith(prefix))).all()
        start = 1 + max((int(m.group(1)) for i in known if (m := pattern.fullmatch(i))), default=0)
    ids = [f"{prefix}{n:0{digits}d}" for n in range(start, start + count)]
    bad = [i for i in ids if not HELMET_ID_RE.fullmatch(i)]
    if bad:
        raise InvalidError("{helmet} is not a helmet id (H- and 1-12 capitals or digits): fewer digits?", helmet=bad[0])
    return ids


def register(session: Session, *, ids: Sequence[str], actor: str) -> list[Helmet]:
    """Register every id or none: a malformed, repeated or already registered id refuses the whole batch.

    A helmet already seen in events but never registered is registered now, keeping where it is.
    """
    if not 1 <= len(ids) <= MAX_BATCH:
        raise InvalidError("register 1 to {most} helmets at a time", most=MAX_BATCH)
    bad = [i for i in ids if not HELMET_ID_RE.fullmatch(i)]
    if bad:
        raise InvalidError(
            "not helmet ids (H- and 1-12 capitals or digits, e.g. H-00042): {ids}", ids=", ".join(bad[:5])
        )
    if len(set(ids)) != len(ids):
        raise InvalidError("the list names a helmet twice")
    known = {h.id: h for h in _helmets(session, ids)}
    taken = sorted(i for i, h in known.items() if h.registered_at is not None)
    if taken:
        more = f" and {len(taken) - 5} more" if len(taken) > 5 else ""
        raise ConflictError("already registered: {ids}", ids=", ".join(taken[:5]) + more)
    now = utcnow()
    out = []
    for helmet_id in ids:
        helmet = known.get(helmet_id) or Helmet(id=helmet_id)
        helmet.registered_at, helmet.registered_by = now, actor
        session.add(helmet)
        out.append(helmet)
    return out


@dataclass(frozen=True, slots=True)
class HelmetQuery:
    status: str | None = None
    retired: bool | None = None
    registered: bool | None = None
    prefix: str | None = None
    limit: int = 100
    offset: int = 0


def listing(session: Session, q: HelmetQuery) -> list[Helmet]:
    stmt = select(Helmet)
    if q.status is not None:
        stmt = stmt.where(Helmet.status == q.status)
    if q.retired is not None:
        stmt = stmt.where(col(Helmet.retired_at).is_not(None) if q.retired else col(Helmet.retired_at).is_(None))
    if q.registered is not None:
        reg = col(Helmet.registered_at)
        stmt = stmt.where(reg.is_not(None) if q.registered else reg.is_(None))
    if q.prefix:
        stmt = stmt.where(col(Helmet.id).startswith(q.prefix))
    return list(session.exec(stmt.order_by(col(Helmet.id)).offset(q.offset).limit(q.limit)).all())


def retire(session: Session, *, helmet_id: str, actor: str, reason: str | None) -> Helmet:
    helmet = session.get(Helmet, helmet_id)
    if helmet is None:
        raise NotFoundError("no helmet {helmet}", helmet=helmet_id)
    if helmet.retired_at is not None:
        raise ConflictError("helmet {helmet} is already retired", helmet=helmet_id)
    helmet.retired_at, helmet.retired_by, helmet.retired_reason = utcnow(), actor, reason
    session.add(helmet)
    return helmet


def check_retired(session: Session, changes: Changes, now: datetime, helmet_ids: Iterable[str]) -> None:
    """Open ``helmet_retired`` for a retired helmet that is in a slot; resolve it once the helmet is out."""
    ids = sorted(set(helmet_ids))
    helmets = _helmets(session, ids)
    prefetch(session, changes, "helmet", ids)
    for h in helmets:
        settle(
            session,
            changes,
            AlertKind.HELMET_RETIRED,
            Subject("helmet", h.id),
            active=h.retired_at is not None and h.status == HelmetStatus.IN_SLOT,
            severity=AlertSeverity.WARNING,
            message=AlertText(
                texts.HELMET_RETIRED, {"helmet": h.id, "locker": h.locker_id or "", "slot": h.slot or ""}
            ),
            now=now,
        )


def _helmets(session: Session, ids: Sequence[str]) -> list[Helmet]:
    return [h for part in chunks(list(ids)) for h in session.exec(select(Helmet).where(col(Helmet.id).in_(part)))]
