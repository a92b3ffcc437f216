"""The fill level's words (helmet_cloud.domain.fill_level): what the pages write beside each colour."""

from __future__ import annotations

from types import MappingProxyType

from helmet_cloud.domain.fill_level import FillLevel
from helmet_cloud.i18n import N_

# The level's name, beside its colour in the table, on the map and in the alerts.
WORDS = MappingProxyType(
    {
        FillLevel.EMPTY: N_("Station empty"),
        FillLevel.LOW: N_("Few helmets"),
        FillLevel.NORMAL: N_("Normal"),
        FillLevel.FULL: N_("Station full"),
    }
)
NO_LEVEL = N_("No usable slot")
# What each means, for the legend; in the order of the scale, then "no usable slot".
MEANINGS = (
    ("empty", WORDS[FillLevel.EMPTY], N_("no helmet to lend")),
    ("low", WORDS[FillLevel.LOW], N_("fewer helmets than the station's low threshold")),
    ("normal", WORDS[FillLevel.NORMAL], N_("helmets to lend and room for returns")),
    ("full", WORDS[FillLevel.FULL], N_("fewer free slots than the station's full threshold: returns may find no room")),
    ("none", NO_LEVEL, N_("every slot disabled or in fault, or no locker yet")),
)


def word(level: str | None) -> str:
    """The English word for ``level`` (a FillLevel value, or None); the page translates it."""
    return WORDS[FillLevel(level)] if level else NO_LEVEL
