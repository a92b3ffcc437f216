"""What the locker tells the cloud about itself: its retained ``status`` and ``state``.

``status`` goes at connect (the link sends it), every ``mqtt.status_interval_s``, when the camera's
health changes, and at once when the wall clock steps: the cloud corrects event times by this locker's
clock offset, estimated from live statuses, so it must hear of a step before the next events.
``state`` goes after a change, at most every 0.25 s.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from helmet_edge.config import EdgeSettings
from helmet_edge.ports import Clock, Link, Store
from helmet_edge.slot_machine import SlotMachine
from helmet_protocol.messages import SlotReport, State, Status
from helmet_protocol.topics import Channel

log = logging.getLogger(__name__)
CLOCK_STEP_S = 2.0  # a jump of the wall clock against the monotonic one larger than this is a step
STATE_EVERY_S = 0.25  # at most this often a changed state is published


class ClockStepWatch:
    """Notices the wall clock jumping against the monotonic one (NTP stepped it, someone set it)."""

    def __init__(self, clock: Clock, limit_s: float = CLOCK_STEP_S) -> None:
        self.clock = clock
        self.limit_s = limit_s
        # From the start, not the first turn: the status sent at connect may already carry the old time.
        self._wall_minus_mono = clock.wall().timestamp() - clock.mono()

    def stepped(self, mono: float) -> bool:
        wall_minus_mono = self.clock.wall().timestamp() - mono
        last, self._wall_minus_mono = self._wall_minus_mono, wall_minus_mono
        stepped = abs(wall_minus_mono - last) > self.limit_s
        if stepped:
            log.warning("the wall clock stepped by %+.1f s", wall_minus_mono - last)
        return stepped


class Publisher:
    def __init__(self, settings: EdgeSettings, *, boot_id: str, clock: Clock, store: Store) -> None:
        self.settings = settings  # read on every turn: status_interval_s may change while running
        self.boot_id = boot_id
        self.clock = clock
        self.store = store
        self.camera_ok: bool | None = None
        self.state_dirty = True
        self._state_sent_at = 0.0
        self._status_sent_at = 0.0
        self._steps = ClockStepWatch(clock)
        self._step_unsent = False

    def status(self, *, online: bool) -> bytes:
        return Status(
            locker_id=self.settings.locker_id,
            online=online,
            boot_id=self.boot_id,
            fw=self.settings.fw,
            ts=self.clock.wall(),
            camera_ok=self.camera_ok,
        ).to_json()

    def connected(self, mono: float) -> None:
        """The link has just connected and published the online status itself."""
        self._status_sent_at = mono
        self.state_dirty = True

    def publish_status(self, link: Link, mono: float) -> None:
        if link.connected:
            self._status_sent_at = mono
            link.publish(Channel.STATUS, self.status(online=True), retain=True)

    def before_events(self, link: Link, mono: float) -> None:
        """Once per turn, before the outbox is pumped: a clock step is announced first.

        A step seen while the link is down waits for it: the status the link sends as it connects may
        have been made before the step.
        """
        if self._steps.stepped(mono):
            self._step_unsent = True
        if self._step_unsent and link.connected:
            self._step_unsent = False
            self.publish_status(link, mono)

    def after_events(self, link: Link, mono: float, machines: Mapping[int, SlotMachine]) -> None:
        """Once per turn, after the outbox: a changed state, and the periodic status."""
        if not link.connected:
            return
        if self.state_dirty and mono - self._state_sent_at >= STATE_EVERY_S:
            reports = [SlotReport(slot=n, state=m.state, helmet_id=m.record.helmet_id) for n, m in machines.items()]
            state = State(
                locker_id=self.settings.locker_id, seq=self.store.last_seq(), ts=self.clock.wall(), slots=reports
            )
            if link.publish(Channel.STATE, state.to_json(), retain=True) is not None:
                self.state_dirty = False
                self._state_sent_at = mono
        if mono - self._status_sent_at >= self.settings.mqtt.status_interval_s:
            self.publish_status(link, mono)
