"""Helmet stickers: ``https://{host}/h/{helmet_id}``; station posters: ``https://{host}/s/{station_id}``.

A phone opens a sticker's URL as the helmet's info page; the kiosk reads the helmet id. A poster's URL
is for a phone only (the station page, where a pass is asked for); the locker's screen shows it too.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from helmet_protocol.errors import ProtocolError

HELMET_ID_RE = re.compile(r"^H-[0-9A-Z]{1,12}$")


def poster_url(host: str, station_id: str) -> str:
    return f"https://{host}/s/{station_id}"


def is_poster_url(text: str, *, host: str | None = None) -> bool:
    """A station poster's URL (``https://{host}/s/{station}``), of ``host`` when one is given."""
    parts = urlsplit(text)
    if parts.scheme != "https" or (host is not None and parts.hostname != host.lower()):
        return False
    return re.fullmatch(r"/s/[^/]+/?", parts.path) is not None


def helmet_url(host: str, helmet_id: str) -> str:
    if not HELMET_ID_RE.fullmatch(helmet_id):
        raise ProtocolError(f"invalid helmet id {helmet_id!r}: expected e.g. 'H-00042'")
    return f"https://{host}/h/{helmet_id}"


def parse_helmet_url(text: str, *, host: str | None = None) -> str:
    """Return the helmet id of a sticker URL, or raise :class:`ProtocolError`.

    With ``host`` given, a sticker from any other host is refused: a QR that
    merely looks like ours must not open a slot.
    """
    if len(text) > 300:
        raise ProtocolError("too long for a helmet sticker")
    parts = urlsplit(text)
    if parts.scheme != "https" or not parts.netloc:
        raise ProtocolError("not an https URL")
    if host is not None and parts.hostname != host.lower():
        raise ProtocolError(f"sticker of another host {parts.hostname!r}")
    match = re.fullmatch(r"/h/([^/]+)/?", parts.path)
    if not match or parts.query or parts.fragment or not HELMET_ID_RE.fullmatch(match.group(1)):
        raise ProtocolError("not a helmet sticker URL (/h/{helmet_id})")
    return match.group(1)
