"""Remote open without JavaScript: the slot's "Open…" is a link to a confirm step whose form needs a reason
(issue 17, finding 11); a form that arrives without one is sent to that step, not to the locker."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from web.conftest import web_login
from web.test_pages import stock, town

from helmet_cloud.models import LockerCommand
from helmet_cloud.settings import CloudSettings

__all__ = ["town"]  # the fixture, shared with test_pages.py


def test_open_goes_through_a_confirm_step_that_requires_a_reason(
    api: TestClient, settings: CloudSettings, town: Engine
) -> None:
    stock(town, "LK-0001", 2)
    csrf = web_login(api, settings, "technician")
    station = api.get("/tech/lockers/LK-0001").text
    assert 'href="/tech/lockers/LK-0001/open?slot=2&amp;back=/tech/lockers/LK-0001"' in station
    assert 'name="op" value="unlock"' not in station  # no one-tap open beside Disable
    confirm = api.get("/tech/lockers/LK-0001/open", params={"slot": 2, "back": "/tech/lockers/LK-0001"})
    assert confirm.status_code == 200
    assert 'name="reason" required' in confirm.text and 'value="unlock"' in confirm.text
    bare = api.post("/tech/lockers/LK-0001/commands", data={"csrf": csrf, "op": "unlock", "slot": 2})
    assert bare.status_code == 303
    assert bare.headers["location"] == "/tech/lockers/LK-0001/open?slot=2&back=%2Ftech%2Flockers%2FLK-0001"
    blank = api.post("/tech/lockers/LK-0001/commands", data={"csrf": csrf, "op": "unlock", "slot": 2, "reason": "  "})
    assert blank.headers["location"].startswith("/tech/lockers/LK-0001/open?slot=2")
    with Session(town) as s:
        assert s.exec(select(LockerCommand)).all() == []  # nothing went to the locker
    missing = api.get("/tech/lockers/LK-0001/open", params={"slot": 99})
    assert missing.status_code == 404 and "Locker LK-0001 has no slot 99." in missing.text
    assert api.get("/tech/lockers/LK-0404/open", params={"slot": 1}).status_code == 404
