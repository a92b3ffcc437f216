"""Rendering a page: the Jinja2 environment, the request's language and its CSRF value."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from helmet_cloud.http.web import i18n
from helmet_cloud.http.web.session import csrf_for
from helmet_cloud.timeutil import aware

TEMPLATES = Path(__file__).parent / "templates"
env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "svg"]), auto_reload=False)


def language(request: Request) -> str:
    return i18n.negotiate(
        request.query_params.get("lang"), request.cookies.get(i18n.COOKIE), request.headers.get("accept-language")
    )


def _zone(request: Request) -> ZoneInfo:
    try:
        return ZoneInfo(request.app.state.ctx.settings.feed_timezone)
    except (ZoneInfoNotFoundError, AttributeError):
        return ZoneInfo("UTC")


@cache
def content_policy(tile_url: str | None) -> str:
    """Only this site's scripts, styles and forms; images also from the map's tile server, if one is set."""
    images = "'self' data:"
    if tile_url and tile_url.startswith(("http://", "https://")):
        parts = urlsplit(tile_url)
        images += f" {parts.scheme}://{parts.netloc}"
    return (
        f"default-src 'self'; img-src {images}; style-src 'self' 'unsafe-inline'; script-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'self'"
    )


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    cookie: str | None = None,
) -> HTMLResponse:
    """Render ``template`` in the request's language; ``cookie`` names the session whose CSRF value forms carry."""
    lang = language(request)
    zone = _zone(request)

    def localtime(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
        return aware(value).astimezone(zone).strftime(fmt) if value is not None else ""

    token = request.cookies.get(cookie) if cookie else None
    values = {
        "request": request,
        "lang": lang,
        "html_lang": i18n.HTML_LANG[lang],
        "other_lang": "zh" if lang == "en" else "en",
        "_": lambda message, **kw: i18n.gettext(lang, message).format(**kw) if kw else i18n.gettext(lang, message),
        "csrf": csrf_for(token) if token else "",
        "localtime": localtime,
        "settings": request.app.state.ctx.settings,
        **(context or {}),
    }
    body = env.get_template(template).render(values)
    response = HTMLResponse(body, status_code=status_code)
    if request.query_params.get("lang") in i18n.LANGUAGES:
        response.set_cookie(i18n.COOKIE, lang, max_age=365 * 86400, samesite="lax", path="/")
    response.headers["Content-Language"] = i18n.HTML_LANG[lang]
    response.headers["Vary"] = "Accept-Language, Cookie"
    # Pages show personal data (passes, loans) and change all the time: never kept by a cache.
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["Content-Security-Policy"] = content_policy(request.app.state.ctx.settings.map_tile_url)
    response.headers["Referrer-Policy"] = "same-origin"  # a pass page's address names the pass
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
