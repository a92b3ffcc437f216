"""Staff read raw events and dead letters page by page, and export loans and events as CSV."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from support.cloud_events import T0, Recorder, event, inbound, register_town
from support.cloud_users import resident_headers, user_headers

from helmet_cloud.http import csv_export as export
from helmet_cloud.ingest.ingestor import Ingestor
from helmet_cloud.settings import CloudSettings

STAFF_ONLY = ["/api/events", "/api/dead-letters", "/api/export/loans.csv", "/api/export/events.csv"]


@pytest.fixture
def staff(api: TestClient, settings: CloudSettings) -> dict[str, str]:
    headers = user_headers(api, settings, role="staff")
    register_town(api, headers, {"LK-000A": ("ST-A", 8), "LK-000B": ("ST-B", 8)})
    return headers


@pytest.fixture
def ingest(engine: Engine) -> Ingestor:
    return Ingestor(engine, Recorder())


def store_250(ingest: Ingestor) -> list[tuple[datetime, str]]:
    """250 events over two lockers; groups of five share a timestamp, so order falls back on event_id."""
    batch = []
    for n in range(250):
        locker = "LK-000A" if n % 2 == 0 else "LK-000B"
        kind = "pass.rejected" if n % 3 else "locker.selftest"
        batch.append(event(locker, n // 2 + 1, T0 + timedelta(seconds=n // 5), kind, reason="expired", detail=f"#{n}"))
    ingest.handle(inbound(batch))
    return sorted((T0 + timedelta(seconds=n // 5), json.loads(p)["event_id"]) for n, (_t, p) in enumerate(batch))


def all_pages(api: TestClient, headers: dict[str, str], **params: Any) -> list[list[dict[str, Any]]]:
    pages, cursor = [], None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        resp = api.get("/api/events", headers=headers, params=query)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        pages.append(body["events"])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 50, "the cursor does not advance"


def test_the_cursor_pages_through_250_events_without_gaps_or_repeats(
    api: TestClient, staff: dict[str, str], ingest: Ingestor
) -> None:
    expected = store_250(ingest)
    pages = all_pages(api, staff, limit=100)
    assert [len(p) for p in pages] == [100, 100, 50]
    seen = [(datetime.fromisoformat(e["ts"]), e["event_id"]) for p in pages for e in p]
    assert seen == expected  # every event once, in (ts, event_id) order
    newest_first = [e["event_id"] for p in all_pages(api, staff, limit=7, order="desc") for e in p]
    assert newest_first == [event_id for _ts, event_id in reversed(expected)]


def test_an_event_carries_its_stored_fields_and_the_raw_payload(
    api: TestClient, staff: dict[str, str], ingest: Ingestor
) -> None:
    ingest.handle(
        inbound([event("LK-000A", 1, T0, "helmet.stocked", slot=3, helmet_id="H-7", detail="found at start-up")])
    )
    (e,) = api.get("/api/events", headers=staff).json()["events"]
    assert (e["locker_id"], e["seq"], e["kind"], e["known"], e["slot"], e["helmet_id"]) == (
        "LK-000A",
        1,
        "helmet.stocked",
        True,
        3,
        "H-7",
    )
    assert datetime.fromisoformat(e["ts"]) == T0 and datetime.fromisoformat(e["received_at"]).tzinfo is not None
    # The payload is the locker's JSON as sent, with fields the table does not keep.
    assert e["payload"]["detail"] == "found at start-up" and e["payload"]["event_id"] == e["event_id"]


def test_filters_narrow_the_events(api: TestClient, staff: dict[str, str], ingest: Ingestor) -> None:
    store_250(ingest)

    def count(**params: Any) -> int:
        return sum(len(p) for p in all_pages(api, staff, limit=1000, **params))

    assert count(locker_id="LK-000B") == 125
    assert count(kind="locker.selftest") == 84
    assert count(kind="locker.selftest", locker_id="LK-000A") == 42
    # 10 s from T0 = events 50..99; the same instant written at +02:00 means the same thing.
    cest = timezone(timedelta(hours=2))
    assert count(since=(T0 + timedelta(seconds=10)).isoformat(), until=(T0 + timedelta(seconds=20)).isoformat()) == 50
    assert count(since=(T0 + timedelta(seconds=10)).astimezone(cest).isoformat()) == 200
    assert count(until="2026-11-28T08:00:01") == 5  # no offset: UTC
    ingest.handle(inbound([event("LK-000A", 200, T0, "helmet.stocked", slot=1, helmet_id="H-1")]))
    assert count(helmet_id="H-1") == 1


@pytest.mark.parametrize(
    "params", [{"limit": 1001}, {"limit": 0}, {"cursor": "not-a-cursor"}, {"locker_id": "lk/1"}, {"since": "soon"}]
)
def test_bad_queries_get_a_422(api: TestClient, staff: dict[str, str], params: dict[str, Any]) -> None:
    resp = api.get("/api/events", headers=staff, params=params)
    assert resp.status_code == 422 and resp.json()["detail"]


def test_a_cursor_only_continues_in_its_own_order(api: TestClient, staff: dict[str, str], ingest: Ingestor) -> None:
    store_250(ingest)
    cursor = api.get("/api/events", headers=staff, params={"limit": 10}).json()["next_cursor"]
    resp = api.get("/api/events", headers=staff, params={"cursor": cursor, "order": "desc"})
    assert resp.status_code == 422


def test_dead_letters_are_paged_newest_first(api: TestClient, staff: dict[str, str], ingest: Ingestor) -> None:
    for n in range(5):
        ingest.handle(inbound([("helmet/v1/LK-000A/events", f"broken {n}".encode())]))
    first = api.get("/api/dead-letters", headers=staff, params={"limit": 3}).json()
    assert [d["payload"] for d in first["dead_letters"]] == ["broken 4", "broken 3", "broken 2"]
    assert all("not JSON" in d["reason"] and d["topic"] == "helmet/v1/LK-000A/events" for d in first["dead_letters"])
    rest = api.get("/api/dead-letters", headers=staff, params={"limit": 3, "cursor": first["next_cursor"]}).json()
    assert [d["payload"] for d in rest["dead_letters"]] == ["broken 1", "broken 0"] and rest["next_cursor"] is None


def read_csv(resp: Any, what: str) -> list[dict[str, str]]:
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "text/csv; charset=utf-8"
    disposition = resp.headers["content-disposition"]
    assert re.fullmatch(rf'attachment; filename="helmet-{what}-\d{{8}}T\d{{6}}Z\.csv"', disposition), disposition
    return list(csv.DictReader(io.StringIO(resp.text)))


def test_loans_export_has_a_header_and_one_row_per_loan(
    api: TestClient, staff: dict[str, str], ingest: Ingestor
) -> None:
    batch = [event("LK-000A", n, T0, "helmet.stocked", slot=n, helmet_id=f"H-{n}") for n in (1, 2, 3)]
    batch += [
        event("LK-000A", 3 + n, T0 + timedelta(minutes=n), "helmet.borrowed", slot=n, helmet_id=f"H-{n}",
              resident_id="R-1", pass_id="p-1")
        for n in (1, 2, 3)
    ]  # fmt: skip
    batch.append(event("LK-000B", 1, T0 + timedelta(hours=1), "helmet.returned", slot=5, helmet_id="H-2"))
    ingest.handle(inbound(batch))
    resp = api.get("/api/export/loans.csv", headers=staff)
    assert resp.text.splitlines()[0] == ",".join(export.LOAN_COLUMNS)
    rows = read_csv(resp, "loans")
    assert [(r["helmet_id"], r["resident_id"], r["status"]) for r in rows] == [
        ("H-1", "R-1", "open"),
        ("H-2", "R-1", "returned"),
        ("H-3", "R-1", "open"),
    ]
    returned = rows[1]
    assert (returned["borrow_locker_id"], returned["return_locker_id"]) == ("LK-000A", "LK-000B")
    assert datetime.fromisoformat(returned["returned_at"]) == T0 + timedelta(hours=1)
    assert rows[0]["returned_at"] == ""
    opened = read_csv(api.get("/api/export/loans.csv", headers=staff, params={"status": "open"}), "loans")
    assert [r["helmet_id"] for r in opened] == ["H-1", "H-3"]
    empty = api.get("/api/export/loans.csv", headers=staff, params={"resident_id": "R-nobody"})
    assert empty.text.splitlines() == [",".join(export.LOAN_COLUMNS)]


def test_events_export_streams_every_match_in_chunks(
    api: TestClient, staff: dict[str, str], ingest: Ingestor, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = store_250(ingest)
    monkeypatch.setattr(export, "CHUNK", 42)  # several keyset chunks, ending inside groups of equal ts
    rows = read_csv(api.get("/api/export/events.csv", headers=staff), "events")
    assert [r["event_id"] for r in rows] == [event_id for _ts, event_id in expected]
    assert rows[0]["known"] == "true" and rows[0]["payload"].startswith("{")
    selftests = read_csv(api.get("/api/export/events.csv", headers=staff, params={"kind": "locker.selftest"}), "events")
    assert len(selftests) == 84 and {r["kind"] for r in selftests} == {"locker.selftest"}


@pytest.mark.parametrize("path", STAFF_ONLY)
def test_only_staff_and_admins_may_read_events_and_exports(
    api: TestClient, settings: CloudSettings, staff: dict[str, str], path: str
) -> None:
    assert api.get(path).status_code == 401
    assert api.get(path, headers={"Authorization": "Bearer forged"}).status_code == 401
    assert api.get(path, headers=resident_headers(api, settings, "+41790000009")).status_code == 403
    assert api.get(path, headers=user_headers(api, settings, role="technician")).status_code == 403
    assert api.get(path, headers=staff).status_code == 200
    assert api.get(path, headers=user_headers(api, settings, role="admin")).status_code == 200
