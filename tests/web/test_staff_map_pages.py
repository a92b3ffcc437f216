"""The staff table, map, legend and API share one fill level (issue 17, finding 8); the map's tiles are per town.

Over HTTP on a real database and broker; locker traffic through the real ingest code, which also settles the
stock alerts the levels must agree with. The browser tests are in test_browser_staff_map.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from support.cloud_events import Recorder, at, event, inbound, register_town, status
from support.cloud_users import user_headers
from web.conftest import web_login

from helmet_cloud.adapters.database import make_engine
from helmet_cloud.ingest.ingestor import Ingestor
from helmet_cloud.models import DEFAULT_TOWN, Alert, Town
from helmet_cloud.services.alerter import Alerter
from helmet_cloud.settings import CloudSettings

# Six slots each: 1 helmet (17%), 2 (33%), 6 (100%).
TOWN = {"LK-0001": ("ST-A", 6), "LK-0002": ("ST-B", 6), "LK-0003": ("ST-C", 6)}
HELMETS = {"LK-0001": 1, "LK-0002": 2, "LK-0003": 6}
WANT = {"ST-A": "low", "ST-B": "normal", "ST-C": "full"}


@pytest.fixture
def town(api: TestClient, settings: CloudSettings) -> Iterator[Engine]:
    admin = user_headers(api, settings, role="admin")
    register_town(api, admin, TOWN)
    for station in ("ST-A", "ST-B", "ST-C"):  # fewer than two helmets is "nearly empty"
        assert api.patch(f"/api/stations/{station}", headers=admin, json={"low_threshold": 2}).status_code == 200
    engine = make_engine(settings.database_url)
    ingest = Ingestor(engine, Recorder())
    for locker, helmets in HELMETS.items():
        ingest.handle(inbound([status(locker, at(0), online=True)]))
        ingest.handle(
            inbound(
                [
                    event(locker, i + 1, at(i), "helmet.stocked", slot=i + 1, helmet_id=f"H-{locker[-1]}{i}")
                    for i in range(helmets)
                ]
            )
        )
    Alerter(settings, engine).sweep()  # as the API process's sweeper does
    yield engine
    engine.dispose()


def levels_in(html: str, pattern: str) -> dict[str, str]:
    return dict(re.findall(pattern, html, re.S))


def table_levels(html: str) -> dict[str, str]:
    return levels_in(html, r'<tr id="station-(ST-\w+)">.*?data-field="level" data-level="(\w+)"')


def map_levels(html: str) -> dict[str, str]:
    return levels_in(html, r'class="map-station lvl-\w+" data-station="(ST-\w+)" data-level="(\w+)"')


def test_seventeen_and_a_hundred_percent_are_no_longer_alike_and_the_map_says_what_the_table_says(
    api: TestClient, settings: CloudSettings, town: Engine
) -> None:
    web_login(api, settings, "staff")
    for path in ("/staff/", "/staff/stations"):
        page = api.get(path).text
        assert table_levels(page) == WANT, path
        assert map_levels(page) == WANT, path
        assert "<meter" not in page  # the browser's own meter colours were the contradiction
        # Words beside every colour: the level's name in the table, on the map and in the legend.
        assert re.search(r'id="station-ST-A">.*?Few helmets</span> <span class="pct">17%', page, re.S)
        assert re.search(r'id="station-ST-C">.*?Station full</span> <span class="pct">100%', page, re.S)
        legend = re.search(r'<ul class="fill-legend".*?</ul>', page, re.S)
        assert legend
        assert re.findall(r'data-level="(\w+)"', legend.group(0)) == ["empty", "low", "normal", "full", "none"]
    zh = api.get("/staff/stations?lang=zh").text
    assert re.search(r'id="station-ST-C">.*?已满</span>', zh, re.S)


def test_a_full_station_is_full_in_the_api_and_has_the_alert_that_says_so(
    api: TestClient, settings: CloudSettings, town: Engine
) -> None:
    staff = user_headers(api, settings, role="staff")
    shown = {s["id"]: s["fill_level"] for s in api.get("/api/stations", headers=staff).json()}
    assert shown == WANT
    with Session(town) as s:
        open_alerts = {
            (a.subject_id, a.kind) for a in s.exec(select(Alert).where(col(Alert.resolved_at).is_(None))).all()
        }
    assert ("ST-C", "station_full") in open_alerts
    assert ("ST-A", "station_low") in open_alerts
    assert not {sid for sid, kind in open_alerts if kind.startswith("station_")} - {"ST-A", "ST-C"}


def test_without_a_tile_server_the_map_is_the_offline_grid_with_every_station_named(
    api: TestClient, settings: CloudSettings, town: Engine
) -> None:
    web_login(api, settings, "staff")
    page = api.get("/staff/stations")
    assert "data-tiles" not in page.text and "leaflet" not in page.text
    svg = re.search(r'<svg[^>]*class="map">.*?</svg>', page.text, re.S)
    assert svg
    for name in ("Station A", "Station B", "Station C"):
        assert re.search(rf'class="map-name"[^>]*>{name}</text>', svg.group(0))
    assert "img-src 'self' data:;" in page.headers["content-security-policy"]


def test_a_towns_tile_server_is_its_own_and_the_page_may_load_its_images(
    api: TestClient, settings: CloudSettings, town: Engine
) -> None:
    with Session(town) as s:
        default = s.get(Town, DEFAULT_TOWN)
        assert default is not None and default.map_tile_url is None  # the setting's, which is unset here
        default.map_tile_url = "https://tiles.example.org/{z}/{x}/{y}.png"
        default.map_attribution = "© OpenStreetMap contributors"
        s.add(default)
        s.commit()
    web_login(api, settings, "staff")
    page = api.get("/staff/")
    assert 'data-tiles="https://tiles.example.org/{z}/{x}/{y}.png"' in page.text
    assert 'data-attribution="© OpenStreetMap contributors"' in page.text
    assert '<script src="/static/vendor/leaflet.js" defer></script><script src="/static/map.js" defer>' in page.text
    assert "img-src 'self' data: https://tiles.example.org;" in page.headers["content-security-policy"]
    # '' turns a town's tiles off even where the deployment sets some.
    with Session(town) as s:
        default = s.get(Town, DEFAULT_TOWN)
        assert default is not None
        default.map_tile_url = ""
        s.add(default)
        s.commit()
    assert "data-tiles" not in api.get("/staff/").text


def test_an_admin_sets_a_towns_tile_server_and_credit_through_the_api(
    api: TestClient, settings: CloudSettings, town: Engine
) -> None:
    admin = user_headers(api, settings, role="admin", username="town-admin")
    for bad in ("https://tiles.example.org/map.png", "javascript:alert(1)//{z}{x}{y}", "ftp://x/{z}/{x}/{y}"):
        assert api.patch("/api/towns/default", headers=admin, json={"map_tile_url": bad}).status_code == 422
    body = {"map_tile_url": "https://tiles.example.org/{z}/{x}/{y}.png", "map_attribution": "© OSM contributors"}
    resp = api.patch("/api/towns/default", headers=admin, json=body)
    assert resp.status_code == 200, resp.text
    shown = api.get("/api/towns/default").json()
    assert (shown["map_tile_url"], shown["map_attribution"]) == (body["map_tile_url"], body["map_attribution"])
    web_login(api, settings, "staff")
    assert 'data-tiles="https://tiles.example.org/{z}/{x}/{y}.png"' in api.get("/staff/stations").text
    assert api.patch("/api/towns/default", headers=admin, json={"map_tile_url": ""}).status_code == 200
    assert "data-tiles" not in api.get("/staff/stations").text
