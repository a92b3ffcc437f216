"""Forms from another site (issue 16, finding 7): the sign-in forms have no CSRF token yet (no cookie to derive it
from), so a page elsewhere could sign a browser in to an account of its choosing and make the cloud send texts.
Every POST to the pages must now come from this site, by Sec-Fetch-Site, Origin or Referer.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from support.cloud_events import register_town
from support.cloud_users import user_headers
from web.conftest import PASSWORD, add_user

from helmet_cloud.http.web.session import RESIDENT_COOKIE, STAFF_COOKIE
from helmet_cloud.settings import CloudSettings

FOREIGN = [
    {"Origin": "https://evil.example"},
    {"Origin": "null"},  # a sandboxed frame, a data: URL
    {"Referer": "https://evil.example/win-a-helmet"},
    {"Sec-Fetch-Site": "cross-site", "Origin": "https://testserver"},
    {"Sec-Fetch-Site": "same-site"},  # a sibling subdomain is not this site either
]
OURS = [
    {},  # no browser page at all (a script): nothing ambient to forge
    {"Origin": "https://testserver"},
    {"Origin": "https://helmets.example.org"},  # the public host, when the proxy rewrites Host
    {"Referer": "https://testserver/staff/login?next=%2Fstaff%2F"},
    {"Sec-Fetch-Site": "same-origin", "Origin": "https://testserver"},
]


def _texts(settings: CloudSettings) -> list[str]:
    path = Path(settings.sms_backend.removeprefix("file:"))
    return [json.loads(line)["text"] for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.parametrize("headers", FOREIGN)
def test_a_foreign_staff_sign_in_sets_no_cookie(
    api: TestClient, settings: CloudSettings, headers: dict[str, str]
) -> None:
    add_user(settings, "ana", "staff")
    resp = api.post("/staff/login", data={"username": "ana", "password": PASSWORD}, headers=headers)
    assert resp.status_code == 403 and "came from another site" in resp.text
    assert "set-cookie" not in resp.headers and STAFF_COOKIE not in api.cookies


@pytest.mark.parametrize("headers", OURS)
def test_a_sign_in_from_this_site_still_works(
    api: TestClient, settings: CloudSettings, headers: dict[str, str]
) -> None:
    add_user(settings, "ana", "staff")
    resp = api.post("/staff/login", data={"username": "ana", "password": PASSWORD}, headers=headers)
    assert resp.status_code == 303 and STAFF_COOKIE in api.cookies


def test_a_foreign_form_cannot_make_the_cloud_send_a_text_or_sign_a_resident_in(
    api: TestClient, settings: CloudSettings
) -> None:
    register_town(api, user_headers(api, settings, role="admin"), {"LK-0001": ("ST-A", 4)})
    evil = {"Origin": "https://evil.example"}
    sent = api.post("/s/ST-A/code", data={"phone": "+41795550011"}, headers=evil)
    assert sent.status_code == 403 and _texts(settings) == []
    # Its own code, sent from this site, then the attacker's form posts it to sign the victim's browser in.
    assert api.post("/s/ST-A/code", data={"phone": "+41795550011"}).status_code == 200
    found = re.search(r"\d{6}", _texts(settings)[-1])
    assert found
    login = api.post("/s/ST-A/verify", data={"phone": "+41795550011", "code": found.group(0)}, headers=evil)
    assert login.status_code == 403 and "set-cookie" not in login.headers and RESIDENT_COOKIE not in api.cookies
    # Signed-in forms are refused too, before their own CSRF check.
    assert api.post("/staff/logout", data={"csrf": "x"}, headers=evil).status_code == 403
    # The API is not for forms: a foreign form's text/plain body is no JSON object, and nothing is sent.
    plain = api.post(
        "/api/auth/code", content=b'{"phone": "+41795550012"}', headers=evil | {"Content-Type": "text/plain"}
    )
    assert plain.status_code == 422 and len(_texts(settings)) == 1
