"""When alert rules run: after each ingest batch for what it touched, and on a timer for the rest.

:class:`Alerter` evaluates in its own transaction, after ingest has committed,
and hands opened and resolved alerts to ``notify`` (the webhook sender) only
once that transaction has committed. :class:`AlertSweeper` runs the
time-based rules (offline by silence, loans growing overdue and lost) and
re-checks every station and locker, on a thread next to the ingest worker.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session, col, select

from helmet_cloud.adapters.webhooks import WebhookSender
from helmet_cloud.domain.alert_rules import FAULT_KINDS, FORGED_REASONS
from helmet_cloud.ingest.inventory import HELMET_KINDS, SLOT_KINDS
from helmet_cloud.models import Locker
from helmet_cloud.services.alert_checks import (
    check_forged,
    check_lockers,
    check_passes,
    check_slots,
    check_stations,
)
from helmet_cloud.services.alerts import Changes, Notice
from helmet_cloud.services.committed import Committed
from helmet_cloud.services.helmets import check_retired
from helmet_cloud.services.lifecycle import check_helmets
from helmet_cloud.settings import CloudSettings
from helmet_cloud.timeutil import utcnow
from helmet_protocol.events import EventKind

log = logging.getLogger(__name__)

Notify = Callable[[list[Notice]], None]
Evaluate = Callable[[Session, Changes, datetime], None]


class Alerter:
    """Runs the alert rules; ``clock`` is injectable so tests can move time instead of sleeping."""

    def __init__(
        self,
        settings: CloudSettings,
        engine: Engine,
        *,
        notify: Notify | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.notify = notify
        self.clock = clock

    def after_commit(self, change: Committed) -> None:
        """Evaluate what one committed ingest batch touched: its newly stored events and the lockers heard from."""
        new, heard = change.events, change.lockers_heard
        stocked = {e.locker_id for e in new if e.kind in SLOT_KINDS}
        helmets = {e.helmet_id for e in new if e.helmet_id and e.kind in HELMET_KINDS}
        slots = {(e.locker_id, e.slot) for e in new if e.slot is not None and e.kind in FAULT_KINDS}
        passes = {e.pass_id for e in new if e.pass_id and e.kind == EventKind.HELMET_BORROWED}
        forged = [(e.locker_id, e.ts) for e in new if e.kind == EventKind.PASS_REJECTED and e.reason in FORGED_REASONS]
        settings = self.settings

        def evaluate(session: Session, changes: Changes, now: datetime) -> None:
            if heard:
                check_lockers(session, changes, now, settings, heard)
            if stocked:
                stations = session.exec(select(Locker.station_id).where(col(Locker.id).in_(sorted(stocked)))).all()
                check_stations(session, changes, now, stations)
            check_slots(session, changes, now, slots)
            check_passes(session, changes, now, passes)
            if forged:
                check_forged(session, changes, now, settings, forged)
            if helmets:
                check_helmets(session, changes, now, settings, helmets)
                check_retired(session, changes, now, helmets)

        if heard or stocked or slots or passes or forged or helmets:
            self.run(evaluate, self.clock())

    def sweep(self, now: datetime | None = None) -> None:
        """Every locker and station, and every loan that may have aged past a threshold."""
        settings = self.settings

        def evaluate(session: Session, changes: Changes, at: datetime) -> None:
            check_lockers(session, changes, at, settings, None)
            check_stations(session, changes, at, None)
            check_helmets(session, changes, at, settings, None)

        self.run(evaluate, now or self.clock())

    def run(self, evaluate: Evaluate, now: datetime) -> None:
        """One transaction; retried once when another worker opened the same alert at the same moment."""
        for attempt in (1, 2):
            changes = Changes()
            try:
                with Session(self.engine) as session:
                    evaluate(session, changes, now)
                    session.flush()
                    notices = changes.notices()
                    session.commit()
            except (IntegrityError, OperationalError) as exc:
                if attempt == 2:
                    raise
                log.info("alert evaluation collided with another worker, retrying: %s", exc.__class__.__name__)
                continue
            for n in notices:
                log.info("%s: %s %s %s", n.event, n.alert["kind"], n.alert["subject_id"], n.alert["message"])
            if notices and self.notify is not None:
                self.notify(notices)
            return


class AlertSweeper:
    """Calls :meth:`Alerter.sweep` at start and then every ``interval`` seconds, on its own thread."""

    def __init__(self, alerter: Alerter, interval: float) -> None:
        self.alerter = alerter
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="alert-sweeper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.alerter.sweep()
            except Exception:  # the database may be restarting: try again next time
                log.exception("alert sweep failed")
            self._stop.wait(self.interval)


def build_alerting(settings: CloudSettings, engine: Engine) -> tuple[Alerter, WebhookSender | None]:
    """An alerter and, when webhook URLs are set, its (not yet started) webhook sender."""
    sender = WebhookSender.from_settings(settings) if settings.webhook_urls else None
    return Alerter(settings, engine, notify=sender.send if sender is not None else None), sender
