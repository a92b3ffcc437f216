"""CSV exports for staff: the routes (the streaming itself is :mod:`helmet_cloud.http.csv_export`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from helmet_cloud.domain.states import LoanStatus
from helmet_cloud.http.api.events import EventFiltersDep
from helmet_cloud.http.csv_export import CSV, CsvResponse, events_csv, loans_csv
from helmet_cloud.http.deps import CtxDep, StaffDep

router = APIRouter(prefix="/api/export", tags=["export"])


@router.get("/events.csv", responses=CSV)
def export_events(ctx: CtxDep, _: StaffDep, filters: EventFiltersDep) -> CsvResponse:
    """Every stored event matching the filters of ``GET /api/events``, oldest first, with its raw payload."""
    return events_csv(ctx.engine, filters)


@router.get("/loans.csv", responses=CSV)
def export_loans(
    ctx: CtxDep,
    _: StaffDep,
    status_: Annotated[LoanStatus | None, Query(alias="status")] = None,
    resident_id: Annotated[str | None, Query(max_length=16)] = None,
    helmet_id: Annotated[str | None, Query(max_length=64)] = None,
    since: Annotated[datetime | None, Query(description="borrowed at or after (ISO 8601)")] = None,
    until: Annotated[datetime | None, Query(description="borrowed before (ISO 8601)")] = None,
) -> CsvResponse:
    """Loans matching the filters of ``GET /api/loans`` (plus helmet and time), oldest borrow first."""
    return loans_csv(ctx.engine, status=status_, resident_id=resident_id, helmet_id=helmet_id, since=since, until=until)
