"""The public GBFS v3.0 feed, as a feed consumer reads it, after real ingest on a real database."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from support.cloud_events import Recorder, event, inbound, register_town, status
from support.cloud_users import user_headers

from helmet_cloud.ingest.ingestor import Ingestor
from helmet_cloud.services.feedcache import FeedCache
from helmet_cloud.settings import CloudSettings

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
FEED_NAMES = {"system_information", "station_information", "station_status", "system_alerts"}


# --- GBFS v3.0 field types, written out from the spec (no schema download) ---


def is_int(v: Any, minimum: int = 0) -> bool:
    return type(v) is int and v >= minimum


def is_timestamp(v: Any) -> bool:
    return isinstance(v, str) and RFC3339.match(v) is not None and datetime.fromisoformat(v).tzinfo is not None


def is_localized(v: Any) -> bool:
    return (
        isinstance(v, list)
        and len(v) >= 1
        and all(
            isinstance(x, dict)
            and set(x) == {"text", "language"}
            and isinstance(x["text"], str)
            and x["text"]
            and re.fullmatch(r"[a-z]{2,3}(-[A-Z][a-z]{3})?(-[A-Z]{2})?", x["language"])  # BCP 47: zh-Hans
            for x in v
        )
    )


def check_envelope(doc: Any) -> dict[str, Any]:
    assert isinstance(doc, dict) and set(doc) == {"last_updated", "ttl", "version", "data"}, doc
    assert is_timestamp(doc["last_updated"]), doc["last_updated"]
    assert is_int(doc["ttl"]) and doc["version"] == "3.0"
    assert isinstance(doc["data"], dict)
    return doc["data"]


def check_system_information(data: dict[str, Any]) -> None:
    for key in ("system_id", "opening_hours", "feed_contact_email", "timezone"):
        assert isinstance(data[key], str) and data[key], key
    assert isinstance(data["languages"], list) and data["languages"]
    assert is_localized(data["name"])
    assert {x["language"] for x in data["name"]} <= set(data["languages"])


def check_station_information(data: dict[str, Any]) -> None:
    assert set(data) == {"stations"} and isinstance(data["stations"], list)
    for st in data["stations"]:
        assert isinstance(st["station_id"], str) and st["station_id"]
        assert is_localized(st["name"])
        assert type(st["lat"]) is float and -90 <= st["lat"] <= 90
        assert type(st["lon"]) is float and -180 <= st["lon"] <= 180
        assert "address" not in st or (isinstance(st["address"], str) and st["address"])
        assert is_int(st["capacity"])


def check_station_status(data: dict[str, Any]) -> None:
    assert set(data) == {"stations"} and isinstance(data["stations"], list)
    for st in data["stations"]:
        assert isinstance(st["station_id"], str) and st["station_id"]
        for key in ("num_vehicles_available", "num_vehicles_disabled", "num_docks_available", "num_docks_disabled"):
            assert is_int(st[key]), (key, st)
        for key in ("is_installed", "is_renting", "is_returning"):
            assert type(st[key]) is bool, (key, st)
        assert is_timestamp(st["last_reported"])


def check_system_alerts(data: dict[str, Any]) -> None:
    assert set(data) == {"alerts"} and isinstance(data["alerts"], list)


CHECKS = {
    "system_information": check_system_information,
    "station_information": check_station_information,
    "station_status": check_station_status,
    "system_alerts": check_system_alerts,
}


def feed(api: TestClient, name: str) -> dict[str, Any]:
    resp = api.get(f"/gbfs/{name}.json")
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/json"
    data = check_envelope(resp.json())
    CHECKS[name](data)
    return data


def by_station(api: TestClient) -> dict[str, dict[str, Any]]:
    return {st["station_id"]: st for st in feed(api, "station_status")["stations"]}


@pytest.fixture
def town(api: TestClient, settings: CloudSettings, engine: Engine) -> Ingestor:
    """ST-A with a 4-slot locker, ST-B with a 4-slot locker, registered through the API; an ingestor on the DB.

    The ingestor tells the app of its commits, as ``serve``'s own worker does, so cached documents go stale.
    """
    staff = user_headers(api, settings, role="staff")
    register_town(api, staff, {"LK-000A": ("ST-A", 4), "LK-000B": ("ST-B", 4)})
    return Ingestor(engine, Recorder(), after_commit=api.app.state.ctx.after_commit)  # type: ignore[attr-defined]


def test_the_manifest_lists_every_feed_by_absolute_url_and_each_one_is_valid(api: TestClient, town: Ingestor) -> None:
    manifest = check_envelope(api.get("/gbfs/gbfs.json", headers={"host": "feeds.example.org"}).json())
    feeds = {f["name"]: f["url"] for f in manifest["feeds"]}
    assert set(feeds) == FEED_NAMES
    for name, url in feeds.items():
        parts = urlsplit(url)
        assert (parts.scheme, parts.netloc, parts.path) == ("http", "feeds.example.org", f"/gbfs/{name}.json")
        feed(api, name)  # each listed file is served and has GBFS v3.0 types


def test_station_information_carries_names_positions_and_capacity(api: TestClient, town: Ingestor) -> None:
    stations = {st["station_id"]: st for st in feed(api, "station_information")["stations"]}
    a, b = stations["ST-A"], stations["ST-B"]
    # Every language the feed lists; a station without a Chinese name keeps its own (docs/api.md).
    assert a["name"] == [{"text": "Station A", "language": "en"}, {"text": "Station A", "language": "zh-Hans"}]
    assert (a["lat"], a["lon"], a["address"], a["capacity"]) == (47.37, 8.54, "Town hall square 1", 4)
    assert "address" not in b and b["capacity"] == 4
    system = feed(api, "system_information")
    assert system["name"] == [
        {"text": "Helmet station", "language": "en"},
        {"text": "共享头盔站", "language": "zh-Hans"},
    ]
    assert system["languages"] == ["en", "zh-Hans"]
    assert feed(api, "system_alerts") == {"alerts": []}


def test_station_status_counts_helmets_and_flips_when_a_locker_goes_offline(api: TestClient, town: Ingestor) -> None:
    before = by_station(api)["ST-A"]
    # Registered but never heard from: not installed, not lending, every slot free.
    assert before["is_installed"] is False and before["is_renting"] is False
    assert (before["num_vehicles_available"], before["num_docks_available"]) == (0, 4)
    t = T0
    town.handle(inbound([status("LK-000A", t, online=True), status("LK-000B", t, online=True)]))
    stock = [("LK-000A", 1, "H-1"), ("LK-000A", 2, "H-2"), ("LK-000A", 3, "H-3")]
    stock += [("LK-000B", 1, "H-7"), ("LK-000B", 2, "H-8"), ("LK-000B", 3, "H-9"), ("LK-000B", 4, "H-10")]
    seqs = {"LK-000A": 0, "LK-000B": 0}
    batch = []
    for locker, slot, helmet in stock:
        seqs[locker] += 1
        batch.append(event(locker, seqs[locker], t, "helmet.stocked", slot=slot, helmet_id=helmet))
    batch += [
        event("LK-000A", 4, t + timedelta(minutes=1), "helmet.borrowed", slot=1, helmet_id="H-1", resident_id="R-1"),
        event("LK-000A", 5, t + timedelta(minutes=2), "slot.disabled", slot=4),
        event("LK-000B", 5, t + timedelta(minutes=2), "slot.disabled", slot=4, helmet_id="H-10"),
    ]
    town.handle(inbound(batch))
    a, b = by_station(api)["ST-A"], by_station(api)["ST-B"]
    # A: helmets in 2 and 3, slot 1 emptied by the borrow, slot 4 disabled and empty.
    assert (a["num_vehicles_available"], a["num_vehicles_disabled"]) == (2, 0)
    assert (a["num_docks_available"], a["num_docks_disabled"]) == (1, 1)
    assert (a["is_installed"], a["is_renting"], a["is_returning"]) == (True, True, True)
    assert a["last_reported"] == t.isoformat().replace("+00:00", "Z")
    # B: full, and the helmet in the disabled slot is not for rent.
    assert (b["num_vehicles_available"], b["num_vehicles_disabled"]) == (3, 1)
    assert (b["num_docks_available"], b["num_docks_disabled"]) == (0, 0)
    assert (b["is_renting"], b["is_returning"]) == (True, False)

    # A's Last Will: the broker says it is gone. The cloud can no longer vouch for it.
    gone = t + timedelta(minutes=5)
    town.handle(inbound([status("LK-000A", gone, online=False)]))
    a = by_station(api)["ST-A"]
    assert (a["is_installed"], a["is_renting"], a["is_returning"]) == (True, False, False)
    assert a["num_vehicles_available"] == 2  # what it held when last heard of
    assert a["last_reported"] == gone.isoformat().replace("+00:00", "Z")
    assert by_station(api)["ST-B"]["is_renting"] is True

    town.handle(inbound([status("LK-000A", gone + timedelta(minutes=1), online=True, boot_id="b-2")]))
    a = by_station(api)["ST-A"]
    assert (a["is_renting"], a["is_returning"]) == (True, True)


def test_documents_are_served_from_cache_until_something_changes(
    api: TestClient, settings: CloudSettings, town: Ingestor
) -> None:
    first = api.get("/gbfs/station_status.json")
    assert api.get("/gbfs/station_status.json").content == first.content  # same bytes, same last_updated
    assert first.headers["cache-control"] == "public, max-age=60"
    town.handle(inbound([event("LK-000A", 1, T0, "helmet.stocked", slot=1, helmet_id="H-1")]))
    changed = by_station(api)["ST-A"]
    assert changed["num_vehicles_available"] == 1
    # A registration through the API shows at once too.
    admin = user_headers(api, settings, role="admin")
    resp = api.post("/api/stations", headers=admin, json={"id": "ST-C", "name": "C", "lat": 1, "lon": 2})
    assert resp.status_code == 201
    ids = [st["station_id"] for st in feed(api, "station_information")["stations"]]
    assert ids == ["ST-A", "ST-B", "ST-C"]


def test_the_cache_expires_after_the_ttl_and_when_invalidated() -> None:
    now = [100.0]
    cache = FeedCache(clock=lambda: now[0])
    built: list[int] = []

    def build() -> bytes:
        built.append(1)
        return str(len(built)).encode()

    assert cache.get("k", 60, build) == b"1"
    now[0] += 59
    assert cache.get("k", 60, build) == b"1"
    now[0] += 1
    assert cache.get("k", 60, build) == b"2"  # the ttl ran out
    cache.invalidate()
    assert cache.get("k", 60, build) == b"3"  # ingest changed something
    assert cache.get("z", 0, build) == b"4"
    assert cache.get("z", 0, build) == b"5"  # ttl 0: never served again
