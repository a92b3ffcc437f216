"""Each locker's clock offset, estimated from its live status messages, so events order by true time.

A locker stamps events with its own wall clock. A Pi has no battery clock: after a power cut it may run
minutes or hours behind until NTP answers, and a misconfigured one may run ahead. The helmet fold orders a
helmet's events from different lockers by time, so a return at B stamped by a slow clock could sort before
the borrow at A it follows. The cloud therefore estimates, per locker, how far its clock is off:

- A sample is ``cloud receive time - status.ts`` of an *online* status that arrived *live* (not a retained
  copy, not a Last Will): the locker publishes one on every connect and every minute. A sample is the
  offset plus the delivery delay, never less, so the smallest recent sample is the best estimate (NTP's
  minimum filter).
- The estimate takes a sample that is smaller, that comes after a new boot, that is more than
  :data:`STEP` larger (the locker's clock was stepped back, e.g. NTP corrected a fast clock) or once the
  estimate is older than :data:`WINDOW`.
- Offsets under :data:`DEAD_BAND` are treated as zero: delivery jitter must not reorder anything.

Ingest adds the estimate to each event's ``ts`` as it stores it and records the amount in
``rawevent.clock_offset_ms``; the locker's own time stays in the stored payload. An event heard live is its
own sample: it cannot have happened after it arrived, so the correction is never more than its own
``receive time - ts`` (this also covers a clock that NTP stepped forward since the last status).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from helmet_cloud.models import Locker
from helmet_cloud.timeutil import aware

WINDOW = timedelta(minutes=15)
STEP = timedelta(seconds=60)
DEAD_BAND = timedelta(seconds=2)


def observe(locker: Locker, *, status_ts: datetime, received_at: datetime, boot_id: str) -> None:
    """Fold one live online-status sample into the locker's estimate."""
    sample_ms = round((received_at - aware(status_ts)).total_seconds() * 1000)
    current, taken = locker.clock_offset_ms, locker.clock_offset_at
    if (
        taken is None
        or boot_id != locker.clock_offset_boot
        or sample_ms <= current
        or sample_ms - current > STEP.total_seconds() * 1000
        or received_at - aware(taken) > WINDOW
    ):
        locker.clock_offset_ms, locker.clock_offset_at, locker.clock_offset_boot = sample_ms, received_at, boot_id


def correction(locker: Locker, *, event_ts: datetime, received_at: datetime | None) -> timedelta:
    """What to add to the time of an event of this locker's, heard at ``received_at`` (None: not from MQTT)."""
    if locker.clock_offset_at is None:
        return timedelta(0)  # never heard live: nothing to go by
    offset = timedelta(milliseconds=locker.clock_offset_ms)
    if received_at is not None:
        offset = min(offset, received_at - aware(event_ts))
    return offset if abs(offset) >= DEAD_BAND else timedelta(0)
