"""Server-side SVG: the flow buckets follow the town's clock, the map places stations where they are."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from helmet_cloud.http.web.charts import MapPoint, bar_chart, buckets, town_map
from helmet_cloud.http.web.render import content_policy
from helmet_cloud.settings import CloudSettings

NOW = datetime(2026, 11, 28, 12, 30, tzinfo=UTC)


def test_hourly_buckets_count_borrows_and_returns_in_the_towns_time_zone() -> None:
    zurich = ZoneInfo("Europe/Zurich")  # UTC+1 in November
    flows = [
        (NOW - timedelta(minutes=10), "helmet.borrowed", 1),  # 13:20 local
        (NOW - timedelta(minutes=20), "helmet.returned", 1),  # 13:10 local
        (NOW - timedelta(hours=1), "helmet.borrowed", 1),  # 12:30 local
        (NOW - timedelta(hours=30), "helmet.borrowed", 1),  # outside the last 24 hours
    ]
    data = buckets(flows, now=NOW, step="hour", count=24, zone=zurich)
    assert len(data) == 24
    assert (data[-1].label, data[-1].borrows, data[-1].returns) == ("13", 1, 1)
    assert (data[-2].label, data[-2].borrows, data[-2].returns) == ("12", 1, 0)
    assert sum(b.borrows for b in data) == 2


def test_daily_buckets_end_today() -> None:
    flows = [(NOW - timedelta(days=d), "helmet.returned", 1) for d in (0, 1, 1, 20)]
    data = buckets(flows, now=NOW, step="day", count=14, zone=ZoneInfo("UTC"))
    assert [b.label for b in data[-2:]] == ["11-27", "11-28"]
    assert [b.returns for b in data[-2:]] == [2, 1]
    assert sum(b.returns for b in data) == 3


def test_bar_chart_escapes_labels_and_scales_to_the_peak() -> None:
    data = buckets(
        [(NOW, "helmet.borrowed", 5), (NOW, "helmet.borrowed", 2)], now=NOW, step="hour", count=3, zone=ZoneInfo("UTC")
    )
    svg = bar_chart(data, title="<script>", borrows_label="B&R", returns_label="R")
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "B&amp;R" in svg
    assert ">10</text>" in svg  # the y axis reaches the next round step above 7


def test_map_places_east_stations_right_and_north_stations_up() -> None:
    points = [
        MapPoint("ST-W", "West", 47.37, 8.50, "full", "Station full", "6/6", "/staff/stations/ST-W"),
        MapPoint("ST-E", "East <&>", 47.37, 8.56, "empty", "Station empty", "0/6", "/staff/stations/ST-E"),
        MapPoint("ST-N", "North", 47.40, 8.53, None, "No usable slot", "0/0", "/staff/stations/ST-N"),
    ]
    svg = town_map(points, title="Map")
    circles = {
        m[0]: (float(m[1]), float(m[2]))
        for m in re.findall(r'href="/staff/stations/([\w-]+)".*?cx="([\d.]+)" cy="([\d.]+)"', svg)
    }
    assert circles["ST-W"][0] < circles["ST-N"][0] < circles["ST-E"][0]
    assert circles["ST-N"][1] < circles["ST-W"][1]
    assert "East &lt;&amp;&gt;" in svg
    assert all(0 <= x <= 720 and 0 <= y <= 420 for x, y in circles.values())
    assert "<image" not in svg  # offline: no tiles


def test_the_offline_map_labels_every_station_by_name_and_level_in_the_levels_colour_class() -> None:
    points = [
        MapPoint("ST-A", "Town hall", 47.37, 8.54, "low", "Few helmets", "1/6", "/staff/stations/ST-A"),
        MapPoint("ST-B", "Library", 47.38, 8.55, None, "No usable slot", "0/0", "/staff/stations/ST-B"),
    ]
    svg = town_map(points, title="Map")
    assert re.search(r'<a href="/staff/stations/ST-A" class="map-station lvl-low"[^>]*data-level="low"', svg)
    assert re.search(r'class="map-station lvl-none"[^>]*data-level="none"', svg)
    assert ">Town hall</text>" in svg and ">Few helmets</text>" in svg
    assert ">Library</text>" in svg and ">No usable slot</text>" in svg
    assert 'fill="#' not in svg.split("<circle", 1)[1].split("/>", 1)[0]  # the colour is the palette's, in CSS


def test_the_charts_name_their_axes() -> None:
    data = buckets([], now=NOW, step="day", count=14, zone=ZoneInfo("UTC"))
    svg = bar_chart(data, title="t", borrows_label="b", returns_label="r", x_label="Day", y_label="Helmets")
    assert re.search(r'class="axis-label"[^>]*>Day</text>', svg)
    assert re.search(r'class="axis-label"[^>]*transform="rotate\(-90[^>]*>Helmets</text>', svg)
    assert svg.count('class="axis"') == 2


def test_a_map_tile_setting_must_be_a_tile_template() -> None:
    assert CloudSettings(map_tile_url="https://tiles.example.org/{z}/{x}/{y}.png").map_tile_url
    assert CloudSettings(map_tile_url="/tiles/{z}/{x}/{y}.png").map_tile_url
    for bad in ("https://tiles.example.org/map.png", "javascript:alert(1)//{z}{x}{y}", "ftp://x/{z}/{x}/{y}"):
        with pytest.raises(ValidationError):
            CloudSettings(map_tile_url=bad)


def test_the_pages_may_load_images_from_the_tile_server_only_when_one_is_set() -> None:
    assert "img-src 'self' data:;" in content_policy(None)
    assert "img-src 'self' data: https://tiles.example.org;" in content_policy("https://tiles.example.org/{z}/{x}/{y}")
    assert "img-src 'self' data:;" in content_policy("/tiles/{z}/{x}/{y}.png")
    two = content_policy("https://a.example.org/{z}/{x}/{y}.png", None, "http://127.0.0.1:8123/{z}/{x}/{y}.png")
    assert "img-src 'self' data: https://a.example.org http://127.0.0.1:8123;" in two


def test_the_latest_bucket_is_always_labelled() -> None:
    data = buckets([], now=NOW, step="hour", count=24, zone=ZoneInfo("UTC"))
    labels = re.findall(
        r'text-anchor="middle" font-size="11" fill="#333">(\d\d)</text>',
        bar_chart(data, title="t", borrows_label="b", returns_label="r"),
    )
    assert labels[-1] == "12" and len(labels) == 12
