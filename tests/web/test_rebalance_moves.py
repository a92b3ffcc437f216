"""The rebalancing round ticked off: moves recorded done through the API and the page's Done form.

A real app on a real database and broker; locker traffic goes through the real ingest code, as a separate
``helmet-cloud ingest`` process would write it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from support.cloud_events import Recorder, at, event, inbound, register_town, status
from support.cloud_users import user_headers
from web.conftest import web_login

from helmet_cloud.adapters.database import make_engine
from helmet_cloud.ingest.ingestor import Ingestor
from helmet_cloud.models import RebalanceMove
from helmet_cloud.services.watermark import read_watermark
from helmet_cloud.settings import CloudSettings
from helmet_cloud.timeutil import utcnow

TOWN = {"LK-0001": ("ST-A", 6), "LK-0002": ("ST-B", 6)}
A_TO_B = {"source": "ST-A", "target": "ST-B"}


@pytest.fixture
def town(api: TestClient, settings: CloudSettings) -> Iterator[Engine]:
    """ST-A full (6 of 6), ST-B empty and online: the advice is one helmet from A to B."""
    register_town(api, user_headers(api, settings, role="admin"), TOWN)
    engine = make_engine(settings.database_url)
    ingest = Ingestor(engine, Recorder())
    ingest.handle(inbound([status("LK-0001", at(0), online=True), status("LK-0002", at(0), online=True)]))
    ingest.handle(
        inbound([event("LK-0001", i + 1, at(i), "helmet.stocked", slot=i + 1, helmet_id=f"H-A{i}") for i in range(6)])
    )
    yield engine
    engine.dispose()


def todo(round_: dict[str, object]) -> list[tuple[object, object, object]]:
    return [(m["source"], m["target"], m["advised"]) for m in round_["moves"] if m["done"] is None]  # type: ignore[attr-defined, index]


def test_a_move_recorded_done_stays_done_for_the_round_after_the_helmets_moved(
    api: TestClient, settings: CloudSettings, town: Engine
) -> None:
    tech = user_headers(api, settings, role="technician", username="tex")
    before = api.get("/api/rebalance", headers=tech).json()
    assert todo(before) == [("ST-A", "ST-B", 1)]
    assert before["moves"][0]["source_name"] == "Station A" and before["moves"][0]["km"] > 0

    resp = api.post("/api/rebalance/moves", headers=tech, json={**A_TO_B, "moved": 2})
    assert resp.status_code == 200, resp.text
    done = resp.json()
    assert (done["moved"], done["advised"], done["done_by"]) == (2, 1, "tex")

    # The counts have not changed yet (helmets in the van): the advice still asks A to B, the round shows it done.
    during = api.get("/api/rebalance", headers=tech).json()
    assert todo(during) == []
    assert [(m["source"], m["target"], m["done"]["moved"]) for m in during["moves"]] == [("ST-A", "ST-B", 2)]

    # The helmets are moved: A loses two, B gets them. The advice no longer lists A to B; the round still does.
    ingest = Ingestor(town, Recorder())
    ingest.handle(
        inbound(
            [
                event("LK-0001", 7, at(10), "helmet.removed", slot=1, helmet_id="H-A0"),
                event("LK-0001", 8, at(10.1), "helmet.removed", slot=2, helmet_id="H-A1"),
                event("LK-0002", 1, at(11), "helmet.stocked", slot=1, helmet_id="H-A0"),
                event("LK-0002", 2, at(11.1), "helmet.stocked", slot=2, helmet_id="H-A1"),
            ]
        )
    )
    after = api.get("/api/rebalance", headers=tech).json()
    assert todo(after) == []
    assert [(m["source"], m["done"]["moved"], m["advised"]) for m in after["moves"]] == [("ST-A", 2, None)]

    audit = api.get("/api/audit?action=rebalance.move_done", headers=user_headers(api, settings, role="staff")).json()
    assert [(e["actor"], e["role"], e["subject_type"]) for e in audit] == [("tex", "technician", "rebalance_move")]
    assert audit[0]["detail"] == {"from": "ST-A", "to": "ST-B", "moved": 2, "advised": 1, "round": after["day"]}


def test_recording_a_move_again_corrects_its_number_and_the_audit_keeps_the_old_one(
    api: TestClient, settings: CloudSettings, town: Engine
) -> None:
    tech = user_headers(api, settings, role="technician", username="tex")
    marks = [read_watermark(town)]
    assert api.post("/api/rebalance/moves", headers=tech, json={**A_TO_B, "moved": 3}).status_code == 200
    marks.append(read_watermark(town))
    again = api.post("/api/rebalance/moves", headers=tech, json={**A_TO_B, "moved": 1})
    assert again.status_code == 200 and again.json()["moved"] == 1
    marks.append(read_watermark(town))
    assert len(set(marks)) == 3  # live pages fetch the round again after each
    with Session(town) as s:
        assert [r.moved for r in s.exec(select(RebalanceMove)).all()] == [1]
    audit = api.get("/api/audit?action=rebalance.move_done", headers=user_headers(api, settings, role="staff")).json()
    assert [e["detail"].get("moved_before") for e in audit] == [3, None]  # newest first


def test_a_move_done_yesterday_does_not_count_today(api: TestClient, settings: CloudSettings, town: Engine) -> None:
    tech = user_headers(api, settings, role="technician", username="tex")
    day = api.get("/api/rebalance", headers=tech).json()["day"]
    with Session(town) as s:
        s.add(
            RebalanceMove(
                round_day=date.fromisoformat(day) - timedelta(days=1),
                source_station_id="ST-A",
                target_station_id="ST-B",
                moved=1,
                done_by="tex",
                done_at=utcnow() - timedelta(days=1),
            )
        )
        s.commit()
    assert todo(api.get("/api/rebalance", headers=tech).json()) == [("ST-A", "ST-B", 1)]


def test_moves_that_cannot_be_recorded_are_refused(api: TestClient, settings: CloudSettings, town: Engine) -> None:
    tech = user_headers(api, settings, role="technician", username="tex")
    same = api.post("/api/rebalance/moves", headers=tech, json={"source": "ST-A", "target": "ST-A", "moved": 1})
    assert same.status_code == 422 and same.json()["detail"] == "a move needs two different stations"
    unknown = api.post("/api/rebalance/moves", headers=tech, json={"source": "ST-A", "target": "ST-X", "moved": 1})
    assert unknown.status_code == 404 and unknown.json()["detail"] == "no station ST-X"
    assert api.post("/api/rebalance/moves", headers=tech, json={**A_TO_B, "moved": -1}).status_code == 422
    assert api.post("/api/rebalance/moves", json={**A_TO_B, "moved": 1}).status_code == 401
    assert api.get("/api/rebalance").status_code == 401
    with Session(town) as s:
        assert s.exec(select(RebalanceMove)).all() == []


def test_the_pages_done_button_records_the_move_and_shows_it_done(
    api: TestClient, settings: CloudSettings, town: Engine
) -> None:
    csrf = web_login(api, settings, "technician")
    page = api.get("/staff/rebalance").text
    form = re.search(
        r'<form method="post" action="/staff/rebalance/moves" class="no-print move-form">(.*?)</form>', page, re.S
    )
    assert form and 'name="moved"' in form.group(1) and 'value="1"' in form.group(1)
    assert ">Done</button>" in form.group(1)
    assert api.post("/staff/rebalance/moves", data={**A_TO_B, "moved": "1"}).status_code == 403  # no CSRF value

    resp = api.post("/staff/rebalance/moves", data={"csrf": csrf, **A_TO_B, "moved": "2", "advised": "1"})
    assert resp.status_code == 303 and resp.headers["location"] == "/staff/rebalance#done-ST-A-ST-B"
    page = api.get("/staff/rebalance").text
    row = re.search(r'<tr class="move is-done" id="done-ST-A-ST-B">(.*?)</tr>', page, re.S)
    assert row and "2 helmets moved by technician-web at" in " ".join(row.group(1).split())
    assert 'class="no-print move-form"' not in page  # nothing left to do
    assert "☑" in row.group(1)  # the printout ticks it

    refused = api.post("/staff/rebalance/moves", data={"csrf": csrf, "source": "ST-A", "target": "ST-A", "moved": "1"})
    assert refused.status_code == 422 and "a move needs two different stations" in refused.text
