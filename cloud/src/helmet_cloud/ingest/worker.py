"""The ingest worker: subscribes on the shared subscription and feeds batches to an :class:`Ingestor`."""

from __future__ import annotations

import logging
import queue
import threading
import uuid

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from helmet_cloud.adapters.metrics import IngestMetrics
from helmet_cloud.adapters.mqtt import CloudMqtt
from helmet_cloud.ingest.ingestor import AfterCommit, Ingestor
from helmet_cloud.ingest.records import Inbound
from helmet_cloud.settings import CloudSettings
from helmet_cloud.timeutil import utcnow
from helmet_protocol import topics
from helmet_protocol.topics import Channel

log = logging.getLogger(__name__)


def _transient(exc: Exception) -> bool:
    """The database is restarting or unreachable (try again), as opposed to refusing this data (never will)."""
    return isinstance(exc, DBAPIError) and (
        exc.connection_invalidated or isinstance(exc, (OperationalError, InterfaceError))
    )


class IngestWorker:
    """Subscribes on the shared subscription and feeds batches to an :class:`Ingestor`."""

    def __init__(
        self,
        settings: CloudSettings,
        engine: Engine,
        *,
        worker_id: str | None = None,
        metrics: IngestMetrics | None = None,
        after_commit: AfterCommit | None = None,
    ) -> None:
        self.settings = settings
        self.queue: queue.Queue[Inbound] = queue.Queue()
        share = topics.shared if settings.ingest_shared else (lambda f: f)
        subs = (
            share(topics.all_lockers(Channel.EVENTS)),
            topics.all_lockers(Channel.STATUS),
            topics.all_lockers(Channel.STATE),
            share(topics.all_lockers(Channel.CMD_ACK)),
        )
        self.mqtt = CloudMqtt(
            settings,
            worker_id or f"ingest-{uuid.uuid4().hex[:8]}",
            subscriptions=subs,
            on_message=lambda t, p, retained: self.queue.put(Inbound(t, p, None if retained else utcnow())),
        )
        self.ingestor = Ingestor(
            engine, lambda t, p, r: self.mqtt.publish(t, p, retain=r), metrics, after_commit=after_commit
        )
        self.handled = 0  # messages applied by this worker
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ingest", daemon=True)

    def start(self) -> None:
        self.mqtt.start()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.mqtt.stop()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                first = self.queue.get(timeout=0.2)
            except queue.Empty:
                continue
            batch = [first]
            while len(batch) < self.settings.ingest_batch:
                try:
                    batch.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            self._apply(batch)

    def _apply(self, batch: list[Inbound]) -> None:
        """Apply a batch; a message that breaks ingest itself is dead-lettered, never retried forever."""
        try:
            self.ingestor.handle(batch)
            self.handled += len(batch)
        except Exception as exc:
            if _transient(exc):
                self._retry(batch)
            elif len(batch) > 1:  # find the message that breaks it (even a value the database refuses)
                for item in batch:
                    self._apply([item])
            else:
                topic, payload = batch[0].topic, batch[0].payload
                log.exception("ingest failed on one message from %s; dead-lettered", topic)
                try:
                    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                    self.ingestor.dead_letter(topic, payload, f"internal error while ingesting: {reason}"[:500])
                except Exception as again:
                    if not _transient(again):
                        raise
                    self._retry(batch)

    def _retry(self, batch: list[Inbound]) -> None:
        """The database is restarting or unreachable: keep the batch and try again shortly."""
        log.exception("ingest batch of %d failed on the database; retrying", len(batch))
        for item in batch:
            self.queue.put(item)
        self._stop.wait(1.0)
