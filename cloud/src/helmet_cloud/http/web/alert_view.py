"""How an alert reads on a page: its text in the reader's language, and a link to what it is about."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

from helmet_cloud.domain.alert_texts import fill
from helmet_cloud.models import Alert

log = logging.getLogger(__name__)


def params_of(alert: Alert) -> dict[str, Any]:
    try:
        value = json.loads(alert.params) if alert.params else {}
    except ValueError:
        log.warning("alert %s has unreadable params", alert.id)
        return {}
    return value if isinstance(value, dict) else {}


def station_ids(alerts: Iterable[Alert]) -> set[str]:
    """The stations the alerts' texts name, for :func:`text` to show in the page's language."""
    return {str(p["station_id"]) for a in alerts if "station_id" in (p := params_of(a))}


def text(
    alert: Alert,
    gettext: Callable[[str], str],
    localtime: Callable[[datetime], str],
    stations: Mapping[str, str] | None = None,
) -> str:
    """The alert in the page's language, the station by its name in it (``stations``: id to name); a row from
    before templates shows its stored English."""
    if not alert.template:
        return alert.message
    params = params_of(alert)
    local = (stations or {}).get(str(params.get("station_id", "")))
    if local:
        params["station"] = local
    return fill(alert.template, params, gettext, lambda iso: localtime(datetime.fromisoformat(iso)))


def href(alert: Alert) -> str | None:
    """The page of the alert's subject: station, locker (at the slot), helmet, or the resident's loans."""
    kind, sid = alert.subject_type, alert.subject_id
    if kind == "station":
        return f"/staff/stations/{quote(sid)}"
    if kind == "locker":
        return f"/tech/lockers/{quote(sid)}"
    if kind == "slot":
        locker, _, slot = sid.partition("/")
        return f"/tech/lockers/{quote(locker)}#slot-{quote(locker)}-{quote(slot)}"
    if kind == "helmet":
        return f"/tech/helmets/{quote(sid)}"
    if kind == "resident":
        return "/staff/loans?" + urlencode({"status": "all", "resident": sid})
    if kind == "pass":  # shown with its holder's loans
        holder = params_of(alert).get("resident")
        return "/staff/loans?" + urlencode({"status": "all", "resident": holder}) if holder else None
    return None
