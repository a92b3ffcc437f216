"""Issue 16 on the pages: the resident's and the staff's sign-in forms call the same limited services as the API,
and say how long to wait (429 with Retry-After) in the reader's language."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from support.cloud_users import user_headers
from web.conftest import add_user

from helmet_cloud.http.web.session import RESIDENT_COOKIE, STAFF_COOKIE
from helmet_cloud.settings import CloudSettings

PHONE = "+41795550011"


@pytest.fixture
def settings(settings: CloudSettings) -> CloudSettings:
    """A first password wait of a minute: a slow machine cannot outwait it within the test."""
    return settings.model_copy(update={"password_backoff_first_seconds": 60})


def station(api: TestClient, settings: CloudSettings) -> str:
    admin = user_headers(api, settings, role="admin")
    resp = api.post("/api/stations", headers=admin, json={"id": "ST-A", "name": "Hall", "lat": 47.3, "lon": 8.5})
    assert resp.status_code == 201, resp.text
    return "/s/ST-A"


def last_code(settings: CloudSettings, phone: str) -> str:
    lines = Path(settings.sms_backend.removeprefix("file:")).read_text().splitlines()
    text: str = [m for m in map(json.loads, lines) if m["phone"] == phone][-1]["text"]
    found = re.search(r"\b(\d{6})\b", text)
    assert found is not None, text
    return found.group(1)


def test_the_resident_form_says_when_the_tries_are_used_up(api: TestClient, settings: CloudSettings) -> None:
    here = station(api, settings)
    assert api.post(f"{here}/code", data={"phone": PHONE}).status_code == 200
    right = last_code(settings, PHONE)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    for _ in range(settings.code_tries_per_window):
        assert api.post(f"{here}/verify", data={"phone": PHONE, "code": wrong}).status_code == 401
    refused = api.post(f"{here}/verify", data={"phone": PHONE, "code": right}, headers={"Accept-Language": "zh"})
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 14 * 60
    assert "此号码尝试次数过多。请在 15 分钟后重试。" in refused.text and RESIDENT_COOKIE not in api.cookies


def test_the_resident_form_says_when_too_many_codes_were_asked_for(api: TestClient, settings: CloudSettings) -> None:
    here = station(api, settings)
    for _ in range(settings.codes_sent_per_window):
        assert api.post(f"{here}/code", data={"phone": PHONE}).status_code == 200
    right = last_code(settings, PHONE)
    refused = api.post(f"{here}/code", data={"phone": PHONE})
    assert refused.status_code == 429 and "Use the last code we sent, or ask again in 15 min." in refused.text
    assert 'autocomplete="one-time-code"' in refused.text  # the code form: the last code still works
    assert api.post(f"{here}/verify", data={"phone": PHONE, "code": right}).status_code == 303


def test_the_staff_form_backs_off_as_the_api_does(api: TestClient, settings: CloudSettings) -> None:
    add_user(settings, "sam", "staff")
    form = {"username": "sam", "password": "wrong", "next": "/staff/"}
    for _ in range(settings.password_free_failures):
        assert api.post("/staff/login", data=form).status_code == 401
    # The API and the form count the same tries.
    refused = api.post("/api/auth/login", json={"username": "sam", "password": "s3cret pass"})
    assert refused.status_code == 429
    page = api.post("/staff/login", data=form | {"password": "s3cret pass"})
    assert page.status_code == 429 and 1 <= int(page.headers["Retry-After"]) <= 60
    assert re.search(r"Too many failed sign-ins\. Try again in \d+ s\.", page.text) and STAFF_COOKIE not in api.cookies
