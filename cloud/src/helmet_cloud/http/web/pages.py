"""What every page module shares: page errors, safe redirects, the QR and chart builders."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import segno
from fastapi import Request, status
from fastapi.responses import RedirectResponse
from markupsafe import Markup
from sqlmodel import Session

from helmet_cloud.context import AppContext
from helmet_cloud.http.web import charts, i18n, queries
from helmet_cloud.i18n import N_
from helmet_cloud.i18n import zone as i18n_zone
from helmet_cloud.services import towns


class PageError(Exception):
    """An HTML page cannot be shown: rendered as a page with the status and the reason."""

    def __init__(self, status_code: int, message: str, **params: str) -> None:
        """``message`` is English with ``{name}`` fields filled from ``params`` after translation."""
        super().__init__(message.format(**params))
        self.status_code = status_code
        self.message = message
        self.params = params


def local_path(value: str | None, default: str) -> str:
    """Only a path on this site (never ``//host`` or ``https://...``): a redirect target from a form or a query."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return default


def see_other(path: str, **query: str) -> RedirectResponse:
    """Post/redirect/get: after a form, the browser shows ``path`` (with ``query``, e.g. a notice)."""
    if query:
        path += ("&" if "?" in path else "?") + urlencode(query)
    return RedirectResponse(path, status_code=status.HTTP_303_SEE_OTHER)


def qr_svg(text: str, title: str) -> Markup:
    """The QR code as inline SVG: black on white, a four-module quiet zone, sized by CSS."""
    svg = segno.make(text, error="m", micro=False).svg_inline(
        scale=1, border=4, omitsize=True, title=title, svgclass="qr", lineclass=None, dark="#000", light="#fff"
    )
    return Markup(svg.replace("<svg ", '<svg role="img" ', 1))  # noqa: S704 (segno escapes the title)


def zone(ctx: AppContext, town_id: str | None = None) -> ZoneInfo:
    """The clock of ``town_id`` (the default town's when None): times and per-hour and per-day charts."""
    return i18n_zone(towns.zone_name_for(ctx.engine, town_id))


@dataclass(frozen=True, slots=True)
class FlowChart:
    title: str
    span: str  # "Last 24 hours": shown under the title, so the two charts differ at a glance
    svg: Markup
    data: list[charts.Bucket]  # the same numbers as a table, for screen readers and for copying


def flow_charts(
    session: Session, ctx: AppContext, now: datetime, lang: str, locker_ids: list[str] | None = None
) -> list[FlowChart]:
    """Borrows and returns per hour (last 24) and per day (last 14), for the town or some lockers."""
    counts = queries.flows_per_hour(session, now - timedelta(days=15), locker_ids)
    tz = zone(ctx)
    out = []
    for step, count, title, span, x_label in (
        ("hour", 24, "Borrows and returns per hour", N_("Last 24 hours"), N_("Hour of the day (town time)")),
        ("day", 14, "Borrows and returns per day", N_("Last 14 days"), N_("Day (month-day, town time)")),
    ):
        data = charts.buckets(counts, now=now, step=step, count=count, zone=tz)
        svg = charts.bar_chart(
            data,
            title=i18n.gettext(lang, title),
            borrows_label=i18n.gettext(lang, "Borrows"),
            returns_label=i18n.gettext(lang, "Returns"),
            x_label=i18n.gettext(lang, x_label),
            y_label=i18n.gettext(lang, "Helmets"),
        )
        out.append(  # charts escapes every text
            FlowChart(i18n.gettext(lang, title), i18n.gettext(lang, span), Markup(svg), data)  # noqa: S704
        )
    return out


def current_url(request: Request) -> str:
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")
