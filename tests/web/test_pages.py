"""The pages over HTTP (no browser): sign-in and roles, CSRF, bad input, languages, the resident's pass, live stream.

A real app on a real database and a real broker; locker traffic goes through
the real ingest code on its own engine, as a separate ``helmet-cloud ingest``
process would write it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from support.cloud_events import Recorder, at, event, inbound, register_town, status
from support.cloud_users import user_headers
from web.conftest import add_user, web_login

from helmet_cloud.adapters.database import make_engine
from helmet_cloud.http.web import queries
from helmet_cloud.http.web.session import RESIDENT_COOKIE, STAFF_COOKIE, csrf_for
from helmet_cloud.ingest.ingestor import Ingestor
from helmet_cloud.models import Alert, IssuedPass, Locker
from helmet_cloud.services import rebalance_round
from helmet_cloud.services.enrolment import open_code
from helmet_cloud.settings import CloudSettings
from helmet_cloud.timeutil import utcnow

TOWN = {"LK-0001": ("ST-A", 6), "LK-0002": ("ST-B", 4)}


@pytest.fixture
def town(api: TestClient, settings: CloudSettings) -> Iterator[Engine]:
    """Two stations registered through the API; yields an engine for an ingest "in another process"."""
    register_town(api, user_headers(api, settings, role="admin"), TOWN)
    engine = make_engine(settings.database_url)
    yield engine
    engine.dispose()


def stock(engine: Engine, locker: str, helmets: int, first_seq: int = 1) -> None:
    ingest = Ingestor(engine, Recorder())
    ingest.handle(inbound([status(locker, at(0), online=True)]))
    ingest.handle(
        inbound(
            [
                event(locker, first_seq + i, at(i), "helmet.stocked", slot=i + 1, helmet_id=f"H-{locker[-1]}{i}")
                for i in range(helmets)
            ]
        )
    )


def test_staff_pages_redirect_to_sign_in_and_back(api: TestClient, settings: CloudSettings, town: Engine) -> None:
    resp = api.get("/staff/stations/ST-A")
    assert resp.status_code == 303 and resp.headers["location"] == "/staff/login?next=%2Fstaff%2Fstations%2FST-A"
    assert api.get("/").headers["location"] == "/staff/"
    add_user(settings, "sam", "staff")
    bad = api.post("/staff/login", data={"username": "sam", "password": "nope", "next": "/staff/"})
    assert bad.status_code == 401 and "Wrong username or password." in bad.text
    assert STAFF_COOKIE not in api.cookies
    ok = api.post("/staff/login", data={"username": "sam", "password": "s3cret pass", "next": "/staff/stations/ST-A"})
    assert ok.status_code == 303 and ok.headers["location"] == "/staff/stations/ST-A"
    page = api.get("/staff/login")
    assert "script-src 'self';" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "private, no-store"
    cookie = ok.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert api.get("/staff/stations/ST-A").status_code == 200
    # Sign-out needs the form's CSRF value; then the token no longer works.
    assert api.post("/staff/logout", data={}).status_code == 403
    token = api.cookies[STAFF_COOKIE]
    assert api.post("/staff/logout", data={"csrf": csrf_for(token)}).status_code == 303
    api.cookies.set(STAFF_COOKIE, token)
    assert api.get("/staff/").status_code == 303


def test_a_sign_in_never_redirects_off_the_site(api: TestClient, settings: CloudSettings) -> None:
    add_user(settings, "sam", "staff")
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        resp = api.post("/staff/login", data={"username": "sam", "password": "s3cret pass", "next": target})
        assert resp.headers["location"] == "/staff/"


def test_technicians_get_their_pages_but_not_the_staff_ones(
    api: TestClient, settings: CloudSettings, town: Engine
) -> None:
    web_login(api, settings, "technician")
    assert api.get("/tech/").status_code == 200
    assert api.get("/tech/lockers/LK-0001").status_code == 200
    assert api.get("/staff/rebalance").status_code == 200
    refused = api.get("/staff/alerts")
    assert refused.status_code == 403 and "may not see this page" in refused.text
    assert api.get("/staff/export/loans.csv").status_code == 403
    # A resident's token in the staff cookie is not a staff sign-in.
    api.cookies.clear()
    api.cookies.set(STAFF_COOKIE, resident_token(api, settings, "+41790000001"))
    assert api.get("/tech/").status_code == 303


def resident_token(api: TestClient, settings: CloudSettings, phone: str) -> str:
    assert api.post("/api/auth/code", json={"phone": phone}).status_code == 202
    code = last_code(settings, phone)
    return str(api.post("/api/auth/verify", json={"phone": phone, "code": code}).json()["token"])


def last_code(settings: CloudSettings, phone: str) -> str:
    lines = Path(settings.sms_backend.removeprefix("file:")).read_text().splitlines()
    texts = [json.loads(line)["text"] for line in lines if json.loads(line)["phone"] == phone]
    found = re.search(r"\d{6}", texts[-1])
    assert found
    return found.group(0)


def test_acknowledging_and_resolving_an_alert_needs_the_forms_csrf(
    api: TestClient, settings: CloudSettings, town: Engine
) -> None:
    with Session(town) as s:
        alert = Alert(
            kind="station_empty",
            severity="warning",
            subject_type="station",
            subject_id="ST-B",
            message="Station B has no helmets",
            opened_at=utcnow(),
            last_seen_at=utcnow(),
        )
        s.add(alert)
        s.commit()
        alert_id = alert.id
    csrf = web_login(api, settings, "staff")
    page = api.get("/staff/alerts")
    assert "Station B has no helmets" in page.text and f'value="{csrf}"' in page.text
    forged = api.post(f"/staff/alerts/{alert_id}/acknowledge", data={"csrf": "forged"})
    assert forged.status_code == 403 and "reload the page and try again" in forged.text
    with Session(town) as s:
        assert s.get(Alert, alert_id).acknowledged_at is None  # type: ignore[union-attr]
    done = api.post(f"/staff/alerts/{alert_id}/acknowledge", data={"csrf": csrf, "back": "/staff/"})
    assert done.status_code == 303 and done.headers["location"] == "/staff/"
    assert api.post(f"/staff/alerts/{alert_id}/resolve", data={"csrf": csrf}).status_code == 303
    with Session(town) as s:
        row = s.get(Alert, alert_id)
        assert row is not None and (row.acknowledged_by, row.resolved_by, row.status) == (
            "staff-web",
            "staff-web",
            "resolved",
        )
    # Acknowledging a resolved alert is refused with the API's reason, shown on the page.
    again = api.post(f"/staff/alerts/{alert_id}/acknowledge", data={"csrf": csrf})
    shown = api.get(again.headers["location"])
    assert f"alert {alert_id} is already resolved" in shown.text
    assert f"警报 {alert_id} 已经解决" in api.get(again.headers["location"] + "&lang=zh").text
    assert api.post("/staff/alerts/0/acknowledge", data={"csrf": csrf}).status_code == 422


def test_registering_a_locker_with_bad_input_changes_nothing(
    api: TestClient, settings: CloudSettings, town: Engine
) -> None:
    csrf = web_login(api, settings, "technician")
    bad = api.post(
        "/tech/lockers", data={"csrf": csrf, "locker_id": "not a locker", "station_id": "ST-A", "slot_count": 6}
    )
    assert bad.status_code == 422 and "Not done:" in bad.text
    taken = api.post(
        "/tech/lockers", data={"csrf": csrf, "locker_id": "LK-0001", "station_id": "ST-A", "slot_count": 6}
    )
    assert taken.status_code == 422 and "exists" in taken.text
    nowhere = api.post(
        "/tech/lockers", data={"csrf": csrf, "locker_id": "LK-0009", "station_id": "ST-Z", "slot_count": 6}
    )
    assert nowhere.status_code == 422 and "no station ST-Z" in nowhere.text
    assert (
        api.post(
            # The protocol's limit (MAX_SLOTS = 256) is the pages' and the API's too.
            "/tech/lockers",
            data={"csrf": csrf, "locker_id": "LK-0009", "station_id": "ST-A", "slot_count": 257},
        ).status_code
        == 422
    )
    with Session(town) as s:
        assert s.get(Locker, "LK-0009") is None
    ok = api.post("/tech/lockers", data={"csrf": csrf, "locker_id": "lk-0009", "station_id": "ST-B", "slot_count": 4})
    assert ok.status_code == 200 and "Locker LK-0009 is registered" in ok.text
    with Session(town) as s:
        assert (s.get(Locker, "LK-0009") or Locker(station_id="", slot_count=1, id="")).station_id == "ST-B"


def test_commands_to_an_offline_locker_are_refused_on_the_page(
    api: TestClient, settings: CloudSettings, town: Engine
) -> None:
    csrf = web_login(api, settings, "technician")
    resp = api.post("/tech/lockers/LK-0001/commands", data={"csrf": csrf, "op": "disable_slot", "slot": 2})
    assert resp.status_code == 303
    assert "locker LK-0001 is offline" in api.get(resp.headers["location"]).text
    assert "头盔柜 LK-0001 离线" in api.get(resp.headers["location"] + "&lang=zh").text


def test_a_resident_signs_in_by_code_and_gets_a_pass(api: TestClient, settings: CloudSettings, town: Engine) -> None:
    stock(town, "LK-0001", 3)
    first = api.get("/s/ST-A")
    assert "3 helmets here" in first.text and 'type="tel"' in first.text
    assert api.post("/s/ST-A/code", data={"phone": "call me"}).status_code == 422
    asked = api.post("/s/ST-A/code", data={"phone": "+41 79 555 00 11"})
    assert asked.status_code == 200 and 'autocomplete="one-time-code"' in asked.text
    wrong = api.post("/s/ST-A/verify", data={"phone": "+41795550011", "code": "000000"})
    assert wrong.status_code == 401 and RESIDENT_COOKIE not in api.cookies
    code = last_code(settings, "+41795550011")
    signed = api.post("/s/ST-A/verify", data={"phone": "+41795550011", "code": code})
    assert signed.status_code == 303 and RESIDENT_COOKIE in api.cookies
    home = api.get("/s/ST-A")
    assert "How many helmets?" in home.text
    assert re.findall(r'name="quantity" value="(\d)"', home.text) == ["1", "2", "3"]  # up to the resident's limit
    csrf = csrf_for(api.cookies[RESIDENT_COOKIE])
    assert api.post("/s/ST-A/pass", data={"quantity": 2}).status_code == 403  # no CSRF value
    made = api.post("/s/ST-A/pass", data={"quantity": 2, "csrf": csrf})
    assert made.status_code == 303
    page = api.get(made.headers["location"])
    assert page.status_code == 200 and '<svg role="img"' in page.text and "data-expires" in page.text
    with Session(town) as s:
        [issued] = s.exec(select(IssuedPass)).all()
    assert (issued.quantity, issued.station_id) == (2, "ST-A")
    assert made.headers["location"] == f"/s/ST-A/pass/{issued.id}"
    # The two helmets on the unused pass count against the limit of three, as the pass API counts them.
    assert re.findall(r'name="quantity" value="(\d)"', api.get("/s/ST-A").text) == ["1"]
    # LK-0001 said it is online: "open now" is offered.
    assert 'name="locker_id" value="LK-0001"' in page.text
    # Another resident cannot see this pass.
    api.cookies.set(RESIDENT_COOKIE, resident_token(api, settings, "+41790000002"))
    assert api.get(made.headers["location"]).status_code == 404


def test_a_resident_withdraws_an_unused_pass_from_its_page(
    api: TestClient, settings: CloudSettings, town: Engine
) -> None:
    stock(town, "LK-0001", 3)
    api.cookies.set(RESIDENT_COOKIE, resident_token(api, settings, "+41790000031"))
    csrf = csrf_for(api.cookies[RESIDENT_COOKIE])
    here = api.post("/s/ST-A/pass", data={"quantity": 2, "csrf": csrf}).headers["location"]
    page = api.get(here)
    assert f'action="{here}/withdraw"' in page.text and "Withdraw this pass" in page.text
    assert api.post(f"{here}/withdraw", data={}).status_code == 403  # no CSRF value
    done = api.post(f"{here}/withdraw", data={"csrf": csrf})
    assert done.status_code == 303 and done.headers["location"] == here
    after = api.get(here).text
    assert "You withdrew this pass" in after and "/withdraw" not in after
    assert re.search(r'<button type="submit" class="big" data-pass-action disabled>Open now</button>', after)
    assert 'id="pass-qr"' not in after  # no code left to hold up to a camera
    # Its two helmets no longer count against the limit of three.
    assert re.findall(r'name="quantity" value="(\d)"', api.get("/s/ST-A").text) == ["1", "2", "3"]
    # "Open now" from a page opened before the withdrawal says why nothing opens.
    stale = api.post(f"{here}/open", data={"csrf": csrf, "locker_id": "LK-0001"})
    assert "withdrawn" in api.get(stale.headers["location"]).text


def test_pages_speak_the_browsers_language_and_switch_by_link(api: TestClient, town: Engine) -> None:
    zh = api.get("/s/ST-A", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
    assert '<html lang="zh-Hans">' in zh.text and "登录后借用" in zh.text and 'href="?lang=en"' in zh.text
    en = api.get("/s/ST-A?lang=en", headers={"Accept-Language": "zh-CN"})
    assert '<html lang="en">' in en.text and "Sign in to borrow" in en.text
    assert "helmet_lang=en" in en.headers["set-cookie"]
    # The choice sticks although the browser still prefers Chinese.
    assert "Sign in to borrow" in api.get("/s/ST-A", headers={"Accept-Language": "zh-CN"}).text
    helmet = api.get("/h/H-00042?lang=zh")
    assert helmet.status_code == 200 and "如何归还" in helmet.text


def test_unknown_stations_helmets_and_filters_get_clear_errors(
    api: TestClient, settings: CloudSettings, town: Engine
) -> None:
    missing = api.get("/s/ST-NOPE")
    assert missing.status_code == 404 and "does not exist" in missing.text
    assert api.get("/h/not-a-helmet").status_code == 404
    web_login(api, settings, "staff")
    assert api.get("/staff/stations/ST-NOPE").status_code == 404
    assert api.get("/staff/loans?status=bogus").status_code == 422
    assert api.get("/staff/alerts?status=bogus").status_code == 422


def test_rebalancing_moves_helmets_from_a_full_station_to_an_empty_one(
    api: TestClient, settings: CloudSettings, town: Engine
) -> None:
    stock(town, "LK-0001", 6)
    Ingestor(town, Recorder()).handle(inbound([status("LK-0002", at(0), online=True)]))
    web_login(api, settings, "technician")
    page = api.get("/staff/rebalance").text
    rows = re.findall(r'<tr class="move" id="move-ST-A-ST-B">(.*?)</tr>', page, re.S)
    assert len(rows) == 1
    cells = [" ".join(re.sub(r"<[^>]+>", " ", c).split()) for c in re.findall(r"<td[^>]*>(.*?)</td>", rows[0], re.S)]
    assert cells[0:3] == ["1", "Station A ST-A", "Station B ST-B"]


def test_csv_export_buttons_work_with_the_page_sign_in(api: TestClient, settings: CloudSettings, town: Engine) -> None:
    stock(town, "LK-0001", 2)
    web_login(api, settings, "staff")
    events = api.get("/staff/export/events.csv")
    assert events.status_code == 200 and events.headers["content-type"].startswith("text/csv")
    assert len(events.text.strip().splitlines()) == 1 + 2  # header and the two stockings
    assert api.get("/staff/export/loans.csv?status=open").text.startswith("id,helmet_id")


def test_the_stream_announces_a_change_written_by_another_process(
    api: TestClient, settings: CloudSettings, town: Engine
) -> None:
    web_login(api, settings, "staff")
    since = re.search(r'data-watermark="(\w+)"', api.get("/staff/").text)
    assert since
    with api.stream("GET", f"/staff/stream?since={since.group(1)}") as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        lines = resp.iter_lines()
        assert next(lines).startswith(": open")
        stock(town, "LK-0002", 1)  # written through its own engine, as an ingest process would
        # Before the stream's 15 s are up (the browser test holds the page to 2 s).
        assert "event: change" in lines


def test_technicians_register_helmets_print_their_labels_and_retire_one(
    api: TestClient, settings: CloudSettings, town: Engine
) -> None:
    csrf = web_login(api, settings, "technician")
    bad = api.post("/tech/helmets", data={"csrf": csrf, "count": 3, "prefix": "X-"})
    assert bad.status_code == 422 and "Not done:" in bad.text
    done = api.post("/tech/helmets", data={"csrf": csrf, "count": 3, "prefix": "H-"})
    assert done.status_code == 200 and "3 helmets registered" in done.text
    labels = re.search(r'href="(/tech/labels\.pdf\?[^"]+)"', done.text)
    assert labels and "H-00001" in labels.group(1) and "H-00003" in labels.group(1)
    pdf = api.get(labels.group(1).replace("&amp;", "&"))
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf" and pdf.content[:4] == b"%PDF"
    assert api.get("/tech/labels.pdf?first=H-90000&last=H-90009").status_code == 404
    again = api.post("/tech/helmets", data={"csrf": csrf, "ids": "H-00002\nH-00009"})
    assert again.status_code == 422 and "already registered: H-00002" in again.text

    retired = api.post("/tech/helmets/retire", data={"csrf": csrf, "helmet_id": "h-00002", "reason": "cracked shell"})
    assert retired.status_code == 303 and retired.headers["location"] == "/tech/?helmets=retired"
    listed = api.get("/tech/?helmets=retired").text
    assert 'id="helmet-H-00002"' in listed and "cracked shell" in listed and 'id="helmet-H-00001"' not in listed
    twice = api.post("/tech/helmets/retire", data={"csrf": csrf, "helmet_id": "H-00002"})
    assert "helmet H-00002 is already retired" in api.get(twice.headers["location"]).text
    inspected = api.get("/tech/helmets/H-00002")
    assert inspected.status_code == 200 and "cracked shell" in inspected.text and "technician-web" in inspected.text
    assert api.get("/tech/helmets/H-99999").status_code == 404


def test_an_enrolment_code_for_a_locker_is_shown_as_a_qr_code(
    api: TestClient, settings: CloudSettings, town: Engine
) -> None:
    csrf = web_login(api, settings, "technician")
    shown = api.post("/tech/lockers/LK-0001/enrolment", data={"csrf": csrf})
    assert shown.status_code == 200 and '<svg role="img"' in shown.text
    code = re.search(r"<code>([^<]+)</code>", shown.text)
    assert code
    with Session(town) as s:
        assert open_code(s, "LK-0001", code.group(1)) is not None
    assert api.post("/tech/lockers/LK-0404/enrolment", data={"csrf": csrf}).status_code == 404
    assert api.post("/tech/lockers/LK-0001/enrolment", data={}).status_code == 403


def test_flows_are_counted_per_hour_by_the_database(api: TestClient, town: Engine) -> None:
    # Half past an hour that is over, so no event lies in the future and none crosses an hour by accident.
    now = utcnow().replace(minute=30, second=0, microsecond=0) - timedelta(hours=1)
    ingest = Ingestor(town, Recorder())
    ingest.handle(inbound([status("LK-0001", now, online=True)]))
    ingest.handle(
        inbound(
            [
                event("LK-0001", 1, now - timedelta(hours=3), "helmet.stocked", slot=1, helmet_id="H-1"),
                event("LK-0001", 2, now - timedelta(hours=2, minutes=50), "helmet.borrowed", slot=1, helmet_id="H-1"),
                event("LK-0001", 3, now - timedelta(minutes=20), "helmet.returned", slot=1, helmet_id="H-1"),
                event("LK-0001", 4, now - timedelta(minutes=10), "helmet.borrowed", slot=1, helmet_id="H-1"),
                event("LK-0002", 1, now - timedelta(minutes=5), "helmet.stocked", slot=1, helmet_id="H-2"),
            ]
        )
    )
    with Session(town) as s:
        counts = sorted(queries.flows_per_hour(s, now - timedelta(days=1)))
        assert counts == [
            (now.replace(minute=0) - timedelta(hours=3), "helmet.borrowed", 1),
            (now.replace(minute=0), "helmet.borrowed", 1),
            (now.replace(minute=0), "helmet.returned", 1),
        ]
        assert queries.flows_per_hour(s, now - timedelta(days=1), ["LK-0002"]) == []
        assert rebalance_round.demand(s, now - timedelta(hours=1)) == {"ST-A": (1, 1)}


def test_the_dashboard_charts_come_with_their_numbers(api: TestClient, settings: CloudSettings, town: Engine) -> None:
    now = utcnow()
    ingest = Ingestor(town, Recorder())
    ingest.handle(
        inbound(
            [
                event("LK-0001", 1, now - timedelta(minutes=3), "helmet.stocked", slot=1, helmet_id="H-1"),
                event("LK-0001", 2, now - timedelta(minutes=2), "helmet.borrowed", slot=1, helmet_id="H-1"),
            ]
        )
    )
    web_login(api, settings, "staff")
    page = api.get("/staff/?lang=zh").text
    assert 'aria-label="站点地图"' in page
    hourly = re.search(r"<caption>每小时借出与归还</caption>(.*?)</table>", page, re.S)
    assert hourly
    rows = re.findall(
        r'<tr><th scope="row">(\d\d)</th><td class="num">(\d+)</td><td class="num">(\d+)</td></tr>', hourly.group(1)
    )
    assert len(rows) == 24 and sum(int(b) for _, b, _ in rows) == 1
    assert ("1", "0") in [r[1:] for r in rows[-2:]]  # this hour (or the last, right after the hour turned)


def test_the_helmet_page_lists_the_stations_nearest_to_the_phone(api: TestClient, town: Engine) -> None:
    ingest = Ingestor(town, Recorder())
    ingest.handle(inbound([status("LK-0001", at(0), online=True), status("LK-0002", at(0), online=True)]))
    # ST-A is at 47.37 and ST-B at 47.38 (register_town): a phone just north of ST-B sees ST-B first.
    near_b = api.get("/h/H-00042?near=47.3850,8.54")
    names = re.findall(r"<strong>(Station [AB])</strong>", near_b.text)
    assert names == ["Station B", "Station A"] and "Nearest to where you are." in near_b.text
    assert re.findall(r"<strong>(Station [AB])</strong>", api.get("/h/H-00042?near=47.30,8.54").text) == [
        "Station A",
        "Station B",
    ]
    for bad in ("91,8", "47.3;8.5", "x,y", "47.3,8.5,1"):
        resp = api.get(f"/h/H-00042?near={bad}")
        assert resp.status_code == 422 and "not a place on Earth" in resp.text


def test_a_crafted_error_link_shows_nothing_and_a_signed_one_only_to_its_session(
    api: TestClient, settings: CloudSettings, town: Engine
) -> None:
    """The red box used to print ``?error=`` as it came, so a link could put any wording in an official alert."""
    web_login(api, settings, "staff")
    crafted = api.get("/staff/alerts", params={"error": "Your account is blocked: call +1 900 555 0100"})
    assert "blocked" not in crafted.text and 'class="notice error"' not in crafted.text
    csrf = csrf_for(api.cookies["helmet_staff"])
    location = api.post("/staff/alerts/0/acknowledge", data={"csrf": csrf}).headers.get("location")
    if location is None:  # refused before the service: nothing carried
        return
    assert "error=" in location
    with TestClient(api.app, base_url="https://testserver", follow_redirects=False) as other:
        web_login(other, settings, "admin")
        assert 'class="notice error"' not in other.get(location).text  # signed for another session
