"""One station in awkward states: the API, the resident page and the public feed give the same counts.

The counts are one rule (``helmet_cloud.domain.station_counts``); before it,
the API counted slot rows by state and the feed worked out capacity minus
what was taken, so a slot past the registered count or a slot in fault showed
as different numbers on the resident's phone and in the public feed.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from support.cloud_events import Recorder, event, inbound, register_town, status
from support.cloud_users import user_headers

from helmet_cloud.domain.station_counts import LockerView, SlotView, locker_counts
from helmet_cloud.ingest.ingestor import Ingestor
from helmet_cloud.settings import CloudSettings
from helmet_protocol.messages import SlotReport, State

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def surfaces(api: TestClient, station_id: str) -> dict[str, tuple[int, ...]]:
    """(available, free, out of service, capacity) as each surface shows them."""
    st = api.get(f"/api/stations/{station_id}").json()
    gbfs = {s["station_id"]: s for s in api.get("/gbfs/station_status.json").json()["data"]["stations"]}[station_id]
    info = {s["station_id"]: s for s in api.get("/gbfs/station_information.json").json()["data"]["stations"]}
    page = api.get(f"/s/{station_id}", headers={"accept-language": "en"}).text
    helmets = re.search(r'data-field="helmets">(\d+) helmets? here', page)
    free = re.search(r'data-field="free">(\d+) free slots?', page)
    assert helmets and free, page
    return {
        "api": (st["helmets_available"], st["free_slots"], st["disabled_slots"], st["capacity"]),
        "gbfs": (
            gbfs["num_vehicles_available"],
            gbfs["num_docks_available"],
            gbfs["num_vehicles_disabled"] + gbfs["num_docks_disabled"],
            info[station_id]["capacity"],
        ),
        "page": (int(helmets[1]), int(free[1]), st["disabled_slots"], st["capacity"]),
    }


@pytest.fixture
def town(api: TestClient, settings: CloudSettings, engine: Engine) -> Ingestor:
    staff = user_headers(api, settings, role="staff")
    register_town(api, staff, {"LK-000A": ("ST-A", 4), "LK-000B": ("ST-A", 2)})
    return Ingestor(engine, Recorder(), after_commit=api.app.state.ctx.after_commit)  # type: ignore[attr-defined]


def test_a_station_in_awkward_states_shows_the_same_counts_everywhere(
    api: TestClient, settings: CloudSettings, town: Ingestor
) -> None:
    t = T0
    town.handle(inbound([status("LK-000A", t, online=True), status("LK-000B", t, online=True)]))
    town.handle(
        inbound(
            [
                event("LK-000A", 1, t, "helmet.stocked", slot=1, helmet_id="H-1"),
                event("LK-000A", 2, t, "helmet.stocked", slot=2, helmet_id="H-2"),
                event("LK-000A", 3, t, "slot.disabled", slot=2, helmet_id="H-2"),  # a helmet in a disabled slot
                event("LK-000A", 4, t, "helmet.stocked", slot=3, helmet_id="H-3"),
                event("LK-000A", 5, t, "slot.fault", slot=3, helmet_id="H-3", reason="lock_jammed"),
                # Wired with a fifth slot the registration does not know about.
                event("LK-000A", 6, t, "helmet.stocked", slot=5, helmet_id="H-5"),
                event("LK-000B", 1, t, "slot.disabled", slot=1),  # an empty disabled slot
            ]
        )
    )
    snapshot = State(
        locker_id="LK-000A",
        seq=6,
        ts=t,
        slots=[
            SlotReport(slot=1, state="occupied", helmet_id="H-1"),
            SlotReport(slot=2, state="disabled", helmet_id="H-2"),
            SlotReport(slot=3, state="fault", helmet_id="H-3"),
            SlotReport(slot=4, state="open"),  # a door open right now
            SlotReport(slot=5, state="occupied", helmet_id="H-5"),
        ],
    )
    town.handle(inbound([("helmet/v1/LK-000A/state", snapshot.to_json())]))

    # Lendable: H-1 only. Free: A's slot 4 (door open, nothing in it yet) and B's slot 2.
    # Out of service: A's 2 (disabled) and 3 (jammed), B's 1. Capacity: 4 + 2 as registered; slot 5 is not counted.
    want = (1, 2, 3, 6)
    assert surfaces(api, "ST-A") == {"api": want, "gbfs": want, "page": want}

    # The jam is cleared: H-3 can be lent again, on every surface at once.
    town.handle(inbound([event("LK-000A", 7, t + timedelta(minutes=1), "slot.cleared", slot=3, helmet_id="H-3")]))
    want = (2, 2, 2, 6)
    assert surfaces(api, "ST-A") == {"api": want, "gbfs": want, "page": want}
    locker = api.get("/api/lockers/LK-000A", headers=user_headers(api, settings, role="technician"))
    assert "locker reports 5 slots, registered with 4" in locker.json()["snapshot_mismatch"]


def test_every_registered_slot_lands_in_exactly_one_box() -> None:
    slots = [
        SlotView(slot=1, state="occupied", has_helmet=True),
        SlotView(slot=2, state="disabled", has_helmet=False),
        SlotView(slot=3, state="fault", has_helmet=True),
        SlotView(slot=9, state="occupied", has_helmet=True),  # past slot_count
    ]
    c = locker_counts(LockerView(slot_count=5, online=False, slots=slots))  # slots 4 and 5 have no row: empty
    assert (c.helmets_available, c.helmets_disabled, c.free_slots, c.free_slots_disabled) == (1, 1, 2, 1)
    assert c.capacity == 5 and c.disabled_slots == 2
    assert (c.renting, c.returning) == (False, False)  # offline: its helmets count, but it lends nothing now
