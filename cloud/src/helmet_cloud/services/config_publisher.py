"""Keeps every locker's retained config naming the passes it must refuse (docs/mqtt.md, "config").

A pass used or withdrawn in this process (ingest in the API process, "open now", a withdrawal) is
announced on the commit hook; the publisher then waits :data:`COALESCE_S` so that a burst of uses
becomes one publish per locker, reads the refusals and republishes the config of each locker whose
lists changed since this process last published it. Every ``check_every`` seconds it also looks
without being told: a separate ``helmet-cloud ingest`` process records uses this process never hears
of, and refusals lapse as passes expire. When the broker connection comes back, every config goes
out again (it carries the current pass keys).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from sqlmodel import Session, select

from helmet_cloud.context import AppContext
from helmet_cloud.domain.pass_refusals import refused_at
from helmet_cloud.models import Locker
from helmet_cloud.services.committed import Committed
from helmet_cloud.services.lockers import publish_config
from helmet_cloud.services.pass_refusals import current_refusals
from helmet_cloud.timeutil import utcnow

log = logging.getLogger(__name__)

COALESCE_S = 0.2  # after a pass is used: wait this long for the rest of a burst, then publish once

Fingerprint = tuple[int, tuple[str, ...], tuple[str, ...]]


class ConfigPublisher:
    def __init__(
        self,
        ctx: AppContext,
        *,
        check_every: float,
        coalesce: float = COALESCE_S,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.ctx = ctx
        self.check_every = check_every
        self.coalesce = coalesce
        self.clock = clock
        self.published = 0  # configs published, for tests and logs
        self._sent: dict[str, Fingerprint] = {}  # what this process last published to each locker
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._force = False
        self._thread = threading.Thread(target=self._run, name="config-publisher", daemon=True)

    def changed(self, change: Committed) -> None:
        """Commit-hook subscriber: a pass was used or withdrawn."""
        if change.passes_changed:
            self._wake.set()

    def force(self) -> None:
        """Publish every locker's config at once (the broker connection came back); safe from any thread."""
        self._force = True
        self._wake.set()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            woken = self._wake.wait(self.check_every)
            if self._stop.is_set():
                return
            if woken and not self._force:
                self._stop.wait(self.coalesce)
            self._wake.clear()
            force, self._force = self._force, False
            try:
                self.publish(force=force)
            except Exception:  # the database may be restarting: the next check tries again
                log.exception("publishing the lockers' configs failed")
                self._force = self._force or force

    def publish(self, *, force: bool = False) -> int:
        """Republish the config of each locker whose refused passes changed (every locker with ``force``)."""
        if not self.ctx.mqtt.connected.is_set():
            self._force = self._force or force  # nothing reaches the broker now; on_connect forces anyway
            return 0
        now = self.clock()
        with Session(self.ctx.engine) as session:
            lockers = session.exec(select(Locker)).all()
            refusals = current_refusals(session, now)
        sent = 0
        for locker in lockers:
            refused = refused_at(locker.id, refusals, now=now)
            print_ = (locker.slot_count, refused.revoked, refused.used)
            if not force and self._sent.get(locker.id) == print_:
                continue
            if refused.left_out:
                log.warning(
                    "config for %s: %d refused passes do not fit (limit %d); the ones closest to expiry are left out",
                    locker.id, refused.left_out, len(refused.revoked) + len(refused.used),
                )  # fmt: skip
            if publish_config(self.ctx, locker, refused):
                self._sent[locker.id] = print_
                sent += 1
        if sent:
            self.published += sent
            log.info("published %d locker config(s): %d pass(es) refused", sent, len(refusals))
        return sent
