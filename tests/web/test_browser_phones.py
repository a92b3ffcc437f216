"""Phone numbers in a real browser (issue 17, finding 2; residents found by phone, finding 11).

Debian's Chromium at 360 px against test_browser.py's town (its own instance for this module): Mosquitto,
``helmet-cloud serve`` and simulated lockers. A resident signs in as ``+41 78 000 00 05``, borrows with a pass
the locker reads from the screen, signs out and in again as ``0780000005``: one account, the same loan and pass,
and every code texted to ``+41780000005``. Staff find the loan by the number typed either way.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from support.waiting import eventually
from web.test_browser import (
    Town,
    assert_accessible,
    new_page,
    screen_frame,
    sign_in_staff,
    town,
)

from helmet_edge.decoder_zxing import ZxingDecoder

pytestmark = pytest.mark.slow
__all__ = ["town"]  # shared with test_browser.py (browser: conftest.py)

PHONE = {"viewport": {"width": 360, "height": 740}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}
E164 = "+41780000005"


def sign_in(page: Any, town: Town, typed: str) -> None:
    page.goto("/s/ST-1")
    page.get_by_label("Your mobile number").fill(typed)
    page.get_by_role("button", name="Text me a code").click()
    page.get_by_label("Six-digit code").wait_for()
    page.get_by_label("Six-digit code").fill(town.code_for(E164))  # texted to E.164, whatever was typed
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("group", name="How many helmets?").wait_for()


def texted_to(town: Town) -> list[str]:
    return [json.loads(line)["phone"] for line in town.cloud.sms_file.read_text().splitlines()]


def test_a_resident_signing_in_as_0780000005_after_plus_41_sees_the_same_loan_and_pass(
    browser: Any, town: Town
) -> None:
    page = new_page(browser, town, **PHONE)
    sign_in(page, town, "+41 78 000 00 05")
    page.locator('label[for="q1"]').click()
    page.get_by_role("button", name="Get my pass").click()
    page.wait_for_url(re.compile(r"/s/ST-1/pass/[0-9a-f-]{36}$"))
    pass_url = page.url
    [text] = ZxingDecoder().decode(screen_frame(page, "#pass-qr"))
    assert town.lk1.ask(op="show", text=text.decode())["ok"]
    [helmet] = town.lk1.ask(op="take", count=1)["helmets"]

    def loan_listed() -> bool:
        page.goto("/s/ST-1")
        loans = page.locator(".cardlist.loans")
        return loans.count() > 0 and helmet in loans.inner_text()

    eventually(loan_listed)
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("heading", name="Sign in to borrow").wait_for()

    sign_in(page, town, "0780000005")
    assert helmet in page.locator(".cardlist.loans").inner_text()  # the loan of the +41 sign-in
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 360
    assert_accessible(page)
    answer = page.goto(pass_url)  # the pass issued to the +41 sign-in is this account's
    assert answer is not None and answer.status == 200
    assert set(texted_to(town)) == {E164}
    assert texted_to(town).count(E164) == 2
    page.context.close()
    assert town.lk1.ask(op="insert", helmet_id=helmet)["ok"]


def test_a_number_no_text_can_reach_is_refused_in_words_on_the_phone(browser: Any, town: Town) -> None:
    page = new_page(browser, town, **PHONE)
    sent = len(texted_to(town))
    page.goto("/s/ST-1")
    page.get_by_label("Your mobile number").fill("044 123 45 67")  # a Zurich fixed line
    page.get_by_role("button", name="Text me a code").click()
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert (
        alert.inner_text() == "This number cannot receive text messages: enter a mobile number, e.g. +41 78 123 45 67"
    )
    assert page.get_by_label("Your mobile number").get_attribute("aria-invalid") == "true"
    assert page.get_by_label("Your mobile number").input_value() == "044 123 45 67"  # kept to correct
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 360
    assert_accessible(page)
    assert len(texted_to(town)) == sent
    page.context.close()


def test_staff_find_the_residents_loans_by_the_number_typed_either_way(browser: Any, town: Town) -> None:
    [who] = town.admin._call("GET", "/api/residents", params={"phone": "0780000005"})
    page = new_page(browser, town, viewport={"width": 1440, "height": 900})
    sign_in_staff(page, "ana", "correct horse")
    for typed in ("078 000 00 05", "+41 78 000 00 05"):
        page.goto("/staff/loans?status=all")
        page.get_by_label("Resident: id or phone number").fill(typed)
        page.get_by_role("button", name="Filter").click()
        page.locator("#resident-found").wait_for()
        assert page.locator("#resident-found").inner_text() == f"Resident {who['id']}, phone {E164}"
        rows = page.locator("table.data tbody tr")
        assert rows.count() == 1 and who["id"] in rows.first.inner_text()
    assert_accessible(page)
    page.context.close()
