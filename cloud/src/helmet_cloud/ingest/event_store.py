"""Raw events in bulk: the idempotent insert that decides which events are new, and the acks it earns."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import and_, or_
from sqlalchemy.dialects import sqlite
from sqlmodel import Session, col, select

from helmet_cloud.ingest.records import COLUMNS, StoredEvent
from helmet_cloud.models import Locker, RawEvent

# Built from the one column list: a column added to StoredEvent reaches both inserts.
PG_INSERT = (
    f"INSERT INTO rawevent ({', '.join(COLUMNS)}) VALUES ({', '.join(['%s'] * len(COLUMNS))}) "  # noqa: S608
    "ON CONFLICT DO NOTHING RETURNING event_id"
)


def insert_new(session: Session, rows: Sequence[StoredEvent]) -> set[str]:
    """Insert events, skipping any whose event_id or (locker_id, seq) is stored; return the ids stored now.

    The insert itself decides, so two workers given the same event never both apply it.
    """
    if not rows:
        return set()
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        # psycopg pipelines one short prepared statement per row, about twice as fast as SQLAlchemy's
        # multi-row VALUES, whose long text psycopg parses again for every batch.
        driver = conn.connection.driver_connection
        if driver is None:
            raise RuntimeError("the database connection is closed")
        stored: set[str] = set()
        with driver.cursor() as cur:
            cur.executemany(PG_INSERT, rows, returning=True)
            while True:
                stored.update(r[0] for r in cur.fetchall())
                if not cur.nextset():
                    break
        return stored
    # A parameter list: SQLAlchemy sends multi-row INSERTs compiled once ("insertmanyvalues").
    stmt = sqlite.insert(RawEvent).on_conflict_do_nothing().returning(col(RawEvent.event_id))
    return set(conn.execute(stmt, [r._asdict() for r in rows]).scalars())


def advance_acks(session: Session, lockers: Sequence[Locker]) -> dict[str, int]:
    """Move each locker's ack to the highest contiguous seq stored; return the first seq past a gap, by locker.

    The lockers' rows are locked first and their acks read afresh: another worker that is storing the same
    lockers' events is waited for, its events and ack are then seen, and an ack never moves back.
    """
    if not lockers:
        return {}
    by_id = {lk.id: lk for lk in lockers}
    fresh = session.exec(
        select(Locker.id, Locker.acked_seq)
        .where(col(Locker.id).in_(sorted(by_id)))
        .order_by(col(Locker.id))
        .with_for_update()
    ).all()
    for locker_id, acked_seq in fresh:
        by_id[locker_id].acked_seq = acked_seq
    above: dict[str, list[int]] = {lk.id: [] for lk in lockers}
    rows = session.exec(
        select(RawEvent.locker_id, RawEvent.seq).where(
            or_(*(and_(col(RawEvent.locker_id) == lk.id, col(RawEvent.seq) > lk.acked_seq) for lk in lockers))
        )
    ).all()
    for locker_id, seq in rows:
        above[locker_id].append(seq)
    gaps: dict[str, int] = {}
    for lk in lockers:
        for seq in sorted(above[lk.id]):
            if seq != lk.acked_seq + 1:
                gaps[lk.id] = seq
                break
            lk.acked_seq = seq
    return gaps
