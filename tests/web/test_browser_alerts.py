"""Staff act on alerts, open a slot only with a reason, and read words, not codes (issue 17, findings 9 and 11).

Debian's Chromium at 1440 px against the real town of test_browser.py (Mosquitto, ``helmet-cloud serve``,
simulated lockers): the town hall (LK-0001) starts full, the library (LK-0002) empty, so both have alerts.
The tests run in file order and build on each other's traffic.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from support.waiting import eventually
from web.test_browser import Town, assert_accessible, new_page, sign_in_staff, town

from helmet_cloud.domain.words import VOCABULARIES
from helmet_protocol.events import EventKind
from helmet_sim.cloud_client import CloudClient

__all__ = ["town"]  # the fixture, shared with test_browser.py (browser: conftest.py)
pytestmark = pytest.mark.slow

DESKTOP = {"width": 1440, "height": 900}
RESIDENT = "+41790000077"
# A code as stored: an UPPER_CASE state, a snake_case word or a dotted event name.
_CODES = sorted({code for vocab in VOCABULARIES.values() for code in vocab}, key=len, reverse=True)
RAW_CODE = re.compile(
    r"\b(?:" + "|".join(re.escape(c.upper()) for c in _CODES if "." not in c) + r")\b"
    r"|\b[a-z]+(?:_[a-z]+)+\b"
    r"|\b(?:" + "|".join(sorted({k.split(".")[0] for k in EventKind})) + r")\.[a-z]+\b"
)


def staff_page(browser: Any, town: Town, **context: Any) -> Any:
    """Signed in as ana; with ``locale="zh-CN"`` the browser asks for Chinese (signing in on the English form)."""
    page = new_page(browser, town, viewport=DESKTOP, **context)
    if context.get("locale", "en").startswith("zh"):
        page.goto("/staff/login?lang=en")
        page.get_by_label("Username").fill("ana")
        page.get_by_label("Password").fill("correct horse")
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_load_state()
        page.goto("/staff/?lang=zh")
        return page
    sign_in_staff(page, "ana", "correct horse")
    return page


def alert_row(page: Any, text: str) -> Any:
    return page.locator("table.alerts tbody tr").filter(has_text=text).first


def visible_codes(page: Any) -> list[str]:
    return sorted(set(RAW_CODE.findall(page.locator("body").inner_text())))


def test_an_alerts_subject_is_a_link_to_its_page(browser: Any, town: Town) -> None:
    eventually(lambda: town.admin.alerts(kind="station_full", status="open"))
    page = staff_page(browser, town)
    page.goto("/staff/alerts")
    row = alert_row(page, "No free slot at Town hall")
    assert "returns may find no room (all 6 slots hold a helmet)" in row.inner_text()
    assert "(raised below" not in row.inner_text() and "slot(s)" not in row.inner_text()
    row.get_by_role("link", name="Station ST-1").click()
    page.wait_for_url("**/staff/stations/ST-1")
    assert page.get_by_role("heading", name=re.compile("Town hall")).first.is_visible()
    assert_accessible(page)
    page.context.close()


def test_staff_acknowledge_an_alert_from_the_list_and_resolve_one_from_the_dashboard(browser: Any, town: Town) -> None:
    # The library has had no slot event yet: its alert comes with the sweep (every 30 s).
    eventually(lambda: town.admin.alerts(kind="station_empty", status="open"), timeout=45)
    page = staff_page(browser, town)
    page.goto("/staff/alerts")
    row = alert_row(page, "No helmets at Library")
    row.get_by_role("button", name=re.compile("^Acknowledge")).click()
    page.wait_for_load_state()
    assert page.url.endswith("/staff/alerts?status=unresolved")
    row = alert_row(page, "No helmets at Library")
    assert row.locator('[data-field="status"]').inner_text().startswith("Acknowledged (ana)")
    assert row.get_by_role("button", name=re.compile("^Acknowledge")).count() == 0
    [acked] = town.admin.alerts(kind="station_empty", status="acknowledged")
    assert acked["acknowledged_by"] == "ana"
    assert acked["message"] == "No helmets at Library: nobody can borrow here until it is restocked"  # the API's

    page.goto("/staff/")
    dash = alert_row(page.locator("#dash-alerts"), "No helmets at Library")
    dash.get_by_role("button", name=re.compile("^Resolve")).click()
    page.wait_for_url("**/staff/")
    assert page.locator("#dash-alerts").filter(has_text="No helmets at Library").count() == 0
    assert town.admin.alerts(kind="station_empty", status="resolved")[0]["resolved_by"] == "ana"
    page.context.close()


def test_alerts_read_in_chinese_in_the_chinese_pages(browser: Any, town: Town) -> None:
    town.admin._call("PATCH", "/api/stations/ST-1", json={"names": {"zh": "市政厅"}})
    page = staff_page(browser, town, locale="zh-CN")
    page.goto("/staff/alerts")
    assert page.locator("html").get_attribute("lang") == "zh-Hans"
    row = alert_row(page, "没有空闲格口")
    text = row.inner_text()
    assert text.count("市政厅 没有空闲格口") == 1  # the station by its Chinese name
    assert "归还的头盔可能放不进去（全部 6 个格口都有头盔）" in text and "站点已满" in text  # noqa: RUF001
    assert "returns may find no room" not in text and "free slot" not in text
    assert row.get_by_role("link", name="站点 ST-1").is_visible()
    assert_accessible(page)
    page.screenshot(path=str(town.shots / "alerts-zh.png"), full_page=True)
    page.context.close()


def test_remote_open_asks_for_a_reason_which_the_audit_log_keeps(browser: Any, town: Town) -> None:
    page = staff_page(browser, town)
    page.goto("/staff/stations/ST-1")
    opener = page.get_by_role("link", name="Open slot 2…")
    assert "danger-outline" in (opener.get_attribute("class") or "")  # not the primary style beside Disable
    opener.click()
    page.wait_for_url(re.compile(r"/tech/lockers/LK-0001/open\?slot=2"))
    assert page.get_by_role("heading", name="Open slot 2?").is_visible()
    assert "Town hall" in page.locator("main").inner_text()
    assert_accessible(page)
    page.get_by_role("button", name="Open slot 2 now").click()  # no reason: the browser refuses to send it
    assert "/open?slot=2" in page.url
    assert page.locator("#reason").evaluate("el => el.validity.valueMissing") is True
    page.get_by_label("Reason (kept in the audit log)").fill("Resident phoned: helmet stuck in slot 2")
    page.get_by_role("button", name="Open slot 2 now").click()
    page.wait_for_url("**/staff/stations/ST-1")
    assert (
        "Reason: Resident phoned: helmet stuck in slot 2"
        in page.locator("table").filter(has_text="Commands and their results").inner_text()
    )

    def audited() -> Any:
        rows = town.admin._call("GET", "/api/audit", params={"action": "command.unlock"})
        return rows[0] if rows else None

    entry = eventually(audited)
    assert (entry["actor"], entry["subject_id"]) == ("ana", "LK-0001/2")
    assert entry["detail"] == {"reason": "Resident phoned: helmet stuck in slot 2"}
    [cmd] = [c for c in town.admin._call("GET", "/api/lockers/LK-0001/commands") if c["op"] == "unlock"]
    assert cmd["reason"] == "Resident phoned: helmet stuck in slot 2"
    # Disable stays one tap.
    page.get_by_role("button", name="Disable slot 6").click()
    page.wait_for_url("**/staff/stations/ST-1")
    page.context.close()


def test_loans_name_the_station_and_no_page_shows_a_raw_code(browser: Any, town: Town) -> None:
    resident = CloudClient(town.cloud.url).sign_in_resident(RESIDENT, town.cloud.sms_file)
    assert town.lk1.ask(op="show", text=resident.request_pass(1, station_id="ST-1")["text"])["ok"]
    [taken] = town.lk1.ask(op="take", count=1)["helmets"]
    eventually(lambda: resident.loans(status="open"))
    resident.close()

    page = staff_page(browser, town)
    page.goto("/staff/loans")
    row = page.locator("#loans-live tbody tr").filter(has_text=taken).first
    assert "Town hall" in row.inner_text() and "LK-0001" not in row.inner_text()
    assert visible_codes(page) == []
    for path in (
        "/staff/stations/ST-1",
        "/tech/lockers/LK-0001",
        f"/tech/helmets/{taken}",
        "/staff/alerts?status=all",
        "/staff/loans?status=all",
        "/tech/",
        "/staff/",
        "/staff/stations",
    ):
        page.goto(path)
        assert visible_codes(page) == [], path
    page.goto(f"/tech/helmets/{taken}")
    assert "On loan" in page.locator("main").inner_text()
    assert page.locator("table").filter(has_text="Loans").locator("tbody tr").first.inner_text().count("Town hall")
    events = page.locator("table").filter(has_text="Recent events").inner_text()
    assert "Helmet borrowed" in events and "helmet.borrowed" not in events
    page.goto("/staff/stations/ST-1")
    assert page.locator("#slot-LK-0001-1 .slot-state").inner_text() in ("Empty", "Helmet in")
    page.context.close()

    zh = staff_page(browser, town, locale="zh-CN")
    for path in ("/staff/stations/ST-1", f"/tech/helmets/{taken}", "/staff/loans?status=all"):
        zh.goto(path)
        assert visible_codes(zh) == [], path
    assert "市政厅" in zh.locator("#loans-live tbody tr").filter(has_text=taken).first.inner_text()  # its zh name
    zh.goto(f"/tech/helmets/{taken}")
    assert "借出中" in zh.locator("main").inner_text() and "借出头盔" in zh.locator("main").inner_text()
    zh.context.close()


def test_a_residents_loans_name_the_station_they_came_from(browser: Any, town: Town) -> None:
    page = new_page(browser, town, viewport=DESKTOP)
    page.goto("/s/ST-2?lang=en")
    page.get_by_label("Your mobile number").fill(RESIDENT)
    page.get_by_role("button", name="Text me a code").click()
    page.get_by_label("Six-digit code").fill(town.code_for(RESIDENT))
    page.get_by_role("button", name="Sign in").click()
    loans = page.locator("ul.loans")
    loans.wait_for()
    assert "from Town hall" in loans.inner_text() and "LK-0001" not in loans.inner_text()
    assert visible_codes(page) == []
    page.context.close()
