"""Resident accounts, the staff's resident lookup, station edits and the locker list."""

from __future__ import annotations

from fastapi.testclient import TestClient
from support.cloud_users import resident_headers, user_headers

from helmet_cloud.settings import CloudSettings

STATION = {"id": "ST-HALL", "name": "Town hall", "lat": 47.37, "lon": 8.54}


def test_a_resident_sees_what_they_may_still_borrow(api: TestClient, settings: CloudSettings) -> None:
    me = resident_headers(api, settings, "+41 79 123 45 67")
    before = api.get("/api/me", headers=me).json()
    assert (before["phone"], before["limit"], before["may_borrow"]) == ("+41791234567", 3, 3)
    assert api.post("/api/passes", json={"quantity": 2}, headers=me).status_code == 201
    after = api.get("/api/me", headers=me).json()
    assert (after["helmets_out"], after["helmets_on_unused_passes"], after["may_borrow"]) == (0, 2, 1)


def test_staff_find_a_resident_by_phone_and_residents_cannot(api: TestClient, settings: CloudSettings) -> None:
    alice = resident_headers(api, settings, "+41 79 111 11 11")
    resident_headers(api, settings, "+41 79 222 22 22")
    staff = user_headers(api, settings, role="staff")
    found = api.get("/api/residents", params={"phone": "+41 79-111 11 11"}, headers=staff).json()
    assert [r["phone"] for r in found] == ["+41791111111"]
    assert len(api.get("/api/residents", headers=staff).json()) == 2
    one = api.get(f"/api/residents/{found[0]['id']}", headers=staff).json()
    assert one["may_borrow"] == 3
    assert api.get("/api/residents/R-NOPE", headers=staff).status_code == 404
    assert api.get("/api/residents", headers=alice).status_code == 403
    assert api.get("/api/me", headers=staff).status_code == 403


def test_staff_edit_a_station_and_the_change_is_audited_and_shown(api: TestClient, settings: CloudSettings) -> None:
    staff = user_headers(api, settings, role="staff", username="alice")
    assert api.post("/api/stations", json=STATION, headers=staff).status_code == 201
    assert api.get("/api/stations/ST-HALL").json()["name"] == "Town hall"  # now cached

    resp = api.patch("/api/stations/ST-HALL", json={"name": "Town hall (east)", "high_threshold": 2}, headers=staff)
    assert resp.status_code == 200, resp.text
    shown = api.get("/api/stations/ST-HALL").json()
    assert (shown["name"], shown["high_threshold"], shown["low_threshold"]) == ("Town hall (east)", 2, 1)
    entry = api.get("/api/audit", params={"action": "station.update"}, headers=staff).json()[0]
    assert entry["detail"] == {
        "before": {"name": "Town hall", "high_threshold": 1},
        "after": {"name": "Town hall (east)", "high_threshold": 2},
    }


def test_a_station_asked_for_before_it_exists_is_found_once_registered(
    api: TestClient, settings: CloudSettings
) -> None:
    staff = user_headers(api, settings, role="staff")
    assert api.get("/api/stations/ST-HALL").status_code == 404  # the absence is cached ...
    assert api.post("/api/stations", json=STATION, headers=staff).status_code == 201
    assert api.get("/api/stations/ST-HALL").json()["name"] == "Town hall"  # ... until a station is registered


def test_bad_station_edits_change_nothing(api: TestClient, settings: CloudSettings) -> None:
    staff = user_headers(api, settings, role="staff")
    assert api.post("/api/stations", json=STATION, headers=staff).status_code == 201
    assert api.patch("/api/stations/ST-HALL", json={"lat": 0}, headers=staff).status_code == 422  # not editable
    assert api.patch("/api/stations/ST-HALL", json={"low_threshold": -1}, headers=staff).status_code == 422
    assert api.patch("/api/stations/ST-HALL", json={}, headers=staff).status_code == 422
    assert api.patch("/api/stations/ST-NONE", json={"name": "x"}, headers=staff).status_code == 404
    assert api.get("/api/stations/ST-HALL").json()["name"] == "Town hall"
    assert [e["action"] for e in api.get("/api/audit", headers=staff).json()] == ["station.create"]


def test_technicians_list_lockers_with_their_health(api: TestClient, settings: CloudSettings) -> None:
    tech = user_headers(api, settings, role="technician")
    staff = user_headers(api, settings, role="staff")
    for sid in ("ST-HALL", "ST-PARK"):
        assert api.post("/api/stations", json={**STATION, "id": sid}, headers=staff).status_code == 201
    for lid, sid in (("LK-0001", "ST-HALL"), ("LK-0002", "ST-PARK")):
        body = {"id": lid, "station_id": sid, "slot_count": 6}
        assert api.post("/api/lockers", json=body, headers=tech).status_code == 201
    everything = api.get("/api/lockers", headers=tech).json()
    assert [(lk["id"], lk["online"], lk["clock_offset_ms"]) for lk in everything] == [
        ("LK-0001", False, 0),
        ("LK-0002", False, 0),
    ]
    assert [lk["id"] for lk in api.get("/api/lockers", params={"station_id": "ST-PARK"}, headers=tech).json()] == [
        "LK-0002"
    ]
    assert api.get("/api/lockers").status_code == 401
