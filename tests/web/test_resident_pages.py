"""The resident's pages over HTTP (issue 17, findings 1, 3, 4, 5 and the ``?error=`` part of 7).

A real app on a real database and broker; the lockers' traffic goes through the real ingest code, as a
separate ``helmet-cloud ingest`` process would write it. The browser tests of the same findings are in
test_browser_resident.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from support.cloud_events import Recorder, at, event, inbound, register_town, status
from support.cloud_users import user_headers
from web.test_pages import resident_token, stock

from helmet_cloud.adapters.database import make_engine
from helmet_cloud.http.web.session import RESIDENT_COOKIE, csrf_for
from helmet_cloud.ingest.ingestor import Ingestor
from helmet_cloud.models import IssuedPass, LockerCommand, Town
from helmet_cloud.settings import CloudSettings
from helmet_protocol.messages import CommandAck

# ST-A (LK-0001) and ST-B (LK-0002) 1.1 km apart, ST-C (LK-0003) 2.2 km from ST-A.
TOWN = {"LK-0001": ("ST-A", 4), "LK-0002": ("ST-B", 4), "LK-0003": ("ST-C", 4)}


@pytest.fixture
def town(api: TestClient, settings: CloudSettings) -> Iterator[Engine]:
    register_town(api, user_headers(api, settings, role="admin"), TOWN)
    engine = make_engine(settings.database_url)
    yield engine
    engine.dispose()


def sign_in(api: TestClient, settings: CloudSettings, phone: str) -> str:
    api.cookies.set(RESIDENT_COOKIE, resident_token(api, settings, phone))
    return csrf_for(api.cookies[RESIDENT_COOKIE])


def quantities(html: str) -> list[str]:
    return re.findall(r'name="quantity" value="(\d)"', html)


def test_an_unused_pass_stays_listed_with_its_helmets_counted_honestly(
    api: TestClient, settings: CloudSettings, town: Engine
) -> None:
    """Finding 1: after leaving the pass page it is still on the station page, with show QR, open now and
    withdraw; the allowance message says a pass holds the helmets, never "you hold as many as you may"
    above "you have no helmet out"."""
    stock(town, "LK-0001", 4)
    csrf = sign_in(api, settings, "+41790000101")
    made = api.post("/s/ST-A/pass", data={"quantity": 3, "csrf": csrf}).headers["location"]
    pass_id = made.rsplit("/", 1)[1]
    home = api.get("/s/ST-A").text  # the resident left the pass page
    assert quantities(home) == []  # the limit is 3
    assert "A pass for 3 helmets not yet taken" in home
    assert f'href="{made}"' in home and "Show QR" in home
    assert f'action="{made}/open"' in home and f'action="{made}/withdraw"' in home
    assert "3 helmets on your open passes are not yet taken." in home
    assert "You already hold as many helmets as you may" not in home
    assert "You have no helmet out." in home  # true, and no longer contradicted
    me = api.get("/api/me", headers={"Authorization": f"Bearer {api.cookies[RESIDENT_COOKIE]}"}).json()
    assert [(p["pass_id"], p["quantity"], p["phase"]) for p in me["open_passes"]] == [(pass_id, 3, "ready")]
    assert (me["helmets_on_unused_passes"], me["may_borrow"]) == (3, 0)
    # Withdrawn from the list, it is gone from both, and the helmets may be asked for again.
    done = api.post(f"{made}/withdraw", data={"csrf": csrf, "back": "station"})
    assert done.headers["location"] == "/s/ST-A"
    again = api.get("/s/ST-A").text
    assert "not yet taken" not in again and quantities(again) == ["1", "2", "3"]
    me = api.get("/api/me", headers={"Authorization": f"Bearer {api.cookies[RESIDENT_COOKIE]}"}).json()
    assert me["open_passes"] == [] and me["may_borrow"] == 3


def test_the_error_box_shows_only_messages_of_the_fixed_table(
    api: TestClient, settings: CloudSettings, town: Engine
) -> None:
    """Finding 7 (part): a crafted ``?error=`` shows nothing; the page's own keys show their message."""
    stock(town, "LK-0001", 4)
    csrf = sign_in(api, settings, "+41790000102")
    crafted = api.get("/s/ST-A", params={"error": "Your account is blocked: call +1 555 0100"}).text
    assert "blocked" not in crafted and 'role="alert"' not in crafted
    made = api.post("/s/ST-A/pass", data={"quantity": 3, "csrf": csrf}).headers["location"]
    assert "blocked" not in api.get(made, params={"error": "Your account is blocked"}).text
    refused = api.post("/s/ST-A/pass", data={"quantity": 1, "csrf": csrf})
    assert refused.headers["location"] == "/s/ST-A?error=pass-limit"
    box = re.search(r'<p role="alert" class="notice error">([^<]+)</p>', api.get(refused.headers["location"]).text)
    assert box and "counting your open passes" in box.group(1)
    from helmet_cloud.http.web.resident import ERROR_KEYS  # after the checks that run on any code

    for key in ERROR_KEYS:  # every key the pages send has its words
        assert 'role="alert"' in api.get("/s/ST-A", params={"error": key}).text, key


def test_an_empty_station_lists_other_stations_with_helmets_and_directions(
    api: TestClient, settings: CloudSettings, town: Engine
) -> None:
    """Finding 3: "no helmets here" lists the nearest stations that have some, not this one; the return points
    are the stations with free slots, this one labelled "here"; every card is a link to directions."""
    stock(town, "LK-0003", 2)
    ingest = Ingestor(town, Recorder())
    ingest.handle(inbound([status("LK-0001", at(0), online=True), status("LK-0002", at(0), online=True)]))
    sign_in(api, settings, "+41790000103")
    page = api.get("/s/ST-A").text
    assert "No helmets here right now. These stations nearby have some:" in page
    with_helmets = page[page.index('class="cardlist nearest with-helmets"') :].split("</ul>", 1)[0]
    assert re.findall(r"<strong>([^<]+)</strong>", with_helmets) == ["Station C"]  # ST-B is empty, ST-A is here
    assert "2 helmets · 2.2 km" in with_helmets
    assert 'href="https://www.openstreetmap.org/directions?to=47.390000,8.540000"' in with_helmets
    assert 'href="geo:47.390000,8.540000"' in with_helmets
    returns = page[page.index('class="cardlist nearest with-room"') :].split("</ul>", 1)[0]
    names = re.findall(r"<strong>([^<]+)</strong>( <span class=\"badge\">here</span>)?", returns)
    assert names == [("Station A", ' <span class="badge">here</span>'), ("Station B", ""), ("Station C", "")]
    assert returns.count('<a class="place" href="https://www.openstreetmap.org/directions?to=') == 3


def ack(engine: Engine, cmd_id: str, *, opened: list[int]) -> None:
    data = {"message": f"opened {len(opened)} slot(s)", "opened": opened}
    payload = CommandAck(cmd_id=cmd_id, ok=True, data=data, ts=datetime.now(UTC)).to_json()
    Ingestor(engine, Recorder()).handle(inbound([("helmet/v1/LK-0001/cmd/ack", payload)]))


def test_the_pass_page_follows_open_now_to_used_up(api: TestClient, settings: CloudSettings, town: Engine) -> None:
    """Finding 4: after "Open now" the page says which slots opened and how many helmets remain; once used
    up the code is gone, the buttons are disabled and it offers a new pass; its state endpoint says the same."""
    stock(town, "LK-0001", 4)
    csrf = sign_in(api, settings, "+41790000104")
    here = api.post("/s/ST-A/pass", data={"quantity": 2, "csrf": csrf}).headers["location"]
    ready = api.get(f"{here}/state").json()
    assert (ready["phase"], ready["remaining"], ready["final"]) == ("ready", 2, False)
    sent = api.post(f"{here}/open", data={"csrf": csrf, "locker_id": "LK-0001"}).headers["location"]
    assert api.get(f"{here}/state").json()["phase"] == "sent"
    with Session(town) as s:
        [cmd] = s.exec(select(LockerCommand).where(LockerCommand.op == "borrow")).all()
        issued = s.exec(select(IssuedPass)).one()
    ack(town, cmd.id, opened=[1, 2])
    page = api.get(sent).text
    assert "Slots 1, 2 are open: take your helmets." in page and "2 helmets left to take on this pass." in page
    assert 'id="pass-qr"' not in page
    assert re.search(r"data-pass-action disabled>Open now<", page)
    key = api.get(f"{here}/state").json()["key"]
    # One helmet taken, the other door never opened.
    ingest = Ingestor(town, Recorder())
    taken = {"pass_id": issued.id, "resident_id": issued.holder_id}
    ingest.handle(inbound([event("LK-0001", 10, at(10), "helmet.borrowed", slot=1, helmet_id="H-10", **taken)]))
    one = api.get(f"{here}/state").json()
    assert (one["phase"], one["slots"], one["taken"], one["remaining"]) == ("open", [1, 2], 1, 1)
    assert one["key"] != key  # pass.js reloads the page
    ingest.handle(inbound([event("LK-0001", 11, at(11), "unlock.timeout", slot=2, helmet_id="H-11", **taken)]))
    done = api.get(sent).text
    assert "This pass is used up." in done and "You took 1 helmet (slots 1, 2)." in done
    assert "0 helmets left on this pass." in done
    assert re.search(r'<a class="button" href="/s/ST-A" data-new-pass >Get a new pass</a>', done)
    assert re.search(r"data-pass-action disabled>Open now<", done) and "/withdraw" not in done
    state = api.get(f"{here}/state").json()
    assert (state["phase"], state["final"], state["remaining"]) == ("used", True, 0)


def test_an_expired_pass_offers_a_new_one_and_opens_nothing(
    api: TestClient, settings: CloudSettings, town: Engine
) -> None:
    """Finding 4: at expiry "Open now" is not clickable and the page offers "Get a new pass"."""
    stock(town, "LK-0001", 4)
    csrf = sign_in(api, settings, "+41790000105")
    here = api.post("/s/ST-A/pass", data={"quantity": 1, "csrf": csrf}).headers["location"]
    with Session(town) as s:
        issued = s.exec(select(IssuedPass)).one()
        issued.expires_at = datetime.now(UTC) - timedelta(seconds=1)
        s.add(issued)
        s.commit()
    page = api.get(here).text
    assert "This pass has expired. Get a new one." in page and 'id="pass-qr"' not in page
    assert re.search(r"data-pass-action disabled>Open now<", page)
    assert re.search(r'<a class="button" href="/s/ST-A" data-new-pass >Get a new pass</a>', page)
    assert "not yet taken" not in api.get("/s/ST-A").text  # no longer an open pass
    refused = api.post(f"{here}/open", data={"csrf": csrf, "locker_id": "LK-0001"})
    assert refused.headers["location"].endswith("?error=pass-expired")


def test_loans_say_when_to_return_in_the_towns_time_and_warn_before_overdue(
    api: TestClient, settings: CloudSettings, town: Engine
) -> None:
    """Finding 5: "return by" is the borrow plus the overdue limit (24 h), on the town's clock; the last
    2.4 hours (a tenth, at least an hour) say "due soon", past it "overdue"."""
    with Session(town) as s:
        zurich = s.get(Town, "default")
        assert zurich is not None
        zurich.timezone = "Asia/Shanghai"  # UTC+8 all year
        s.add(zurich)
        s.commit()
    stock(town, "LK-0001", 4)
    csrf = sign_in(api, settings, "+41790000106")
    api.post("/s/ST-A/pass", data={"quantity": 3, "csrf": csrf})
    with Session(town) as s:
        issued = s.exec(select(IssuedPass)).one()
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    fields = {"pass_id": issued.id, "resident_id": issued.holder_id}
    borrowed = [now - timedelta(hours=1), now - timedelta(hours=22), now - timedelta(hours=25)]
    Ingestor(town, Recorder()).handle(
        inbound(
            [
                status("LK-0001", now, online=True),
                *(
                    event("LK-0001", 10 + i, ts, "helmet.borrowed", slot=i + 1, helmet_id=f"H-1{i}", **fields)
                    for i, ts in enumerate(borrowed)
                ),
            ]
        )
    )
    page = api.get("/s/ST-A").text
    row = r'<li class="loan due-(\w+)">.*?<strong>(H-\d+)</strong>.*?Return by ([\d: -]+)</span>'
    loans = re.findall(row, page, re.S)
    local = [(ts + timedelta(hours=24 + 8)).strftime("%m-%d %H:%M") for ts in borrowed]
    assert loans == [("in_time", "H-10", local[0]), ("soon", "H-11", local[1]), ("overdue", "H-12", local[2])]
    assert "Due soon" in page and "Overdue" in page


def test_another_residents_pass_cannot_be_opened_or_probed(
    api: TestClient, settings: CloudSettings, town: Engine
) -> None:
    """ "Open now" on someone else's pass id is "no such pass": nothing sent, and no word of that pass's state."""
    stock(town, "LK-0001", 2)
    csrf = sign_in(api, settings, "+41790000111")
    made = api.post("/s/ST-A/pass", data={"quantity": 1, "csrf": csrf}).headers["location"]
    assert api.post(f"{made}/withdraw", data={"csrf": csrf}).status_code == 303  # now withdrawn
    other = sign_in(api, settings, "+41790000112")
    probe = api.post(f"{made}/open", data={"csrf": other, "locker_id": "LK-0001"})
    assert probe.status_code == 404 and "withdrawn" not in probe.headers.get("location", "")
