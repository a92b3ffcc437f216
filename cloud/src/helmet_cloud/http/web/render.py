"""Rendering a page: the Jinja2 environment, the request's language and its CSRF value."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from helmet_cloud.domain import words
from helmet_cloud.errors import CloudError
from helmet_cloud.http.web import alert_view, i18n
from helmet_cloud.http.web.session import csrf_for, flashed
from helmet_cloud.i18n import Translator
from helmet_cloud.i18n import translator as make_translator
from helmet_cloud.services import towns
from helmet_cloud.timeutil import aware

TEMPLATES = Path(__file__).parent / "templates"
env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "svg"]), auto_reload=False)
# Codes as words (``_(word("slot_state", s))``) and alerts as people read them, on every page.
env.globals.update(word=words.word, alert_text=alert_view.text, alert_href=alert_view.href)


def language(request: Request) -> str:
    return i18n.negotiate(
        request.query_params.get("lang"), request.cookies.get(i18n.COOKIE), request.headers.get("accept-language")
    )


def translator(request: Request, town_id: str | None = None) -> Translator:
    """The request's language with the clock of ``town_id`` (the default town's when None)."""
    return make_translator(language(request), towns.zone_name_for(request.app.state.ctx.engine, town_id))


def shown(t: Translator, error: CloudError) -> str:
    """A refusal as the reader reads it: its English message translated, then its fields filled in."""
    return t._(error.message, **error.fields)


@cache
def content_policy(*tile_urls: str | None) -> str:
    """Only this site's scripts, styles and forms; images also from the map's tile servers, if any is set."""
    images = "'self' data:"
    for tile_url in dict.fromkeys(tile_urls):
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
    """Render ``template`` in the request's language; ``cookie`` names the session whose CSRF value forms carry.

    Times are shown on the clock of the town ``context["town_id"]`` names (the default town's without one).
    """
    t = translator(request, (context or {}).get("town_id"))
    lang = t.lang

    def localtime(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
        return aware(value).astimezone(t.zone).strftime(fmt) if value is not None else ""

    token = request.cookies.get(cookie) if cookie else None
    values = {
        "request": request,
        "lang": lang,
        "html_lang": i18n.HTML_LANG[lang],
        "other_lang": "zh" if lang == "en" else "en",
        "_": t._,
        "named": lambda place: t.name(place.name, getattr(place, "names", None)),
        "programme": t.name(request.app.state.ctx.settings.feed_name, request.app.state.ctx.settings.feed_names),
        "ngettext": t.ngettext,
        "t": t,
        "csrf": csrf_for(token) if token else "",
        "localtime": localtime,
        "settings": request.app.state.ctx.settings,
        **(context or {}),
    }
    if isinstance(values.get("error"), CloudError):  # a refusal: in the reader's language, fields filled in after
        values["error"] = shown(t, values["error"])
    elif values.get("error") is None and cookie:
        found = flashed(token, request.query_params.get("error"))
        values["error"] = shown(t, found) if found is not None else None
    body = env.get_template(template).render(values)
    response = HTMLResponse(body, status_code=status_code)
    if request.query_params.get("lang") in i18n.LANGUAGES:
        response.set_cookie(i18n.COOKIE, lang, max_age=365 * 86400, samesite="lax", path="/")
    response.headers["Content-Language"] = i18n.HTML_LANG[lang]
    response.headers["Vary"] = "Accept-Language, Cookie"
    # Pages show personal data (passes, loans) and change all the time: never kept by a cache.
    response.headers["Cache-Control"] = "private, no-store"
    # A page with maps names their towns' tile servers (``tile_urls``); the others allow the deployment's.
    tiles = (context or {}).get("tile_urls") or (request.app.state.ctx.settings.map_tile_url,)
    response.headers["Content-Security-Policy"] = content_policy(*tiles)
    response.headers["Referrer-Policy"] = "same-origin"  # a pass page's address names the pass
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
