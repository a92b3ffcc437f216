"""What a Chinese reader saw in English (issue 17, finding 6 and the UTC clock of finding 7), over HTTP.

Station names, the programme's name, the sign-in text and the API's refusals shown on a page were English
whatever the page's language, and every time was UTC. A real app on a real database and broker.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from fastapi.testclient import TestClient
from sqlmodel import Session
from support.cloud_events import Recorder, event, inbound, register_town, status
from support.cloud_users import user_headers
from web.conftest import web_login

from helmet_cloud.adapters.database import make_engine
from helmet_cloud.ingest.ingestor import Ingestor
from helmet_cloud.models import Station
from helmet_cloud.settings import CloudSettings

TOWN = {"LK-0001": ("ST-A", 6)}


def _texts(settings: CloudSettings) -> list[dict[str, str]]:
    path = Path(settings.sms_backend.removeprefix("file:"))
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_a_station_has_a_name_in_each_language_and_bad_names_change_nothing(
    api: TestClient, settings: CloudSettings
) -> None:
    admin = user_headers(api, settings, role="admin")
    register_town(api, admin, TOWN)
    assert api.patch("/api/stations/ST-A", headers=admin, json={"names": {"zh": "市政厅"}}).status_code == 200
    for bad in ({"fr": "Hôtel de ville"}, {"en": "Town hall"}, {"zh": ""}, {"zh": "长" * 121}):
        resp = api.patch("/api/stations/ST-A", headers=admin, json={"names": bad})
        assert resp.status_code == 422, bad
    engine = make_engine(settings.database_url)
    with Session(engine) as s:
        station = s.get(Station, "ST-A")
        assert station is not None and station.names == {"zh": "市政厅"}
    engine.dispose()

    zh = api.get("/s/ST-A?lang=zh").text
    en = api.get("/s/ST-A?lang=en").text
    assert "<h1>市政厅</h1>" in zh and "共享头盔站" in zh  # the station and the programme in Chinese
    assert "<h1>Station A</h1>" in en and "Helmet station" in en
    gbfs = api.get("/gbfs/station_information.json").json()["data"]["stations"][0]["name"]
    assert {"text": "市政厅", "language": "zh-Hans"} in gbfs and {"text": "Station A", "language": "en"} in gbfs


def test_the_sign_in_text_is_in_the_language_of_the_page_that_asked_for_it(
    api: TestClient, settings: CloudSettings
) -> None:
    register_town(api, user_headers(api, settings, role="admin"), TOWN)
    api.get("/s/ST-A?lang=zh")  # the language cookie, as a phone that switched keeps it
    resp = api.post("/s/ST-A/code", data={"phone": "+41 79 111 22 01"}, headers={"Origin": "https://testserver"})
    assert resp.status_code in (200, 303), resp.text
    api_text = api.post("/api/auth/code", json={"phone": "+41791112202"}, headers={"Accept-Language": "en-GB"})
    assert api_text.status_code == 202
    texts = {t["phone"][-2:]: t["text"] for t in _texts(settings)}
    assert texts["01"].startswith("【共享头盔站】您的登录验证码是 ") and "分钟内有效" in texts["01"]
    assert texts["02"].startswith("Helmet station: your sign-in code is ")


def test_times_are_shown_on_the_towns_clock_not_utc(api: TestClient, settings: CloudSettings) -> None:
    admin = user_headers(api, settings, role="admin")
    register_town(api, admin, TOWN)
    assert api.patch("/api/towns/default", headers=admin, json={"timezone": "Mars/Olympus"}).status_code == 422
    assert api.patch("/api/towns/default", headers=admin, json={"timezone": "Asia/Shanghai"}).status_code == 200
    engine = make_engine(settings.database_url)
    ingest = Ingestor(engine, Recorder())
    borrowed = datetime(2026, 12, 2, 3, 27, tzinfo=UTC)  # 11:27 in Shanghai
    ingest.handle(inbound([status("LK-0001", borrowed, online=True)]))
    ingest.handle(inbound([event("LK-0001", 1, borrowed, "helmet.stocked", slot=1, helmet_id="H-0001")]))
    ingest.handle(inbound([event("LK-0001", 2, borrowed, "helmet.borrowed", slot=1, helmet_id="H-0001")]))
    engine.dispose()
    web_login(api, settings, "staff")
    loans = api.get("/staff/loans?status=all").text
    assert "2026-12-02 11:27" in loans and "03:27" not in loans


def test_counts_read_as_plurals_do_in_each_language(api: TestClient, settings: CloudSettings) -> None:
    """Finding 7: "1 free slots". One empty slot and one helmet read in the singular, two in the plural."""
    register_town(api, user_headers(api, settings, role="admin"), {"LK-0001": ("ST-A", 2), "LK-0002": ("ST-B", 1)})
    engine = make_engine(settings.database_url)
    ingest = Ingestor(engine, Recorder())
    now = datetime.now(UTC)
    ingest.handle(inbound([status("LK-0001", now, online=True)]))
    ingest.handle(inbound([event("LK-0001", 1, now, "helmet.stocked", slot=1, helmet_id="H-0001")]))
    engine.dispose()
    one_each = api.get("/s/ST-A?lang=en").text
    assert "1 helmet here" in one_each and "1 free slot<" in one_each and "1 free slots" not in one_each
    empty = api.get("/s/ST-B?lang=en").text
    assert "0 helmets here" in empty and "1 free slot<" in empty
    assert "1 个空闲格口" in api.get("/s/ST-B?lang=zh").text
