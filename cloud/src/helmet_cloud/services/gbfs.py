"""The public feed's documents, in GBFS v3.0 form, built from stations, lockers and slots.

Helmets are not vehicles, but the GBFS vehicle fields are what feed
consumers read, so a helmet is counted as a vehicle and a slot as a dock
(docs/api.md, "Public feed"). No ``vehicle_types.json`` is published, so the
plain ``num_vehicles_available`` / ``num_docks_available`` counts apply.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from helmet_cloud.i18n import DEFAULT, HTML_LANG, LANGUAGES
from helmet_cloud.models import Station
from helmet_cloud.services import towns
from helmet_cloud.services.station_stock import station_stock
from helmet_cloud.settings import CloudSettings
from helmet_cloud.timeutil import aware

GBFS_VERSION = "3.0"
# The files listed in gbfs.json, by their GBFS names; each is served at /gbfs/{name}.json.
FEEDS = ("system_information", "station_information", "station_status", "system_alerts")


def rfc3339(value: datetime) -> str:
    """GBFS v3.0 timestamps: RFC 3339, whole seconds, UTC."""
    return aware(value).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def document(data: dict[str, Any], *, ttl: int, now: datetime) -> dict[str, Any]:
    """The envelope every GBFS v3.0 file shares."""
    return {"last_updated": rfc3339(now), "ttl": ttl, "version": GBFS_VERSION, "data": data}


def localized(text: str, language: str, others: dict[str, str] | None = None) -> list[dict[str, str]]:
    """GBFS v3 localized text in every language the feed lists: ``text`` in the feed's language, and in each
    of the pages' other languages its own name where it has one, else ``text`` (a proper name reads as it is)."""
    out = [{"text": text, "language": language}]
    for lang in LANGUAGES:
        if lang != DEFAULT:
            out.append({"text": (others or {}).get(lang) or text, "language": HTML_LANG[lang]})
    return out


def languages(settings: CloudSettings) -> list[str]:
    """The feed's language first, then every other language a name is given in (the pages' languages)."""
    return [settings.feed_language, *(HTML_LANG[x] for x in LANGUAGES if x != DEFAULT)]


def system_information(session: Session, settings: CloudSettings) -> dict[str, Any]:
    """The feed's system: the programme as settings name it, on the default town's clock."""
    return {
        "system_id": settings.feed_system_id,
        "languages": languages(settings),
        "name": localized(settings.feed_name, settings.feed_language, settings.feed_names),
        "opening_hours": settings.feed_opening_hours,
        "feed_contact_email": settings.feed_contact_email,
        "timezone": towns.zone_name(session),
    }


def station_information(session: Session, settings: CloudSettings) -> dict[str, Any]:
    stations = session.exec(select(Station).order_by(col(Station.id))).all()
    stock = station_stock(session, [st.id for st in stations])
    out = []
    for st in stations:
        row: dict[str, Any] = {
            "station_id": st.id,
            "name": localized(st.name, settings.feed_language, st.names),
            "lat": st.lat,
            "lon": st.lon,
        }
        if st.address:  # GBFS optional fields are left out rather than sent empty
            row["address"] = st.address
        row["capacity"] = stock[st.id].counts.capacity
        out.append(row)
    return {"stations": out}


def station_status_feed(session: Session, *, now: datetime) -> dict[str, Any]:
    """Per station: helmets and free slots, and whether an online locker lends and takes them back.

    The counts are :mod:`helmet_cloud.domain.station_counts`' (the API's and the pages'); the four add up to
    ``capacity`` in ``station_information.json``.
    """
    ids = session.exec(select(Station.id).order_by(col(Station.id))).all()
    stock = station_stock(session, ids)
    stations = []
    for station_id in ids:
        st = stock[station_id]
        c = st.counts
        stations.append(
            {
                "station_id": station_id,
                "num_vehicles_available": c.helmets_available,
                "num_vehicles_disabled": c.helmets_disabled,
                "num_docks_available": c.free_slots,
                "num_docks_disabled": c.free_slots_disabled,
                "is_installed": st.last_reported is not None,
                "is_renting": c.renting,
                "is_returning": c.returning,
                # A station none of whose lockers ever reported has no time of its own: it is not installed.
                "last_reported": rfc3339(st.last_reported or now),
            }
        )
    return {"stations": stations}


def system_alerts() -> dict[str, Any]:
    """No alerts are published yet; the document is still a valid, empty list."""
    return {"alerts": []}
