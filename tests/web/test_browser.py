"""The pages in a real browser: Debian's Chromium driven by Playwright, against real processes.

Mosquitto, the cloud (``helmet-cloud serve``) and simulated lockers (``helmet-sim
locker``: the real edge code on mock pins and a virtual camera) run as their own
processes; the browser and the lockers are the only ways in. One town serves the
whole module, so the tests run in file order and build on each other's traffic.

Screenshots go to ``$HELMET_WEB_SCREENSHOTS`` (``docs/img`` to refresh the
README's) or the test's temporary directory.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from support.processes import CloudProcess, LockerProcess
from support.waiting import eventually
from web.conftest import missing

from helmet_edge.decoder_zxing import ZxingDecoder
from helmet_sim.broker import Broker, start_mosquitto
from helmet_sim.cloud_client import CloudClient

pytestmark = pytest.mark.slow
playwright_api = pytest.importorskip("playwright.sync_api")

PHONE = "+41791112233"


@dataclass
class Town:
    cloud: CloudProcess
    admin: CloudClient
    lk1: LockerProcess
    lk2: LockerProcess
    shots: Path

    def code_for(self, phone: str) -> str:
        def code() -> str | None:
            if not self.cloud.sms_file.exists():
                return None
            found = re.findall(rf'"phone": "\{phone}", "text": "[^"]*?(\d{{6}})', self.cloud.sms_file.read_text())
            return found[-1] if found else None

        return eventually(code)


@pytest.fixture(scope="module")
def town(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Town]:
    """Two stations, LK-0001 (6 slots, 6 helmets) at the town hall and LK-0002 (6 slots, empty) at the library."""
    root = tmp_path_factory.mktemp("town")
    try:
        broker: Broker = start_mosquitto(root / "broker")
    except FileNotFoundError:
        missing("mosquitto is not installed (apt-get install mosquitto)")
    cloud = CloudProcess(root / "cloud", broker.port, f"sqlite:///{root}/cloud/cloud.db")
    cloud.add_user("ana", "admin", "correct horse")
    cloud.add_user("tex", "technician", "battery staple")
    admin = cloud.start().login("ana", "correct horse")
    admin.create_station("ST-1", "Town hall", 47.3769, 8.5417, address="Stadthausquai 17")
    admin.create_station("ST-2", "Library", 47.3745, 8.5480, address="Zähringerplatz 6")
    admin.register_locker("LK-0001", "ST-1", slot_count=6)
    admin.register_locker("LK-0002", "ST-2", slot_count=6)
    lk1 = LockerProcess("LK-0001", root / "lockers", broker.port)
    lk2 = LockerProcess("LK-0002", root / "lockers", broker.port)
    lk1.wait_for_keys()
    assert lk1.ask(op="show", text=admin.technician_pass(), seconds=1.0)["ok"]
    for i in range(6):
        assert lk1.ask(op="insert", helmet_id=f"H-000{i + 1}")["ok"]
    eventually(lambda: admin.station("ST-1")["helmets_available"] == 6)
    eventually(lambda: admin.station("ST-2")["lockers_online"] == 1)
    shots = Path(os.environ.get("HELMET_WEB_SCREENSHOTS") or root / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    yield Town(cloud, admin, lk1, lk2, shots)
    for locker in (lk1, lk2):
        if locker.proc.poll() is None:
            locker.stop()
    admin.close()
    cloud.stop()
    broker.stop()


def new_page(browser: Any, town: Town, **context: Any) -> Any:
    ctx = browser.new_context(base_url=town.cloud.url, **context)
    ctx.set_default_timeout(10_000)
    return ctx.new_page()


def sign_in_staff(page: Any, username: str, password: str) -> None:
    page.goto("/staff/")
    assert "/staff/login" in page.url  # sent to sign in first
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def assert_accessible(page: Any) -> None:
    """axe-core (vendored from npm) finds no serious or critical violation on the page."""
    # From the cloud's own static files: the pages' Content-Security-Policy allows only this site's scripts.
    page.add_script_tag(url="/static/vendor/axe.min.js")
    result = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    bad = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert bad == [], f"{page.url}: {bad}"


def screen_frame(page: Any, selector: str) -> Any:
    """What a camera would see of the element: a greyscale frame from a screenshot."""
    png = page.locator(selector).screenshot()
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2GRAY)


def live_wait(page: Any, selector: str, text: str, timeout_ms: int) -> None:
    page.locator(selector).filter(has_text=re.compile(rf"^\s*{re.escape(text)}\s*$")).wait_for(timeout=timeout_ms)


def test_staff_see_a_borrow_appear_on_the_dashboard_without_reloading(browser: Any, town: Town) -> None:
    page = new_page(browser, town, viewport={"width": 1366, "height": 900})
    sign_in_staff(page, "ana", "correct horse")
    assert page.url.endswith("/staff/")
    assert page.locator('[data-field="in_stations"]').inner_text() == "6"
    assert page.locator('[data-field="on_loan"]').inner_text() == "0"
    page.get_by_text("Live updates on").wait_for()
    page.evaluate("() => { window.notReloaded = true; }")

    resident = CloudClient(town.cloud.url).sign_in_resident("+41790000001", town.cloud.sms_file)
    assert town.lk1.ask(op="show", text=resident.request_pass(1, station_id="ST-1")["text"])["ok"]
    assert len(town.lk1.ask(op="take", count=1)["helmets"]) == 1
    # The moment the cloud has the loan, the page has at most 2 s to show it.
    eventually(lambda: resident.loans(status="open"))
    live_wait(page, '[data-field="on_loan"]', "1", timeout_ms=2000)
    live_wait(page, '#station-ST-1 [data-field="helmets"]', "5", timeout_ms=2000)
    assert page.evaluate("() => window.notReloaded") is True
    resident.close()
    page.screenshot(path=str(town.shots / "dashboard.png"), full_page=True)
    assert_accessible(page)

    page.get_by_role("link", name="Town hall").first.click()
    page.wait_for_url("**/staff/stations/ST-1")
    assert page.locator("#slot-LK-0001-1").get_attribute("data-state") == "empty"  # the borrowed one
    assert page.locator("#slot-LK-0001-2 .slot-health").inner_text().startswith("Unlocks: 1")
    assert_accessible(page)
    page.screenshot(path=str(town.shots / "station.png"), full_page=True)
    page.context.close()


def test_a_resident_on_a_phone_switches_language_signs_in_and_gets_a_pass_the_locker_reads(
    browser: Any, town: Town
) -> None:
    page = new_page(browser, town, viewport={"width": 360, "height": 740}, locale="zh-CN", device_scale_factor=2)
    page.goto("/s/ST-1")
    assert page.locator("html").get_attribute("lang") == "zh-Hans"
    assert page.get_by_role("heading", name="登录后借用").is_visible()
    assert_accessible(page)
    page.screenshot(path=str(town.shots / "resident-sign-in-zh.png"), full_page=True)
    page.get_by_role("link", name="English").click()
    page.get_by_role("heading", name="Sign in to borrow").wait_for()
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 360  # no sideways scrolling

    page.get_by_label("Your mobile number").fill(PHONE)
    page.get_by_role("button", name="Text me a code").click()
    page.get_by_label("Six-digit code").fill(town.code_for(PHONE))
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("group", name="How many helmets?").wait_for()
    assert_accessible(page)
    page.locator('label[for="q2"]').click()
    page.get_by_role("button", name="Get my pass").click()
    page.wait_for_url(re.compile(r"/s/ST-1/pass/[0-9a-f-]{36}$"))
    assert page.get_by_role("heading", name="Your pass for 2 helmets").is_visible()
    assert re.fullmatch(r"\d:\d\d", page.locator("[data-left]").inner_text())
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 360
    assert_accessible(page)
    page.screenshot(path=str(town.shots / "resident-pass.png"), full_page=True)

    # The edge's own decoder reads the pass from the screen, and the locker honours it.
    [text] = ZxingDecoder().decode(screen_frame(page, "#pass-qr"))
    assert text.startswith(b"HP1")
    assert town.lk1.ask(op="show", text=text.decode())["ok"]
    assert len(town.lk1.ask(op="take", count=2)["helmets"]) == 2

    page.goto("/s/ST-1")
    loans = page.locator(".cardlist.loans")
    eventually(lambda: (page.reload(), loans.locator("li").count() == 2)[1])
    # Bring them back, so the town hall is full again for the rebalancing round.
    for helmet in re.findall(r"H-\d{4}", loans.inner_text()):
        assert town.lk1.ask(op="insert", helmet_id=helmet)["ok"]

    # Standing at the locker, one more helmet with "Open now": no camera needed.
    page.goto("/s/ST-1")
    page.locator('label[for="q1"]').click()
    page.get_by_role("button", name="Get my pass").click()
    page.get_by_role("button", name="Open now").click()
    page.get_by_text(re.compile(r"Slot \d is open: take your helmet\.")).wait_for(timeout=15_000)  # pass.js follows it
    [helmet] = town.lk1.ask(op="take", count=1)["helmets"]
    assert town.lk1.ask(op="insert", helmet_id=helmet)["ok"]
    page.context.close()


def test_the_helmet_sticker_page_says_whose_it_is_and_where_to_return_it(browser: Any, town: Town) -> None:
    library = {"latitude": 47.3745, "longitude": 8.5485}
    page = new_page(
        browser,
        town,
        viewport={"width": 360, "height": 740},
        locale="en-GB",
        geolocation=library,
        permissions=["geolocation"],
    )
    page.goto("/h/H-0002")
    assert page.get_by_role("heading", name="Helmet H-0002").is_visible()
    assert page.get_by_text("Helmet station, the town's shared helmet programme").is_visible()
    assert page.locator(".nearest li").count() >= 1  # nearest to where H-0002 was last
    assert_accessible(page)
    page.get_by_role("button", name="Show the stations nearest to me").click()
    page.get_by_text("Nearest to where you are.").wait_for()
    first = page.locator(".nearest li a.place").first.inner_text()
    assert first.startswith("Library") and "0.0 km" in first  # the phone stands at the library
    # The keyboard's first stop skips to the content.
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("() => document.activeElement.id") == "main"
    page.context.close()


def test_a_technician_registers_a_locker_and_disables_a_slot_that_turns_grey(browser: Any, town: Town) -> None:
    page = new_page(browser, town, viewport={"width": 1280, "height": 900})
    sign_in_staff(page, "tex", "battery staple")
    page.wait_for_url("**/tech/")
    assert_accessible(page)
    page.get_by_label("Locker id").fill("LK-0003")
    page.get_by_label("Station", exact=True).select_option("ST-2")
    page.get_by_label("Number of slots").fill("4")
    page.get_by_role("button", name="Register", exact=True).click()
    page.get_by_role("heading", name="Locker LK-0003 is registered").wait_for()
    assert town.admin.locker("LK-0003")["station_id"] == "ST-2"
    # Its Pi is put into service with a one-time code, shown as a QR code the kiosk camera can read.
    page.get_by_role("button", name="Show an enrolment code for its Pi").click()
    page.get_by_role("heading", name="Enrolment code for locker LK-0003").wait_for()
    assert_accessible(page)
    [text] = ZxingDecoder().decode(screen_frame(page, ".qr-box"))
    assert text.decode() == f"HSE1:https://helmets.example.org#{page.locator('.countdown code').inner_text()}"

    page.goto("/tech/lockers/LK-0001")
    slot = page.locator("#slot-LK-0001-6")
    assert slot.get_attribute("data-state") == "occupied"
    page.get_by_role("button", name="Disable slot 6").click()
    page.wait_for_url("**/tech/lockers/LK-0001")
    # The locker answers on MQTT; the live stream brings the new state into the page.
    page.locator("#slot-LK-0001-6[data-state='disabled']").wait_for()
    grey = page.locator("#slot-LK-0001-6").evaluate("e => getComputedStyle(e).backgroundImage")
    assert "repeating-linear-gradient" in grey
    page.get_by_role("button", name="Enable slot 6").wait_for()
    page.locator("tr.cmd-ok", has_text="Disable slot").wait_for()  # the op in words (issue 17, finding 11)
    assert_accessible(page)
    # Inspecting a helmet: where it is and what happened to it.
    page.goto("/tech/helmets/H-0002")
    assert page.locator(".facts").inner_text().count("LK-0001") == 1
    assert page.locator("table", has_text="Recent events").get_by_text("Helmet stocked").count() >= 1
    assert_accessible(page)
    page.context.close()


def test_the_rebalancing_round_prints_as_a_list(browser: Any, town: Town) -> None:
    page = new_page(browser, town, viewport={"width": 1280, "height": 900})
    sign_in_staff(page, "tex", "battery staple")
    page.goto("/staff/rebalance")
    moves = page.locator("tr.move")
    assert moves.count() == 1
    cells = [c.strip() for c in moves.first.locator("td").all_inner_texts()]
    assert cells[0:3] == ["1", "Town hall ST-1", "Library ST-2"]
    page.emulate_media(media="print")
    assert not page.get_by_role("navigation").is_visible()
    assert moves.first.is_visible()
    # A tick box to tick on paper instead of the Done form.
    assert moves.first.locator(".tick").inner_text() == "☐" and not moves.first.locator("form").is_visible()
    page.context.close()


def test_staff_acknowledge_an_alert_as_it_arrives(browser: Any, town: Town) -> None:
    page = new_page(browser, town, viewport={"width": 1280, "height": 900})
    sign_in_staff(page, "ana", "correct horse")
    page.goto("/staff/alerts")
    town.lk2.kill()  # a power cut: the broker publishes its Last Will
    row = page.locator("tr", has_text="LK-0002").filter(has_text="Critical")
    row.wait_for(timeout=15_000)  # the alerts page is live too: no reload
    row.get_by_role("button", name=re.compile("^Acknowledge")).click()
    page.wait_for_url("**/staff/alerts?status=unresolved")
    acknowledged = page.locator("tr", has_text="LK-0002").locator('[data-field="status"]')
    assert acknowledged.inner_text().startswith("Acknowledged")  # the status in words (issue 17, finding 11)
    assert "(ana)" in acknowledged.inner_text()
    assert [a["acknowledged_by"] for a in town.admin.alerts(kind="locker_offline")] == ["ana"]
    page.context.close()


def test_the_api_docs_render_from_vendored_files_under_the_sites_policy(browser: Any, town: Town) -> None:
    """``/docs`` (linked from the demo's banner) works offline: every request stays on this site, and the
    Content-Security-Policy blocks nothing it needs."""
    page = new_page(browser, town)
    elsewhere: list[str] = []
    refused: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(town.cloud.url) else elsewhere.append(r.url))
    page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto("/docs")
    page.get_by_text("/api/stations/{station_id}", exact=True).first.wait_for()
    page.get_by_text("/api/stations/{station_id}", exact=True).first.click()  # an operation opens
    page.get_by_role("button", name="Try it out").first.wait_for()
    assert elsewhere == [] and refused == []
    page.screenshot(path=str(town.shots / "api-docs.png"))
    page.context.close()
