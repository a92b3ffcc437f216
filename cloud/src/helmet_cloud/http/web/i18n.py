"""Simplified Chinese and English: which one a request gets, and the message catalogs.

Templates write English messages (``{{ _("Sign in") }}``); the Chinese catalog
``catalogs/zh.json`` maps each English message to its translation. English needs
no catalog. A ``?lang=`` link switches and a cookie remembers the choice;
otherwise the browser's ``Accept-Language`` decides.
"""

from __future__ import annotations

import json
import logging
from functools import cache
from pathlib import Path

from helmet_cloud.domain.roles import Role
from helmet_cloud.domain.states import AlertSeverity, AlertStatus, CommandStatus, HelmetStatus, LoanStatus
from helmet_protocol.events import SlotState

log = logging.getLogger(__name__)

LANGUAGES = ("en", "zh")
DEFAULT = "en"
COOKIE = "helmet_lang"
CATALOGS = Path(__file__).parent / "catalogs"
# The HTML lang attribute of each language.
HTML_LANG = {"en": "en", "zh": "zh-Hans"}


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
def catalog(lang: str) -> dict[str, str]:
    if lang == DEFAULT:
        return {}
    data: dict[str, str] = json.loads((CATALOGS / f"{lang}.json").read_text(encoding="utf-8"))
    return data


def gettext(lang: str, message: str) -> str:
    """``message`` in ``lang``; an untranslated message shows in English (and a test catches it)."""
    return catalog(lang).get(message, message)


# Messages that reach ``_()`` as values rather than literals in a template: states, statuses, roles,
# login errors and chart titles (page errors are found in the code). The catalog test checks these too.
_STATES = (*SlotState, *HelmetStatus, *LoanStatus, *AlertStatus, *AlertSeverity, *CommandStatus)
DYNAMIC_MESSAGES = (
    *dict.fromkeys(str(v) for v in (*_STATES, *(r for r in Role if r != Role.RESIDENT))),
    "Wrong username or password.",
    "Borrows and returns per hour",
    "Borrows and returns per day",
    "Map of stations",
)
