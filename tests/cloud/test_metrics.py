"""/metrics as Prometheus scrapes it, after lockers published through a real broker to the app's ingest."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
import pytest
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion
from prometheus_client.parser import text_string_to_metric_families
from support.cloud_events import event, register_town, status
from support.cloud_users import user_headers

from helmet_cloud.app import create_app
from helmet_cloud.settings import CloudSettings


def scrape(api: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample by (name, sorted labels), parsed with prometheus_client's own parser."""
    resp = api.get("/metrics")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(resp.text)
        for s in family.samples
    }


def wait_for(api: TestClient, name: str, labels: dict[str, str], value: float, timeout: float = 15) -> None:
    key = (name, tuple(sorted(labels.items())))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if scrape(api).get(key) == value:
            return
        time.sleep(0.1)
    pytest.fail(f"{name}{labels} never reached {value}: {scrape(api).get(key)}")


@pytest.fixture
def locker_client(settings: CloudSettings) -> Iterator[mqtt.Client]:
    c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="LK-000A")
    c.connect("127.0.0.1", settings.mqtt_port)
    c.loop_start()
    yield c
    c.disconnect()
    c.loop_stop()


def test_ingest_counters_after_events_and_a_bad_payload(
    api: TestClient, settings: CloudSettings, locker_client: mqtt.Client
) -> None:
    register_town(api, user_headers(api, settings, role="staff"), {"LK-000A": ("ST-A", 8)})
    before = scrape(api)
    assert before[("helmet_lockers_registered", ())] == 1 and before[("helmet_lockers_online", ())] == 0
    assert before[("helmet_ingest_events_total", (("kind", "helmet.stocked"),))] == 0

    def publish(item: tuple[str, bytes], retain: bool = False) -> None:
        locker_client.publish(item[0], item[1], qos=1, retain=retain).wait_for_publish(10)

    # The retained status reaches the app's ingest once it has subscribed; events can follow safely.
    now = datetime.now(UTC)
    publish(status("LK-000A", now, online=True), retain=True)
    wait_for(api, "helmet_lockers_online", {}, 1)  # read from the database at scrape time

    ts = now - timedelta(seconds=30)  # the locker recorded them half a minute ago
    stocked = [event("LK-000A", n, ts, "helmet.stocked", slot=n, helmet_id=f"H-{n}") for n in range(1, 6)]
    for item in stocked:
        publish(item)
    publish(event("LK-000A", 6, ts, "helmet.teleported", slot=6))
    publish(stocked[0])  # a retry the locker sent before it saw the ack
    publish(("helmet/v1/LK-000A/events", b"{not json"))
    wait_for(api, "helmet_ingest_dead_letters_total", {}, 1)
    wait_for(api, "helmet_ingest_lag_seconds_count", {}, 6)

    m = scrape(api)
    assert m[("helmet_ingest_events_total", (("kind", "helmet.stocked"),))] == 5
    assert m[("helmet_ingest_events_total", (("kind", "unknown"),))] == 1
    assert m[("helmet_ingest_events_total", (("kind", "helmet.borrowed"),))] == 0
    assert m[("helmet_ingest_duplicate_events_total", ())] == 1
    # Lag is commit time minus the locker's ts: all six took at least 30 s, none as long as a minute.
    assert m[("helmet_ingest_lag_seconds_bucket", (("le", "30.0"),))] == 0
    assert m[("helmet_ingest_lag_seconds_bucket", (("le", "60.0"),))] == 6
    assert m[("helmet_ingest_batch_duration_seconds_count", ())] >= 1

    publish(status("LK-000A", datetime.now(UTC), online=False), retain=True)
    wait_for(api, "helmet_lockers_online", {}, 0)


def test_request_latency_is_labelled_by_route_template(api: TestClient) -> None:
    api.get("/api/stations/ST-X")
    api.get("/api/stations/ST-Y")
    api.get("/no/such/page/12345")
    m = scrape(api)
    count = ("helmet_http_request_duration_seconds_count", (("method", "GET"), ("route", "/api/stations/{station_id}")))
    assert m[count] == 2
    not_found = ("method", "GET"), ("route", "/api/stations/{station_id}"), ("status", "404")
    assert m[("helmet_http_requests_total", not_found)] == 2
    assert m[("helmet_http_requests_total", (("method", "GET"), ("route", "unmatched"), ("status", "404")))] == 1
    assert not any("12345" in dict(labels).get("route", "") for _name, labels in m)


def test_two_apps_in_one_process_keep_their_own_metrics(settings: CloudSettings) -> None:
    with TestClient(create_app(settings)) as one, TestClient(create_app(settings)) as two:
        one.get("/health")
        key = ("helmet_http_request_duration_seconds_count", (("method", "GET"), ("route", "/health")))
        assert scrape(one)[key] == 1
        assert key not in scrape(two)
