"""Staff at 1440 px (issue 17, findings 8 and 10): one fill level in the table, on the map, in the legend and the
alerts; streets from the town's tile server; chart titles and axes in sight; a live indicator that does not cry wolf.

Debian's Chromium driven by Playwright against real processes, as in test_browser.py: Mosquitto, ``helmet-cloud
serve`` and three simulated lockers, six slots each, holding 1, 2 and 6 helmets (17%, 33% and 100%) at stations
whose "nearly empty" threshold is 2. The tile server is the test's own, on 127.0.0.1: the tests run offline. The
last test stops the cloud.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from sqlalchemy import text
from support.processes import CloudProcess, LockerProcess
from support.waiting import eventually
from web.conftest import missing
from web.test_browser import assert_accessible, sign_in_staff

from helmet_cloud.adapters.database import make_engine
from helmet_sim.broker import Broker, start_mosquitto
from helmet_sim.cloud_client import CloudClient

pytestmark = pytest.mark.slow
playwright_api = pytest.importorskip("playwright.sync_api")

WIDE = {"width": 1440, "height": 1000}
# Station, name, where, helmets of its 6 slots, the level that is: 17% is nearly empty (fewer than 2), 33% is
# normal, 100% is full (fewer than 1 free slot), as the stock alerts say. The library is stocked with 3 and
# lends one: stocked straight to 2, it would still be nearly empty, as its alert would be (it clears above 2).
STATIONS = [
    ("ST-1", "Town hall", 47.3769, 8.5417, 1, "low"),
    ("ST-2", "Library", 47.3745, 8.5480, 2, "normal"),
    ("ST-3", "Station square", 47.3779, 8.5403, 6, "full"),
]
STOCKED = {"ST-1": 1, "ST-2": 3, "ST-3": 6}
WANT = {sid: level for sid, _, _, _, _, level in STATIONS}


@dataclass
class Town:
    cloud: CloudProcess
    admin: CloudClient
    lockers: list[LockerProcess]
    database_url: str
    shots: Path


@dataclass
class TileServer:
    """Answers every ``/z/x/y.png`` with one PNG and remembers what it was asked."""

    server: ThreadingHTTPServer
    asked: list[str] = field(default_factory=list)

    @property
    def template(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/{{z}}/{{x}}/{{y}}.png"


@pytest.fixture(scope="module")
def town(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Town]:
    root = tmp_path_factory.mktemp("town")
    try:
        broker: Broker = start_mosquitto(root / "broker")
    except FileNotFoundError:
        missing("mosquitto is not installed (apt-get install mosquitto)")
    database_url = f"sqlite:///{root}/cloud/cloud.db"
    cloud = CloudProcess(root / "cloud", broker.port, database_url)
    cloud.add_user("ana", "admin", "correct horse")
    admin = cloud.start().login("ana", "correct horse")
    lockers = []
    for i, (sid, name, lat, lon, _, _) in enumerate(STATIONS, start=1):
        admin.create_station(sid, name, lat, lon, low_threshold=2, high_threshold=1)
        admin.register_locker(f"LK-000{i}", sid, slot_count=6)
        locker = LockerProcess(f"LK-000{i}", root / "lockers", broker.port)
        locker.wait_for_keys()
        assert locker.ask(op="show", text=admin.technician_pass(), seconds=1.0)["ok"]
        for h in range(STOCKED[sid]):
            assert locker.ask(op="insert", helmet_id=f"H-{i}{h}")["ok"]
        lockers.append(locker)
    eventually(lambda: admin.station("ST-2")["helmets_available"] == 3)
    resident = CloudClient(cloud.url).sign_in_resident("+41790000002", cloud.sms_file)
    assert lockers[1].ask(op="show", text=resident.request_pass(1, station_id="ST-2")["text"])["ok"]
    assert len(lockers[1].ask(op="take", count=1)["helmets"]) == 1
    resident.close()
    for sid, _, _, _, helmets, _ in STATIONS:
        eventually(lambda sid=sid, helmets=helmets: admin.station(sid)["helmets_available"] == helmets)
    eventually(
        lambda: {a["subject_id"] for a in admin.alerts(kind="station_full") if a["resolved_at"] is None} == {"ST-3"}
    )
    shots = Path(os.environ.get("HELMET_WEB_SCREENSHOTS") or root / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    yield Town(cloud, admin, lockers, database_url, shots)
    for locker in lockers:
        if locker.proc.poll() is None:
            locker.stop()
    admin.close()
    cloud.stop()
    broker.stop()


@pytest.fixture
def tiles() -> Iterator[TileServer]:
    ok, png = cv2.imencode(".png", np.full((256, 256, 3), (225, 235, 225), np.uint8))
    assert ok
    body = png.tobytes()
    served = TileServer(ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            served.asked.append(self.path)
            if not re.fullmatch(r"/\d+/\d+/\d+\.png", self.path):
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    served.server.RequestHandlerClass = Handler
    thread = threading.Thread(target=served.server.serve_forever, daemon=True)
    thread.start()
    yield served
    served.server.shutdown()
    served.server.server_close()
    thread.join(5)


def set_town_tiles(town: Town, url: str | None, attribution: str | None) -> None:
    """What an admin sets for the town: its tile server and credit (null: the deployment's settings, unset here)."""
    engine = make_engine(town.database_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text("UPDATE town SET map_tile_url = :url, map_attribution = :credit WHERE id = 'default'"),
                {"url": url, "credit": attribution},
            )
    finally:
        engine.dispose()


def open_alerts(town: Town, kind: str) -> set[str]:
    return {a["subject_id"] for a in town.admin.alerts(kind=kind) if a["resolved_at"] is None}


def staff_page(browser: Any, town: Town, path: str) -> Any:
    ctx = browser.new_context(base_url=town.cloud.url, viewport=WIDE)
    ctx.set_default_timeout(10_000)
    page = ctx.new_page()
    sign_in_staff(page, "ana", "correct horse")
    page.goto(path)
    return page


# The colour a level paints, read from the page as the browser computed it.
COLOURS = """(sel) => Array.from(document.querySelectorAll(sel)).map(el => {
    const s = getComputedStyle(el);
    return el instanceof SVGElement ? s.fill : s.backgroundColor;
})"""


def colour(page: Any, selector: str) -> str:
    found: list[str] = page.evaluate(COLOURS, selector)
    assert len(found) == 1, (selector, found)
    return found[0]


def test_the_table_the_map_and_the_legend_give_each_station_the_same_level_and_colour(browser: Any, town: Town) -> None:
    page = staff_page(browser, town, "/staff/")
    legend = {
        level: (
            colour(page, f'#dash-map .fill-legend li[data-level="{level}"] .level'),
            page.locator(f'#dash-map .fill-legend li[data-level="{level}"] .level').inner_text().strip(),
        )
        for level in ("empty", "low", "normal", "full", "none")
    }
    assert len({c for c, _ in legend.values()}) == 5  # five colours, five words
    for sid, name, _, _, helmets, level in STATIONS:
        cell = page.locator(f'#station-{sid} [data-field="level"]')
        assert cell.get_attribute("data-level") == level, sid
        assert cell.inner_text().strip() == f"{legend[level][1]} {round(helmets / 6 * 100)}%"
        pin = page.locator(f'svg.map a[data-station="{sid}"]')
        assert pin.get_attribute("data-level") == level, sid
        assert colour(page, f"#station-{sid} .level") == legend[level][0], sid
        assert colour(page, f'svg.map a[data-station="{sid}"] circle.pin') == legend[level][0], sid
        # The offline grid names every station, with its level in words under it.
        assert pin.locator("text.map-name").text_content() == name
        assert pin.locator("text.map-level").text_content() == legend[level][1]
    assert "data-tiles" not in page.content()  # no tile server: the grid, no Leaflet
    assert_accessible(page)
    page.screenshot(path=str(town.shots / "staff-levels.png"), full_page=True)
    page.goto("/staff/?lang=zh")  # the same words in Chinese, beside the same colours
    assert page.locator("#station-ST-3 .level").inner_text().strip() == "站点已满"
    assert page.locator("#station-ST-1 .level").inner_text().strip() == "头盔不足"
    assert page.locator('svg.map a[data-station="ST-3"] text.map-level').text_content() == "站点已满"
    assert colour(page, "#station-ST-3 .level") == legend["full"][0]
    assert_accessible(page)
    page.context.close()


def test_a_full_station_is_full_wherever_it_shows_and_its_alert_says_so_too(browser: Any, town: Town) -> None:
    assert town.admin.station("ST-3")["fill_level"] == "full"
    assert open_alerts(town, "station_full") == {"ST-3"}
    assert open_alerts(town, "station_low") == {"ST-1"}
    assert open_alerts(town, "station_empty") == set()
    for path, table in (("/staff/", "#dash-alerts"), ("/staff/alerts", "main")):
        page = staff_page(browser, town, path)
        full = page.locator(f"{table} tr", has=page.locator('[data-field="subject"]', has_text="ST-3"))
        assert full.count() == 1
        assert full.locator(".level").get_attribute("data-level") == "full"
        assert colour(page, f'{table} tr:has(.level[data-level="full"]) .level') == colour(
            page, "#station-ST-3 .level" if path == "/staff/" else ".level[data-level='full']"
        )
        low = page.locator(f"{table} tr", has=page.locator('[data-field="subject"]', has_text="ST-1"))
        assert low.locator(".level").get_attribute("data-level") == "low"
        if path == "/staff/":
            assert page.locator('#station-ST-3 [data-field="level"]').get_attribute("data-level") == "full"
            assert page.locator('svg.map a[data-station="ST-3"]').get_attribute("data-level") == "full"
        assert_accessible(page)
        page.context.close()


def test_the_charts_titles_and_axes_are_in_sight_and_tell_hours_from_days(browser: Any, town: Town) -> None:
    page = staff_page(browser, town, "/staff/")
    hourly = page.get_by_role("heading", name="Borrows and returns per hour")
    daily = page.get_by_role("heading", name="Borrows and returns per day")
    assert hourly.is_visible() and daily.is_visible()  # not inside the collapsed "The numbers"
    figures = page.locator("#dash-charts figure.chart-figure")
    assert figures.count() == 2
    assert figures.nth(0).get_by_text("Last 24 hours").is_visible()
    assert figures.nth(1).get_by_text("Last 14 days").is_visible()
    axes = [figures.nth(i).locator("svg.chart text.axis-label").all_text_contents() for i in range(2)]
    assert axes == [["Hour of the day (town time)", "Helmets"], ["Day (month-day, town time)", "Helmets"]]
    for i in range(2):
        assert figures.nth(i).locator("svg.chart text.axis-label").first.is_visible()
        assert not figures.nth(i).locator("details").evaluate("d => d.open")  # the numbers can stay folded
    assert_accessible(page)
    page.locator("#dash-charts").screenshot(path=str(town.shots / "staff-charts.png"))
    page.context.close()


def test_the_map_draws_streets_from_the_towns_own_tile_server(browser: Any, town: Town, tiles: TileServer) -> None:
    set_town_tiles(town, tiles.template, "Tiles: the test's own server")
    try:
        page = staff_page(browser, town, "/staff/stations")
        refused: list[str] = []
        page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
        page.reload()
        page.locator(".town-map img.leaflet-tile-loaded").first.wait_for()
        assert [p for p in tiles.asked if re.fullmatch(r"/\d+/\d+/\d+\.png", p)], tiles.asked
        assert page.locator("svg.map").is_hidden()  # the grid gives way to the streets
        markers = page.locator(".town-map .map-marker")
        assert markers.count() == 3
        for sid, name, _, _, _, level in STATIONS:
            marker = page.locator(f'.town-map .map-marker[data-station="{sid}"]')
            assert marker.get_attribute("data-level") == level
            assert marker.get_attribute("href") == f"/staff/stations/{sid}"
            assert marker.locator(".map-label").is_visible()
            assert name in marker.locator(".map-label").inner_text()
            assert colour(page, f'.map-marker[data-station="{sid}"] .map-pin') == colour(page, f"#station-{sid} .level")
        assert "Tiles: the test's own server" in page.locator(".leaflet-control-attribution").inner_text()
        assert refused == []
        assert_accessible(page)
        page.screenshot(path=str(town.shots / "staff-map-tiles.png"), full_page=True)
        # A live update redraws the pins and keeps the map (no reload, no second map).
        page.evaluate("() => { window.notReloaded = true; }")
        assert town.lockers[0].ask(op="show", text=town.admin.technician_pass(), seconds=1.0)["ok"]
        assert town.lockers[0].ask(op="insert", helmet_id="H-19")["ok"]  # ST-1: 2 of 6
        pin = page.locator('.town-map .map-marker[data-station="ST-1"] .map-pin')
        pin.filter(has_text="2/6").wait_for(timeout=5000)
        assert page.locator(".town-map .leaflet-host").count() == 1
        assert page.evaluate("() => window.notReloaded") is True
        # Still nearly empty, as its alert: it clears above the threshold of 2, not at it.
        cell = page.locator('#station-ST-1 [data-field="level"]')
        assert cell.get_attribute("data-level") == "low"
        marker = page.locator('.town-map .map-marker[data-station="ST-1"]')
        assert marker.get_attribute("data-level") == "low"
        assert open_alerts(town, "station_low") == {"ST-1"}
        page.context.close()
    finally:
        set_town_tiles(town, None, None)


def test_a_tile_server_that_answers_nothing_leaves_the_grid(browser: Any, town: Town) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    set_town_tiles(town, f"http://127.0.0.1:{port}/{{z}}/{{x}}/{{y}}.png", "")
    try:
        page = staff_page(browser, town, "/staff/stations")
        page.locator('.town-map[data-tiles-failed="true"]').wait_for(state="attached")
        assert page.locator("svg.map").is_visible()
        assert page.locator(".town-map .leaflet-host").count() == 0
        assert page.locator("svg.map text.map-name").all_text_contents() == [name for _, name, *_ in STATIONS]
        assert_accessible(page)
        page.context.close()
    finally:
        set_town_tiles(town, None, None)


def test_the_live_indicator_stays_on_over_stream_ends_and_says_reconnecting_once_the_server_is_gone(
    browser: Any, town: Town
) -> None:
    page = staff_page(browser, town, "/staff/")
    status = page.locator("[data-live-status]")
    page.get_by_text("Live updates on").wait_for()
    page.evaluate(
        """() => {
          const el = document.querySelector('[data-live-status]');
          window.liveTexts = [el.textContent];
          new MutationObserver(() => window.liveTexts.push(el.textContent))
            .observe(el, {childList: true, characterData: true, subtree: true});
        }"""
    )
    page.wait_for_timeout(35_000)  # two of the server's stream ends (every 15 s) and their reconnects
    seen = page.evaluate("() => window.liveTexts")
    assert not [t for t in seen if "Reconnecting" in t], seen
    assert status.inner_text() == "Live updates on"
    town.cloud.stop()
    stopped = time.monotonic()
    page.get_by_text("Reconnecting live updates…").wait_for(timeout=15_000)
    waited = time.monotonic() - stopped
    assert waited >= 3, waited  # only once reconnecting has failed for a few seconds
    assert status.get_attribute("data-state") == "reconnecting"
    page.context.close()
