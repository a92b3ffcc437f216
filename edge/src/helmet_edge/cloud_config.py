"""The rules the locker decides by: its local settings, replaced by the cloud's retained ``config``.

Also the one check of the cloud's ``slot_count`` against the wiring (the pin profile): the cloud counts
slots 1..slot_count, so a slot past it is opened for no pass or sticker (:attr:`Rules.slot_count`), and a
slot the cloud counts that is not wired cannot open at all. Either way the locker says so in its log.
"""

from __future__ import annotations

from datetime import timedelta

from helmet_edge.config import EdgeSettings
from helmet_edge.locker import Rules
from helmet_protocol.keys import load_public_keys
from helmet_protocol.messages import LockerConfig


def rules_from(settings: EdgeSettings, cloud: LockerConfig | None) -> Rules:
    """The local bootstrap rules, with the cloud's keys, limits, refused passes and slot count when it sent them."""
    p, t = settings.passes, settings.timing
    keys, max_q, host, slot_count = p.keys, p.max_quantity, p.helmet_url_host, None
    revoked, used = frozenset[str](), frozenset[str]()
    if cloud is not None:
        keys, max_q, revoked = cloud.pass_keys, cloud.max_quantity, frozenset(cloud.revoked_pass_ids)
        used = frozenset(cloud.used_pass_ids)
        host = cloud.helmet_url_host or host
        slot_count = cloud.slot_count
    return Rules(
        keys=load_public_keys(keys),
        max_quantity=max_q,
        skew=timedelta(seconds=p.skew_s),
        revoked=revoked,
        used=used,
        helmet_host=host,
        maintenance_seconds=t.maintenance_s,
        repeat_window=t.repeat_window_s,
        slot_count=slot_count,
    )


def slot_count_mismatch(cloud: int, wired: int, pin_profile: str) -> str | None:
    """One line for the log when the cloud's ``slot_count`` and the pin profile disagree; ``None`` if they agree."""
    if cloud == wired:
        return None
    head = f"the cloud registered this locker with {cloud} slots, pin profile {pin_profile} wires {wired}"
    fix = f"register the locker with {wired} slots in the cloud, or set the pin_profile it is wired to"
    if cloud < wired:
        return f"{head}: slots {_span(cloud + 1, wired)} open for no pass or sticker until they agree ({fix})"
    return f"{head}: slots {_span(wired + 1, cloud)} do not exist here and never open ({fix})"


def _span(first: int, last: int) -> str:
    return str(first) if first == last else f"{first}-{last}"
