"""How an alert reads on a page: its text in the reader's language, and a link to what it is about."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
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


def text(alert: Alert, gettext: Callable[[str], str], localtime: Callable[[datetime], str]) -> str:
    """The alert in the page's language; a row from before templates (or with an unknown one) shows its English."""
    if not alert.template:
        return alert.message
    return fill(alert.template, params_of(alert), gettext, lambda iso: localtime(datetime.fromisoformat(iso)))


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
