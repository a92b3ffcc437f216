"""The pages' language: which one a request gets, and the messages pages show as values.

The catalogue and the rules live in :mod:`helmet_cloud.i18n` (pages, API refusals,
alerts and texts share it). Here: a ``?lang=`` link switches and a cookie remembers
the choice; otherwise the browser's ``Accept-Language`` decides.
"""

from __future__ import annotations

from helmet_cloud.domain import alert_texts, words
from helmet_cloud.i18n import DEFAULT, HTML_LANG, LANGUAGES, N_, negotiate, parse_accept_language, translations

__all__ = ["COOKIE", "DEFAULT", "DYNAMIC_MESSAGES", "HTML_LANG", "LANGUAGES", "gettext", "negotiate"]
__all__ += ["parse_accept_language"]

COOKIE = "helmet_lang"


def gettext(lang: str, message: str) -> str:
    """``message`` in ``lang``; an untranslated message shows in English (and a test catches it)."""
    return translations(lang).gettext(message)


# Messages that reach ``_()`` as values rather than literals in a template: the words for codes (states,
# statuses, event kinds, fault reasons, roles: helmet_cloud.domain.words), alert texts, login errors and
# chart titles (page errors are found in the code). The catalogue test checks these too.
DYNAMIC_MESSAGES = (
    *words.all_words(),
    *alert_texts.TEMPLATES,
    *alert_texts.FIELD_MESSAGES,
    N_("Wrong username or password."),
    N_("Borrows and returns per hour"),
    N_("Borrows and returns per day"),
    N_("Map of stations"),
)
