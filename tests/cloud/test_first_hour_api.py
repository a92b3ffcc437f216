"""What a new user meets first on the cloud's HTTP side (issue: the first hour).

A NUL in any text parameter is a 422 before anything starts (the CSV exports once answered 200 and cut the file
off on PostgreSQL); an export that fails mid-stream is a broken transfer, never a short file that looks whole;
``/health`` says how the broker connection is; ``/docs`` needs no internet; ``/gbfs/`` leads to the feed.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, select
from support.cloud_users import user_headers
from support.processes import CloudProcess
from support.waiting import eventually

from helmet_cloud.adapters.database import make_engine
from helmet_cloud.app import create_app
from helmet_cloud.http.csv_export import csv_response
from helmet_cloud.http.web.render import content_policy
from helmet_cloud.models import RawEvent
from helmet_cloud.settings import CloudSettings
from helmet_sim.broker import Broker, free_port


def string_parameters(spec: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """Every string path or query parameter of the spec's GET operations, as (method, path, name, where)."""
    found = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            for param in op.get("parameters", []):
                schema = param.get("schema", {})
                types = [schema.get("type"), *(alt.get("type") for alt in schema.get("anyOf", []))]
                if "string" in types and schema.get("format") != "date-time":
                    found.append((method.upper(), path, param["name"], param["in"]))
    return found


def test_a_nul_in_any_text_parameter_is_a_422_on_every_database(api: TestClient, settings: CloudSettings) -> None:
    """The fuzzer's find, made an explicit example: ``GET /api/export/events.csv?kind=%00`` gave 200 and a cut-off
    file on PostgreSQL. Now every string parameter in the spec is tried with a NUL."""
    staff = user_headers(api, settings, role="admin")
    params = string_parameters(api.get("/openapi.json").json())
    assert ("GET", "/api/export/events.csv", "kind", "query") in params
    assert len(params) >= 15
    wrong = []
    for method, path, name, where in params:
        if where == "path":
            url = path.replace("{" + name + "}", "ST%00A")
            query = ""
        else:
            url, query = path, f"?{name}=a%00b"
        resp = api.request(method, url.replace("{", "").replace("}", "") + query, headers=staff, json={})
        detail = (
            resp.json().get("detail") if resp.headers.get("content-type", "").startswith("application/json") else None
        )
        if resp.status_code != 422 or not isinstance(detail, str) or "NUL" not in detail:
            wrong.append(f"{method} {path} {name}: {resp.status_code} {resp.text[:120]}")
    assert wrong == []


def test_an_export_with_a_filter_the_database_refuses_never_starts_a_file(
    api: TestClient, settings: CloudSettings, database_url: str
) -> None:
    staff = user_headers(api, settings, role="admin")
    for url in ("/api/export/events.csv?kind=x%00", "/api/export/loans.csv?helmet_id=H%00"):
        resp = api.get(url, headers=staff)
        assert resp.status_code == 422, (url, resp.text)
        assert "text/csv" not in resp.headers.get("content-type", "")
    # A well-formed export still streams, header first.
    ok = api.get("/api/export/events.csv?kind=helmet.borrowed", headers=staff)
    assert ok.status_code == 200 and ok.text.startswith("event_id,locker_id,seq")


def _insert_events(engine: Engine, n: int) -> None:
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    rows = [
        RawEvent(
            event_id=f"E-{i:07d}",
            locker_id="LK-0001",
            seq=i + 1,
            ts=t0 + timedelta(seconds=i),
            kind="helmet.returned",
            slot=1,
            helmet_id=f"H-{i % 500:05d}",
            payload='{"pad": "' + "x" * 400 + '"}',
            received_at=t0,
        )
        for i in range(n)
    ]
    with Session(engine) as s:
        s.add_all(rows)
        s.commit()


@pytest.mark.postgres
def test_an_export_cut_off_mid_stream_is_a_broken_transfer_not_a_short_file(
    tmp_path: Path, database_url: str, mosquitto: Broker, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """The database goes away while the CSV streams (its connection killed, as a PostgreSQL restart does)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("kills the export's PostgreSQL connection")
    cloud = CloudProcess(tmp_path / "cloud", mosquitto.port, database_url)
    try:
        cloud.add_user("ana", "admin", "correct horse battery")
        staff = cloud.start().login("ana", "correct horse battery")
        token = staff.token
        staff.close()
        _insert_events(engine, 20_000)  # about 9 MB of CSV: far more than the socket buffers hold
        db = make_url(database_url).database
        admin = psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", autocommit=True)
        headers = {"Authorization": f"Bearer {token}"}
        got = 0
        with (
            httpx.Client(base_url=cloud.url, timeout=30) as http,
            http.stream("GET", "/api/export/events.csv", headers=headers) as resp,
        ):
            assert resp.status_code == 200
            chunks = resp.iter_bytes()
            got += len(next(chunks))  # the export has started; the server now waits for us to read on
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (db,),
            )
            with pytest.raises(httpx.RemoteProtocolError):
                for chunk in chunks:
                    got += len(chunk)
        admin.close()
        assert 0 < got < 8_000_000
        log = (tmp_path / "cloud" / "cloud.log").read_text()
        assert re.search(r"export of events cut off after \d+ rows", log), log[-2000:]
    finally:
        cloud.stop()


def test_health_says_whether_the_broker_is_reachable_and_why_not(settings: CloudSettings) -> None:
    with TestClient(create_app(settings)) as client:
        up = eventually(lambda: (body := client.get("/health").json())["mqtt"]["connected"] and body)
        assert up["status"] == "ok" and up["mqtt"] == {"broker": f"127.0.0.1:{settings.mqtt_port}", "connected": True}
    closed = free_port()
    with TestClient(create_app(settings.model_copy(update={"mqtt_port": closed}))) as client:
        body = eventually(lambda: (b := client.get("/health").json())["mqtt"].get("problem") and b)
        assert body["status"] == "ok"  # alive (200): /ready is the one that says 503
        assert body["mqtt"]["connected"] is False
        assert body["mqtt"]["problem"] == "Connection refused"
        assert body["mqtt"]["broker"] == f"127.0.0.1:{closed}"
        assert "unreachable_since" in body["mqtt"]
        assert body["ingest_mqtt"]["connected"] is False
        assert client.get("/ready").status_code == 503


def test_api_docs_load_nothing_from_another_site(api: TestClient) -> None:
    page = api.get("/docs")
    assert page.status_code == 200
    assert page.headers["Content-Security-Policy"] == content_policy(None)
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(s.startswith("/static/") for s in sources), sources
    for src in sources:
        assert api.get(src).status_code == 200, src
    assert "<script>" not in page.text  # the policy allows no inline script: it lives in a file
    assert api.get("/redoc").status_code == 404  # FastAPI's ReDoc page would load from a CDN
    assert api.get("/openapi.json").status_code == 200


def test_api_docs_can_be_turned_off(settings: CloudSettings) -> None:
    with TestClient(create_app(settings.model_copy(update={"api_docs": False}))) as client:
        assert client.get("/docs").status_code == 404
        assert client.get("/openapi.json").status_code == 200


def test_gbfs_root_leads_to_the_discovery_file(api: TestClient) -> None:
    for path in ("/gbfs", "/gbfs/"):
        resp = api.get(path, follow_redirects=False)
        assert resp.status_code == 308 and resp.headers["location"].endswith("/gbfs/gbfs.json"), path
    assert api.get("/gbfs/", follow_redirects=True).json()["data"]["feeds"]


def test_an_export_reads_its_first_page_before_the_response_starts(tmp_path: Path) -> None:
    """Whatever the database refuses on the first page surfaces while a proper error status can still be sent
    (the handler raises; the app's handlers turn it into 422 or 500), instead of inside the streamed body."""
    engine = make_engine(f"sqlite:///{tmp_path}/empty.db")  # no tables: the first query fails for real
    try:

        def page(session: Session, _last: RawEvent | None) -> list[RawEvent]:
            return list(session.exec(select(RawEvent).limit(10)).all())

        with pytest.raises(OperationalError, match="no such table"):
            csv_response(engine, ("event_id",), page, "events")
    finally:
        engine.dispose()


def test_health_shows_a_broker_lost_while_running(settings: CloudSettings, mosquitto: Broker) -> None:
    with TestClient(create_app(settings)) as client:
        eventually(lambda: client.get("/health").json()["mqtt"]["connected"])
        mosquitto.stop()  # the broker goes away under a running cloud
        body = eventually(lambda: (b := client.get("/health").json())["mqtt"].get("problem") and b)
        assert body["mqtt"]["connected"] is False
        assert body["mqtt"]["problem"].startswith(("connection lost", "Connection refused")), body
        assert "unreachable_since" in body["mqtt"]
