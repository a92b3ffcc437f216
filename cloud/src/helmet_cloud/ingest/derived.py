"""Plumbing for the derived tables: events as the folds read them, and rows written in bulk.

The folds in :mod:`helmet_cloud.ingest.inventory` and :mod:`helmet_cloud.ingest.slot_state`
work on plain rows (:class:`DerivedRow`) rather than ORM objects, and write
what changed with one ``executemany`` per table and statement: ingest derives
hundreds of rows a batch, and ORM objects cost per attribute and per row.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, NamedTuple, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy import ColumnElement
from sqlmodel import Session, SQLModel, col, select

from helmet_cloud.ingest.records import StoredEvent
from helmet_cloud.models import RawEvent
from helmet_cloud.timeutil import aware

CHUNK = 500  # values per IN (...), well under every driver's limit on bound parameters
T = TypeVar("T")
HelmetKey = tuple[datetime, str, int]


class Fact(NamedTuple):
    """The fields of a stored event that the folds read (a projection of :class:`StoredEvent`, named alike)."""

    event_id: str
    locker_id: str
    seq: int
    ts: datetime
    kind: str
    slot: int | None
    helmet_id: str | None
    resident_id: str | None
    pass_id: str | None

    @classmethod
    def of(cls, ev: StoredEvent) -> Fact:
        """The fields of a stored event the folds read."""
        return cls(*(getattr(ev, name) for name in cls._fields))

    def helmet_key(self) -> HelmetKey:
        """Where the event sorts among a helmet's events."""
        return (aware(self.ts), self.locker_id, self.seq)


FACT_COLUMNS = tuple(col(getattr(RawEvent, name)) for name in Fact._fields)


def chunks(values: Sequence[T]) -> Iterator[Sequence[T]]:
    for i in range(0, len(values), CHUNK):
        yield values[i : i + CHUNK]


def read_facts(session: Session, where: Iterable[ColumnElement[bool]]) -> list[Fact]:
    return [Fact(*row) for row in session.exec(select(*FACT_COLUMNS).where(*where)).all()]


class DerivedRow(Protocol):
    """A row of a derived table, with the values it was read with (``stored``; None: not in the database)."""

    @property
    def stored(self) -> tuple[Any, ...] | None: ...

    def values(self) -> tuple[Any, ...]: ...


def save(
    session: Session, model: type[SQLModel], names: Sequence[str], keys: Sequence[str], rows: Iterable[DerivedRow]
) -> None:
    """Insert the new rows and update the changed ones (every column in ``names``; ``keys`` pick the row)."""
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    for row in rows:
        values = row.values()
        if row.stored is None:
            inserts.append(dict(zip(names, values, strict=True)))
        elif values != row.stored:
            params = dict(zip(names, values, strict=True))
            params.update({f"key_{k}": params.pop(k) for k in keys})
            updates.append(params)
    conn = session.connection()
    if inserts:
        conn.execute(sa.insert(model), inserts)
    if updates:
        where = [getattr(model, k) == sa.bindparam(f"key_{k}") for k in keys]
        conn.execute(sa.update(model).where(*where), updates)
