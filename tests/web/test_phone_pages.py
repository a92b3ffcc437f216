"""Phone numbers on the pages (issue 17, finding 2, and residents found by phone, finding 11).

The resident's sign-in reads the number in the station's town's region and refuses, in words with an example,
one no code can reach; staff find a resident's loans by the number in any form. A real app, database and broker;
the browser test of the same is test_browser_phones.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from support.cloud_events import Recorder, at, event, inbound, register_town, status
from support.cloud_users import user_headers
from web.conftest import web_login

from helmet_cloud.adapters.database import make_engine
from helmet_cloud.http.web.session import RESIDENT_COOKIE
from helmet_cloud.ingest.ingestor import Ingestor
from helmet_cloud.models import OneTimeCode, Resident, Station
from helmet_cloud.settings import CloudSettings


@pytest.fixture
def town(api: TestClient, settings: CloudSettings) -> Iterator[Engine]:
    admin = user_headers(api, settings, role="admin")
    register_town(api, admin, {"LK-0001": ("ST-A", 4), "LK-0002": ("ST-B", 4)})
    body = {"id": "berlin", "name": "Berlin", "timezone": "Europe/Berlin", "phone_region": "DE"}
    assert api.post("/api/towns", headers=admin, json=body).status_code == 201
    engine = make_engine(settings.database_url)
    with Session(engine) as s:
        berlin = s.get(Station, "ST-B")
        assert berlin is not None
        berlin.town_id = "berlin"
        s.add(berlin)
        s.commit()
    yield engine
    engine.dispose()


def texts(settings: CloudSettings) -> list[dict[str, str]]:
    path = Path(settings.sms_backend.removeprefix("file:"))
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def page_sign_in(api: TestClient, settings: CloudSettings, station: str, typed: str) -> str:
    asked = api.post(f"/s/{station}/code", data={"phone": typed})
    assert asked.status_code == 200, asked.text
    number = re.search(r'name="phone" value="([^"]+)"', asked.text)
    assert number is not None
    code = re.search(r"\d{6}", texts(settings)[-1]["text"])
    assert code is not None
    signed = api.post(f"/s/{station}/verify", data={"phone": number.group(1), "code": code.group(0)})
    assert signed.status_code == 303 and RESIDENT_COOKIE in api.cookies
    api.cookies.delete(RESIDENT_COOKIE)
    return number.group(1)


def test_the_sign_in_page_reads_the_number_in_the_stations_town(
    api: TestClient, settings: CloudSettings, town: Engine
) -> None:
    assert page_sign_in(api, settings, "ST-A", "078 000 00 05") == "+41780000005"
    assert page_sign_in(api, settings, "ST-A", "+41 78 000 00 05") == "+41780000005"
    assert page_sign_in(api, settings, "ST-B", "0151 23456789") == "+4915123456789"  # a station in Berlin
    assert [m["phone"] for m in texts(settings)] == ["+41780000005", "+41780000005", "+4915123456789"]
    with Session(town) as s:
        assert sorted(r.phone for r in s.exec(select(Resident)).all()) == ["+41780000005", "+4915123456789"]


def test_a_number_no_code_can_reach_is_refused_in_words_with_an_example(
    api: TestClient, settings: CloudSettings, town: Engine
) -> None:
    refused = api.post("/s/ST-A/code", data={"phone": "044 123 45 67"})
    assert refused.status_code == 422
    assert "This number cannot receive text messages: enter a mobile number, e.g. +41 78 123 45 67" in refused.text
    assert 'aria-invalid="true"' in refused.text
    in_berlin = api.post("/s/ST-B/code", data={"phone": "call me"}, headers={"Accept-Language": "zh"})
    assert in_berlin.status_code == 422 and "号码无效" in in_berlin.text and "例如 +49 1512 3456789" in in_berlin.text
    assert texts(settings) == []
    with Session(town) as s:
        assert s.exec(select(OneTimeCode)).all() == []


def test_staff_find_a_residents_loans_by_the_number_in_any_form(
    api: TestClient, settings: CloudSettings, town: Engine
) -> None:
    number = page_sign_in(api, settings, "ST-A", "0780000005")
    with Session(town) as s:
        resident = s.exec(select(Resident).where(Resident.phone == number)).one()
    Ingestor(town, Recorder()).handle(
        inbound(
            [
                status("LK-0001", at(0), online=True),
                event("LK-0001", 1, at(1), "helmet.stocked", slot=1, helmet_id="H-1"),
                event("LK-0001", 2, at(2), "helmet.stocked", slot=2, helmet_id="H-2"),
                event("LK-0001", 3, at(3), "helmet.borrowed", slot=1, helmet_id="H-1", resident_id=resident.id),
                event("LK-0001", 4, at(4), "helmet.borrowed", slot=2, helmet_id="H-2", resident_id="R-SOMEONE"),
            ]
        )
    )
    web_login(api, settings, "staff")
    for typed in ("078 000 00 05", "+41 78 000 00 05", "0041780000005", resident.id, resident.id.lower()):
        found = api.get("/staff/loans", params={"status": "all", "resident": typed})
        assert found.status_code == 200, typed
        assert "H-1" in found.text and "H-2" not in found.text, typed
        assert f"Resident {resident.id}, phone +41780000005" in found.text, typed
    nobody = api.get("/staff/loans", params={"status": "all", "resident": "079 999 99 99"})
    assert "No resident has this id or number." in nobody.text and "H-1" not in nobody.text
