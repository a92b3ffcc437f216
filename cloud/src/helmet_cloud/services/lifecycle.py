"""The loan lifecycle: an open loan grows overdue, then missing, then lost; a lost helmet can be found.

The marks (``overdue_at``, ``missing_at``, ``lost_at``) are set on open loans
only, to the moment each age threshold was passed, and stay after the loan
closes, so the history shows what staff were told. Ingest re-derives loans
from events (``inventory``) without touching the marks; a lost loan that the
events close (the helmet was returned or stocked anywhere) is "found": it gets
``found_at`` once, and an informational alert opens and resolves.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import and_, or_
from sqlmodel import Session, col, select

from helmet_cloud.domain import alert_texts as texts
from helmet_cloud.domain.alert_rules import AlertKind, LoanAges
from helmet_cloud.domain.alert_texts import AlertText
from helmet_cloud.domain.states import AlertSeverity, LoanStatus
from helmet_cloud.ingest.derived import chunks
from helmet_cloud.models import Alert, Loan
from helmet_cloud.services.alerts import Changes, Subject, prefetch, record_event, settle, station_places
from helmet_cloud.settings import CloudSettings
from helmet_cloud.timeutil import aware

HELMET_ALERTS = (AlertKind.HELMET_OVERDUE.value, AlertKind.HELMET_LOST.value)


def loan_ages(settings: CloudSettings) -> LoanAges:
    return LoanAges(
        overdue=timedelta(hours=settings.loan_overdue_hours),
        missing=timedelta(days=settings.loan_missing_days),
        lost=timedelta(days=settings.loan_lost_days),
    )


def helmets_to_check(session: Session, now: datetime, ages: LoanAges) -> list[str]:
    """Helmets whose loans may have passed a threshold, been found, or whose alerts may be stale."""
    aged = session.exec(
        select(Loan.helmet_id).where(
            Loan.status == LoanStatus.OPEN,
            col(Loan.borrowed_at) <= now - ages.overdue,
            col(Loan.lost_at).is_(None),
        )
    ).all()
    unfound = session.exec(
        select(Loan.helmet_id).where(
            Loan.status != LoanStatus.OPEN, col(Loan.lost_at).is_not(None), col(Loan.found_at).is_(None)
        )
    ).all()
    alerted = session.exec(
        select(Alert.subject_id).where(
            Alert.subject_type == "helmet", col(Alert.kind).in_(HELMET_ALERTS), col(Alert.resolved_at).is_(None)
        )
    ).all()
    return sorted({*aged, *unfound, *alerted})


def check_helmets(
    session: Session, changes: Changes, now: datetime, settings: CloudSettings, helmet_ids: Iterable[str] | None
) -> None:
    """Mark the helmets' open loans by age, settle their overdue and lost alerts, and note finds."""
    ages = loan_ages(settings)
    ids = helmets_to_check(session, now, ages) if helmet_ids is None else sorted(set(helmet_ids))
    by_helmet: dict[str, list[Loan]] = defaultdict(list)
    for part in chunks(ids):
        # Only the loans these rules read: open ones, and lost ones not yet found. Locked, so two workers
        # cannot both announce the same find.
        q = select(Loan).where(
            col(Loan.helmet_id).in_(part),
            or_(col(Loan.status) == "open", and_(col(Loan.lost_at).is_not(None), col(Loan.found_at).is_(None))),
        )
        for loan in session.exec(q.order_by(col(Loan.helmet_id), col(Loan.borrowed_at)).with_for_update()).all():
            by_helmet[loan.helmet_id].append(loan)
    prefetch(session, changes, "helmet", ids)
    lockers = {x for loans in by_helmet.values() for ln in loans for x in (ln.borrow_locker_id, ln.return_locker_id)}
    names = station_places(session, [x for x in lockers if x])
    for helmet_id in ids:
        loans = by_helmet[helmet_id]
        current = next((ln for ln in reversed(loans) if ln.status == LoanStatus.OPEN), None)
        for loan in loans:
            if loan.status != LoanStatus.OPEN and loan.lost_at is not None and loan.found_at is None:
                loan.found_at = now
                session.add(loan)
                found = {
                    "helmet": helmet_id,
                    "lost_at": aware(loan.lost_at).isoformat(),
                    "returned_at": aware(loan.returned_at or now).isoformat(),
                }
                if loan.return_locker_id:
                    station_id, name, _ = names.get(loan.return_locker_id, (loan.return_locker_id, "", {}))
                    where = {"station": name or station_id, "station_id": station_id}
                    text = AlertText(texts.HELMET_FOUND, {**found, **where})
                else:
                    text = AlertText(texts.HELMET_FOUND_SOMEWHERE, found)
                record_event(
                    session, changes, AlertKind.HELMET_FOUND, Subject("helmet", helmet_id), message=text, now=now
                )
        if current is not None:
            _mark(current, ages, now)
            session.add(current)
        _settle(session, changes, helmet_id, current, now, names)


def _mark(loan: Loan, ages: LoanAges, now: datetime) -> None:
    overdue, missing, lost = ages.marks(aware(loan.borrowed_at), now)
    loan.overdue_at = loan.overdue_at or overdue
    loan.missing_at = loan.missing_at or missing
    loan.lost_at = loan.lost_at or lost


def _settle(
    session: Session,
    changes: Changes,
    helmet_id: str,
    loan: Loan | None,
    now: datetime,
    names: dict[str, tuple[str, str, dict[str, str]]],
) -> None:
    subject = Subject("helmet", helmet_id)
    overdue = loan is not None and loan.overdue_at is not None and loan.lost_at is None
    lost = loan is not None and loan.lost_at is not None
    who: dict[str, str] = {"helmet": helmet_id}
    if loan is not None:
        station_id, name, _ = names.get(loan.borrow_locker_id, (loan.borrow_locker_id, "", {}))
        who |= {
            "resident": loan.resident_id or texts.UNKNOWN_RESIDENT,
            "station": name or station_id,
            "station_id": station_id,
            "borrowed_at": aware(loan.borrowed_at).isoformat(),
        }
    missing = loan is not None and loan.missing_at is not None
    settle(
        session,
        changes,
        AlertKind.HELMET_OVERDUE,
        subject,
        active=overdue,
        severity=AlertSeverity.CRITICAL if missing else AlertSeverity.WARNING,
        message=AlertText(texts.HELMET_MISSING if missing else texts.HELMET_OVERDUE, who),
        now=now,
    )
    settle(
        session,
        changes,
        AlertKind.HELMET_LOST,
        subject,
        active=lost,
        severity=AlertSeverity.CRITICAL,
        message=AlertText(texts.HELMET_LOST, who),
        now=now,
    )
