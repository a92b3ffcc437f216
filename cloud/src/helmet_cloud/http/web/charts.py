"""Server-side SVG: borrows and returns per hour or per day, and the town map of stations by fill level.

Plain SVG strings, no JavaScript: they print, work offline and need no
library. Every text is escaped; the caller marks the result safe. The map's
colours are CSS classes (``lvl-empty`` ...), painted by static/app.css's one palette.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape
from zoneinfo import ZoneInfo

BORROW_COLOUR = "#1f5fa8"
RETURN_COLOUR = "#c25400"


@dataclass(frozen=True, slots=True)
class Bucket:
    label: str
    borrows: int
    returns: int


def buckets(
    flows: Sequence[tuple[datetime, str, int]], *, now: datetime, step: str, count: int, zone: ZoneInfo
) -> list[Bucket]:
    """Count borrows and returns per hour (``step="hour"``) or day, the last ``count`` of them up to ``now``.

    ``flows`` are (time, kind, how many) triples, e.g. per UTC hour; buckets follow the town's clock (``zone``).
    """
    local_now = now.astimezone(zone)
    if step == "hour":
        top = local_now.replace(minute=0, second=0, microsecond=0)
        starts = [top - timedelta(hours=i) for i in range(count - 1, -1, -1)]
        fmt = "%H"
    else:
        top = local_now.replace(hour=0, minute=0, second=0, microsecond=0)
        starts = [top - timedelta(days=i) for i in range(count - 1, -1, -1)]
        fmt = "%m-%d"
    width = timedelta(hours=1) if step == "hour" else timedelta(days=1)
    borrows: Counter[int] = Counter()
    returns: Counter[int] = Counter()
    for ts, kind, n in flows:
        local = ts.astimezone(zone)
        if local < starts[0] or local >= starts[-1] + width:
            continue
        index = _index(starts, local, width)
        (borrows if kind == "helmet.borrowed" else returns)[index] += n
    return [Bucket(s.strftime(fmt), borrows[i], returns[i]) for i, s in enumerate(starts)]


def _index(starts: list[datetime], t: datetime, width: timedelta) -> int:
    # Days can be 23 or 25 hours around a clock change: search instead of dividing.
    for i in range(len(starts) - 1, -1, -1):
        if t >= starts[i]:
            return i
    return 0


def bar_chart(
    data: Sequence[Bucket],
    *,
    title: str,
    borrows_label: str,
    returns_label: str,
    x_label: str = "",
    y_label: str = "",
) -> str:
    """Paired bars (borrows, returns) per bucket, with both axes drawn and named, labels and a legend.

    ``title`` names it for screen readers (the page shows it above the chart as a heading); ``x_label``
    and ``y_label`` name the axes, so an hourly and a daily chart read differently at a glance.
    """
    width, height, left, bottom, top = 640, 240, 52, 46, 28
    plot_w, plot_h = width - left - 8, height - bottom - top
    peak = max([1, *(max(b.borrows, b.returns) for b in data)])
    step = _nice_step(peak)
    ymax = step * math.ceil(peak / step)
    slot = plot_w / max(1, len(data))
    bar = max(1.0, slot * 0.38)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" class="chart">',
        f"<title>{escape(title)}</title>",
    ]
    for v in range(0, ymax + 1, step):
        y = top + plot_h - plot_h * v / ymax
        parts.append(f'<line x1="{left}" x2="{width - 8}" y1="{y:.1f}" y2="{y:.1f}" stroke="#d0d0d0"/>')
        parts.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="11" fill="#333">{v}</text>')
    label_every = max(1, math.ceil(len(data) / 12))
    for i, b in enumerate(data):
        x = left + i * slot + (slot - 2 * bar) / 2
        for j, (value, colour) in enumerate(((b.borrows, BORROW_COLOUR), (b.returns, RETURN_COLOUR))):
            h = plot_h * value / ymax
            parts.append(
                f'<rect x="{x + j * bar:.1f}" y="{top + plot_h - h:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{colour}"><title>{escape(b.label)}: {value}</title></rect>'
            )
        if (len(data) - 1 - i) % label_every == 0:  # the latest bucket always has its label
            cx = left + i * slot + slot / 2
            parts.append(
                f'<text x="{cx:.1f}" y="{top + plot_h + 16}" text-anchor="middle" font-size="11" fill="#333">'
                f"{escape(b.label)}</text>"
            )
    # The axes themselves, then their names: the x axis under its labels, the y axis turned along its side.
    base = top + plot_h
    parts.append(f'<line class="axis" x1="{left}" x2="{width - 8}" y1="{base}" y2="{base}" stroke="#333"/>')
    parts.append(f'<line class="axis" x1="{left}" x2="{left}" y1="{top}" y2="{base}" stroke="#333"/>')
    if x_label:
        parts.append(
            f'<text class="axis-label" x="{left + plot_w / 2:.1f}" y="{height - 6}" text-anchor="middle" '
            f'font-size="12" fill="#222">{escape(x_label)}</text>'
        )
    if y_label:
        cy = top + plot_h / 2
        parts.append(
            f'<text class="axis-label" x="14" y="{cy:.1f}" text-anchor="middle" font-size="12" fill="#222" '
            f'transform="rotate(-90 14 {cy:.1f})">{escape(y_label)}</text>'
        )
    parts.append(f'<rect x="{left}" y="6" width="12" height="12" fill="{BORROW_COLOUR}"/>')
    parts.append(f'<text x="{left + 16}" y="16" font-size="12" fill="#222">{escape(borrows_label)}</text>')
    parts.append(f'<rect x="{left + 130}" y="6" width="12" height="12" fill="{RETURN_COLOUR}"/>')
    parts.append(f'<text x="{left + 146}" y="16" font-size="12" fill="#222">{escape(returns_label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _nice_step(peak: int) -> int:
    for step in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000):
        if peak / step <= 5:
            return step
    return int(10 ** len(str(peak)))


@dataclass(frozen=True, slots=True)
class MapPoint:
    id: str
    name: str
    lat: float
    lon: float
    level: str | None  # a FillLevel (helmet_cloud.domain.fill_level); None: no usable slot
    level_word: str  # the level in the reader's words, shown beside its colour
    label: str  # e.g. "3/6"
    href: str

    @property
    def level_class(self) -> str:
        """The CSS class of the level's colour (static/app.css, ``--level-*``)."""
        return f"lvl-{self.level or 'none'}"


def _mercator(lat: float, lon: float, zoom: int) -> tuple[float, float]:
    """Web Mercator pixel coordinates at ``zoom`` (256-pixel tiles), as slippy-map tile servers use."""
    scale = 256 * 2**zoom
    lat = max(-85.05, min(85.05, lat))
    x = (lon + 180) / 360 * scale
    y = (1 - math.log(math.tan(math.radians(lat)) + 1 / math.cos(math.radians(lat))) / math.pi) / 2 * scale
    return x, y


def town_map(points: Sequence[MapPoint], *, title: str) -> str:
    """Stations placed by latitude and longitude on a plain grid, each coloured by its fill level and labelled.

    This is the map that works offline; a town with a tile server gets streets drawn over it by
    static/map.js (Leaflet), from the same points.
    """
    width, height, pad = 720, 420, 48
    parts = [
        # A group, not an image: it holds a link per station.
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="group" '
        f'aria-label="{escape(title)}" class="map">',
        f"<title>{escape(title)}</title>",
        f'<rect width="{width}" height="{height}" fill="#eef2ee"/>',
    ]
    if not points:
        parts.append("</svg>")
        return "".join(parts)
    zoom = 18
    while zoom > 1:
        xs, ys = zip(*(_mercator(p.lat, p.lon, zoom) for p in points), strict=True)
        if max(xs) - min(xs) <= width - 2 * pad and max(ys) - min(ys) <= height - 2 * pad:
            break
        zoom -= 1
    xs, ys = zip(*(_mercator(p.lat, p.lon, zoom) for p in points), strict=True)
    ox = (min(xs) + max(xs)) / 2 - width / 2
    oy = (min(ys) + max(ys)) / 2 - height / 2
    for gx in range(0, width, 60):
        parts.append(f'<line x1="{gx}" x2="{gx}" y1="0" y2="{height}" stroke="#dbe3db"/>')
    for gy in range(0, height, 60):
        parts.append(f'<line x1="0" x2="{width}" y1="{gy}" y2="{gy}" stroke="#dbe3db"/>')
    for p in points:
        x, y = _mercator(p.lat, p.lon, zoom)
        x, y = x - ox, y - oy
        name, word = escape(p.name), escape(p.level_word)
        parts.append(
            f'<a href="{escape(p.href)}" class="map-station {p.level_class}" data-station="{escape(p.id)}" '
            f'data-level="{escape(p.level or "none")}"><title>{name}: {escape(p.label)}, {word}</title>'
            f'<circle class="pin" cx="{x:.1f}" cy="{y:.1f}" r="17" stroke="#111" stroke-width="1.5"/>'
            f'<text class="pin-ink" x="{x:.1f}" y="{y + 4:.1f}" text-anchor="middle" font-size="11" '
            f'font-weight="bold">{escape(p.label)}</text>'
            f'<text class="map-name" x="{x:.1f}" y="{y + 34:.1f}" text-anchor="middle" font-size="12" fill="#111" '
            f'stroke="#fff" stroke-width="3" paint-order="stroke">{name}</text>'
            f'<text class="map-level" x="{x:.1f}" y="{y + 48:.1f}" text-anchor="middle" font-size="11" '
            f'fill="#111" stroke="#fff" stroke-width="3" paint-order="stroke">{word}</text></a>'
        )
    parts.append("</svg>")
    return "".join(parts)
