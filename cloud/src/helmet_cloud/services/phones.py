"""Residents' phone numbers at every door: sign-in on the pages and the API, staff looking a resident up.

One rule (:func:`helmet_cloud.domain.phones.phone_number`) with one region: the town's (``Town.phone_region``),
else the deployment's ``default_phone_region``. A refused number is logged and changes nothing.
"""

from __future__ import annotations

import logging

from sqlmodel import Session, select

from helmet_cloud.domain.phones import PhoneRefusedError, masked, phone_number
from helmet_cloud.models import Resident, Station, Town
from helmet_cloud.settings import CloudSettings

log = logging.getLogger(__name__)


def region(session: Session, settings: CloudSettings, *, town_id: str | None = None) -> str:
    """The region numbers without a country code are read in: the town's, else the deployment's."""
    town = session.get(Town, town_id) if town_id else None
    return (town.phone_region if town is not None else None) or settings.default_phone_region


def station_region(session: Session, settings: CloudSettings, station_id: str) -> str:
    station = session.get(Station, station_id)
    return region(session, settings, town_id=station.town_id if station is not None else None)


def normalised(session: Session, settings: CloudSettings, typed: str, *, town_id: str | None = None) -> str:
    """``typed`` in E.164, read in the town's region; :class:`PhoneRefusedError` (logged) if it cannot be."""
    where = region(session, settings, town_id=town_id)
    try:
        return phone_number(typed, where)
    except PhoneRefusedError as exc:
        log.info("phone number refused (%s in %s): %d characters typed", exc.reason, where, len(typed))
        raise


def find_resident(session: Session, settings: CloudSettings, typed: str) -> Resident | None:
    """The resident staff typed: an ``R-...`` id, or their number in any local or international form.

    A local number is read in the deployment's region, then in each town's own, so staff at the desk find a
    resident who signed in at a town whose numbers are read differently.
    """
    text = typed.strip()
    if text.upper().startswith("R-"):
        return session.get(Resident, text.upper())
    regions = [settings.default_phone_region]
    regions += sorted({t.phone_region for t in session.exec(select(Town)).all() if t.phone_region} - set(regions))
    numbers: list[str] = []
    for where in regions:
        try:
            number = phone_number(text, where)
        except PhoneRefusedError:
            continue
        if number not in numbers:
            numbers.append(number)
    for number in numbers:
        found = session.exec(select(Resident).where(Resident.phone == number)).first()
        if found is not None:
            log.info("resident looked up by phone %s: %s", masked(number), found.id)
            return found
    log.info("resident looked up by phone: none (%d readings)", len(numbers))
    return None
