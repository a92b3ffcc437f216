"""Staff and technician pages on a phone (issue 17, finding 12): Debian's Chromium at 360x740, touch, real processes.

The town is test_browser.py's (its own instance for this module): Mosquitto, ``helmet-cloud serve`` and two
simulated lockers; LK-0001 at the town hall (ST-1) full with six helmets, LK-0002 at the library (ST-2) empty,
so the rebalancing round asks for a helmet from ST-1 to ST-2.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from support.waiting import eventually
from web.test_browser import Town, assert_accessible, new_page, sign_in_staff, town

pytestmark = pytest.mark.slow
__all__ = ["town"]  # shared with test_browser.py (browser: conftest.py)

PHONE = {"viewport": {"width": 360, "height": 740}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}
STAFF_PAGES = [
    "/staff/",
    "/staff/stations",
    "/staff/stations/ST-1",
    "/staff/alerts",
    "/staff/loans",
    "/staff/rebalance",
    "/tech/",
    "/tech/lockers/LK-0001",
    "/tech/helmets/H-0001",
]


def phone_page(browser: Any, town: Town) -> tuple[Any, list[str]]:
    """A page on a phone, and the list every answer of 400 or more (favicon included) goes into."""
    page = new_page(browser, town, **PHONE)
    failed: list[str] = []
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    return page, failed


def fits(page: Any) -> list[str]:
    """What does not fit a phone: sideways scrolling, a header taller than a fifth of the screen."""
    problems = []
    width = page.evaluate("() => document.documentElement.scrollWidth")
    if width > 360:
        wide = page.evaluate(
            """() => [...document.querySelectorAll('main *, header *')]
                 .filter(e => e.getBoundingClientRect().right > 361).slice(0, 3)
                 .map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))"""
        )
        problems.append(f"{page.url}: {width} px wide ({wide})")
    header = page.locator("header.top").bounding_box()
    if header["height"] > 0.2 * 740:
        problems.append(f"{page.url}: header {header['height']:.0f} px high")
    return problems


def test_every_staff_and_technician_page_fits_a_phone(browser: Any, town: Town) -> None:
    page, failed = phone_page(browser, town)
    page.goto("/staff/login")
    problems = fits(page)
    assert_accessible(page)
    page.get_by_label("Username").fill("ana")
    page.get_by_label("Password").fill("correct horse")
    page.get_by_role("button", name="Sign in").tap()
    page.wait_for_url("**/staff/")
    for path in STAFF_PAGES:
        page.goto(path)
        assert page.locator("h1").count() == 1, path
        problems += fits(page)
        assert_accessible(page)
        page.screenshot(path=str(town.shots / f"phone-{path.strip('/').replace('/', '-')}.png"), full_page=True)
    # Every page links the icon, and /favicon.ico answers too (browsers ask for it anyway): nothing 404s.
    icon_link = page.locator('link[rel="icon"]')
    icon = page.request.get(icon_link.get_attribute("href") if icon_link.count() else "/favicon.ico")
    legacy = page.request.get("/favicon.ico")
    assert (problems, failed) == ([], [])
    assert icon.ok and legacy.ok and legacy.headers["content-type"].startswith("image/svg+xml"), legacy.status
    page.context.close()


def test_the_menu_folds_behind_one_button_on_a_phone(browser: Any, town: Town) -> None:
    page, _failed = phone_page(browser, town)
    sign_in_staff(page, "ana", "correct horse")
    alerts = page.locator("header.top nav").get_by_role("link", name="Alerts")
    menu = page.get_by_role("button", name="Menu")
    assert menu.get_attribute("aria-expanded") == "false" and not alerts.is_visible()
    menu.tap()
    assert menu.get_attribute("aria-expanded") == "true" and alerts.is_visible()
    assert_accessible(page)
    alerts.tap()
    page.wait_for_url("**/staff/alerts")
    assert not page.locator("header.top nav").get_by_role("link", name="Loans").is_visible()
    page.context.close()

    desk = new_page(browser, town, viewport={"width": 1366, "height": 900})
    sign_in_staff(desk, "ana", "correct horse")
    assert not desk.get_by_role("button", name="Menu").is_visible()
    assert desk.locator("header.top nav").get_by_role("link", name="Alerts").is_visible()
    desk.context.close()


def test_the_locker_page_shows_its_heading_once(browser: Any, town: Town) -> None:
    page, _failed = phone_page(browser, town)
    sign_in_staff(page, "tex", "battery staple")
    page.goto("/tech/lockers/LK-0001")
    assert page.get_by_role("heading", level=1).all_inner_texts() == ["Locker LK-0001"]
    assert page.get_by_role("heading", name=re.compile(r"Locker LK-0001")).count() == 1  # not again over the slots
    assert page.locator("#locker-live .badge.ok").first.inner_text() == "online"
    assert page.get_by_role("heading", name="Put a Pi into service").count() == 1
    assert page.title().startswith("Locker LK-0001 · ")
    page.context.close()


def test_a_technician_ticks_a_move_done_by_tapping(browser: Any, town: Town) -> None:
    page, failed = phone_page(browser, town)
    sign_in_staff(page, "tex", "battery staple")
    assert page.url.endswith("/tech/")
    page.get_by_role("button", name="Menu").tap()
    page.locator("header.top nav").get_by_role("link", name="Rebalancing").tap()
    page.wait_for_url("**/staff/rebalance")
    move = page.locator("#move-ST-1-ST-2")
    assert re.sub(r"\s+", " ", move.inner_text()).startswith("1 Town hall ST-1")
    done = move.get_by_role("button", name="Done")
    box = done.bounding_box()
    assert box["x"] + box["width"] <= 360 and box["height"] >= 44  # on the screen, big enough for a thumb
    move.get_by_label("Helmets moved").fill("2")  # they took one more than asked
    done.tap()
    page.wait_for_url("**/staff/rebalance#done-ST-1-ST-2")
    row = page.locator("#done-ST-1-ST-2")
    assert re.search(r"2 helmets moved by tex at \d\d:\d\d", row.inner_text())
    assert page.locator("#move-ST-1-ST-2").count() == 0  # not to do again in this round
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 360
    assert_accessible(page)
    page.screenshot(path=str(town.shots / "phone-rebalance-done.png"), full_page=True)

    entries = eventually(lambda: town.admin._call("GET", "/api/audit", params={"action": "rebalance.move_done"}))
    assert [(e["actor"], e["detail"]["from"], e["detail"]["to"], e["detail"]["moved"]) for e in entries] == [
        ("tex", "ST-1", "ST-2", 2)
    ]
    moves = town.admin._call("GET", "/api/rebalance")["moves"]
    assert [(m["source"], m["target"], m["done"]["moved"], m["done"]["done_by"]) for m in moves] == [
        ("ST-1", "ST-2", 2, "tex")
    ]
    # The printout keeps a tick box per move: this one ticked.
    page.emulate_media(media="print")
    assert row.locator(".tick").inner_text() == "☑" and not row.locator("details").is_visible()
    heading = page.locator("table.moves thead")
    heading.wait_for()  # a live update may be swapping the region in
    box = heading.bounding_box()
    assert box is not None and box["height"] > 10  # a table with headings, not cards
    assert failed == []
    page.context.close()


def test_a_technicians_pages_fit_a_phone_in_chinese_too(browser: Any, town: Town) -> None:
    page, failed = phone_page(browser, town)
    page.context.add_cookies([{"name": "helmet_lang", "value": "zh", "url": town.cloud.url}])
    page.goto("/staff/login")
    page.locator("#username").fill("tex")
    page.locator("#password").fill("battery staple")
    page.locator("form.stack button[type=submit]").tap()
    page.wait_for_url("**/tech/")
    assert page.locator("html").get_attribute("lang") == "zh-Hans"
    problems = fits(page)
    for path in ("/staff/rebalance", "/tech/lockers/LK-0001", "/tech/helmets/H-0001"):
        page.goto(path)
        problems += fits(page)
    # The pages a technician's forms lead to: a maintenance pass and an enrolment code, each a QR on the screen.
    page.goto("/tech/")
    page.locator('form[action="/tech/pass"] button').tap()
    page.wait_for_url("**/tech/pass")
    problems += fits(page)
    page.goto("/tech/lockers/LK-0001")
    page.locator('form[action$="/enrolment"] button').tap()
    page.wait_for_url("**/enrolment")
    problems += fits(page)
    assert_accessible(page)
    assert (problems, failed) == ([], [])
    page.context.close()
