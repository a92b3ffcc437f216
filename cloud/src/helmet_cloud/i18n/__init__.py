"""Every text a person reads, in Simplified Chinese and English: the one message catalogue.

Messages are written in English in the code and templates (``_("Sign in")``,
``ngettext("{n} free slot", "{n} free slots", n)``); the Chinese catalogue
``zh.po`` (gettext, maintained as text, compiled in memory with Babel at start)
maps each to its translation, plurals by the language's CLDR rule. English
needs no catalogue. Fields are ``str.format`` style: ``{n}``, ``{station}``.

The pages, the API's refusals shown on them (:class:`helmet_cloud.errors.CloudError`
carries its message and fields apart, so it is translated before it is filled in),
alert texts and the SMS all go through :func:`translator`. ``N_`` marks a message
for the catalogue where it is defined and translated later, where it is shown.
"""

from __future__ import annotations

import gettext as _gettext
import io
import logging
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

log = logging.getLogger(__name__)

LANGUAGES = ("en", "zh")
DEFAULT = "en"
CATALOGUES = Path(__file__).parent
# The HTML lang attribute (a BCP 47 tag) of each language.
HTML_LANG = {"en": "en", "zh": "zh-Hans"}


def N_(message: str) -> str:
    """Mark ``message`` for the catalogue without translating it here."""
    return message


def parse_accept_language(header: str) -> str | None:
    """The supported language the browser prefers most, or None (RFC 9110 q-values; ties keep header order)."""
    choices: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")[:32]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                continue
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES and quality > 0:
            choices.append((-quality, index, primary))
    return min(choices)[2] if choices else None


def negotiate(query: str | None, cookie: str | None, accept_language: str | None) -> str:
    """An explicit ``?lang=`` first, then the remembered choice, then the browser's preference."""
    for explicit in (query, cookie):
        if explicit in LANGUAGES:
            return explicit
    return parse_accept_language(accept_language or "") or DEFAULT


@cache
def translations(lang: str) -> _gettext.NullTranslations:
    """The compiled catalogue of ``lang`` (English: none, messages are English)."""
    if lang not in LANGUAGES or lang == DEFAULT:
        return _gettext.NullTranslations()
    with (CATALOGUES / f"{lang}.po").open("rb") as f:
        po = read_po(f)
    buffer = io.BytesIO()
    write_mo(buffer, po)
    buffer.seek(0)
    return _gettext.GNUTranslations(buffer)


def _fill(text: str, fields: dict[str, Any]) -> str:
    if not fields:
        return text
    try:
        return text.format(**fields)
    except (KeyError, IndexError, ValueError):  # a translation naming a field the caller did not give
        log.warning("message %r could not be filled with %s", text, sorted(fields))
        return text


@dataclass(frozen=True)
class Translator:
    """One language's ``_``, ``ngettext`` and proper names, on one town's clock."""

    lang: str
    zone: ZoneInfo

    def _(self, message: str, **fields: Any) -> str:
        return _fill(translations(self.lang).gettext(message), fields)

    def ngettext(self, singular: str, plural: str, n: int, **fields: Any) -> str:
        """The form for ``n`` by the language's plural rule; ``{n}`` is filled with ``n``."""
        return _fill(translations(self.lang).ngettext(singular, plural, n), {"n": n, **fields})

    def name(self, english: str, names: dict[str, str] | None) -> str:
        """A proper name (a station, the programme) in this language: its own name here, else the English one."""
        return (names or {}).get(self.lang) or english


def zone(name: str | None) -> ZoneInfo:
    """The IANA zone ``name``; UTC (logged) when it is missing or unknown."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("unknown time zone %r: times are shown in UTC", name)
        return ZoneInfo("UTC")


def translator(lang: str, zone_name: str | None = None) -> Translator:
    return Translator(lang if lang in LANGUAGES else DEFAULT, zone(zone_name))
