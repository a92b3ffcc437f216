"""What an alert says, written for people: a catalogue template and its fields, filled in per language.

An alert stores its template (English, the catalogue's message id) and its fields
as JSON; a page fills them in the reader's language, the API and webhooks get
the English text (``Alert.message``). Fields are plain values, except:

- fields named in :data:`FIELD_WORDS` hold codes (a fault reason, or a mapping of
  reject reasons to counts) and are shown as words;
- fields ending in ``_at`` hold ISO times, shown in the reader's time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from helmet_cloud.domain.words import word

log = logging.getLogger(__name__)

# Each alert's templates. Stock alerts name the numbers that raised them; the station is its name.
STATION_EMPTY = "No helmets at {station}: nobody can borrow here until it is restocked"
STATION_LOW = "Few helmets at {station}: {helmets} left (this alert starts below {low})"
STATION_FULL_NONE = "No free slot at {station}: returns may find no room (all {slots} slots hold a helmet)"
STATION_FULL_FEW = "Almost no free slot at {station}: {free} of {slots} free, returns may find no room"
LOCKER_DROPPED = "Locker {locker} at {station} is offline: its connection dropped"
LOCKER_SILENT = "Locker {locker} at {station} is offline: nothing heard since {last_at}"
DOOR_AJAR = "Door left open at {station}: locker {locker}, slot {slot}"
SLOT_FAULT = "Slot fault at {station}: locker {locker}, slot {slot}: {fault}"
OVERUSED = (
    "A pass of resident {resident} was used beyond its limit: it was for {quantity}, helmets taken: {taken} ({where})"
)
FORGED_PASSES = "Forged passes at locker {locker}: {count} attempts within {minutes} min ({reasons})"
HELMET_OVERDUE = "Helmet {helmet} is overdue: borrowed by {resident} at {station} on {borrowed_at}"
HELMET_MISSING = "Helmet {helmet} is missing: borrowed by {resident} at {station} on {borrowed_at}"
HELMET_LOST = "Helmet {helmet} is lost: borrowed by {resident} at {station} on {borrowed_at}"
HELMET_FOUND = "Helmet {helmet}, lost since {lost_at}, is back at {station} ({returned_at})"
HELMET_FOUND_SOMEWHERE = "Helmet {helmet}, lost since {lost_at}, is back ({returned_at})"
HELMET_RETIRED = "Retired helmet {helmet} is in locker {locker}, slot {slot}: take it out of service"
UNKNOWN_RESIDENT = "an unknown resident"

TEMPLATES = (
    STATION_EMPTY,
    STATION_LOW,
    STATION_FULL_NONE,
    STATION_FULL_FEW,
    LOCKER_DROPPED,
    LOCKER_SILENT,
    DOOR_AJAR,
    SLOT_FAULT,
    OVERUSED,
    FORGED_PASSES,
    HELMET_OVERDUE,
    HELMET_MISSING,
    HELMET_LOST,
    HELMET_FOUND,
    HELMET_FOUND_SOMEWHERE,
    HELMET_RETIRED,
)
# Messages a field's value may be, translated like the template.
FIELD_MESSAGES = (UNKNOWN_RESIDENT,)
# Fields whose values are codes, and the vocabulary (helmet_cloud.domain.words) that names them.
FIELD_WORDS = {"fault": "fault", "reasons": "reject"}


def english_time(iso: str) -> str:
    return f"{datetime.fromisoformat(iso):%Y-%m-%d %H:%M} UTC"


@dataclass(frozen=True, slots=True)
class AlertText:
    """One alert's template and fields (JSON values: str, int, or a mapping of codes to counts)."""

    template: str
    params: dict[str, Any] = field(default_factory=dict)

    def english(self) -> str:
        return fill(self.template, self.params)


def _identity(message: str) -> str:
    return message


def fill(
    template: str,
    params: Mapping[str, Any],
    translate: Callable[[str], str] = _identity,
    when: Callable[[str], str] = english_time,
) -> str:
    """``template`` translated and filled: codes as (translated) words, times by ``when``."""
    values: dict[str, Any] = {}
    for key, value in params.items():
        vocab = FIELD_WORDS.get(key)
        if vocab is not None and isinstance(value, Mapping):
            values[key] = ", ".join(f"{translate(word(vocab, code))} ({n})" for code, n in value.items())
        elif vocab is not None:
            values[key] = translate(word(vocab, str(value)))
        elif key.endswith("_at") and isinstance(value, str):
            try:
                values[key] = when(value)
            except ValueError:
                values[key] = value
        elif isinstance(value, str) and value in FIELD_MESSAGES:
            values[key] = translate(value)
        else:
            values[key] = value
    text = translate(template)
    try:
        return text.format(**values)
    except (KeyError, IndexError, ValueError):  # a translation naming a field the alert does not have
        log.warning("alert template %r could not be filled with %s", text, sorted(values))
        return template.format_map(_Missing(values))


class _Missing(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"
