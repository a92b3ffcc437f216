"""A locker without slots: the edge's real outbox, forwarder and MQTT link, fed with events directly.

For load and reliability tests that need many events from many lockers without
simulating every door: the store-and-forward path is exactly the locker's.
"""

from __future__ import annotations

import queue
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from helmet_edge.config import MqttSettings
from helmet_edge.forwarder import Forwarder
from helmet_edge.link_mqtt import MqttLink
from helmet_edge.slot_machine import EventDraft
from helmet_edge.store import Store
from helmet_protocol.events import EventKind
from helmet_protocol.messages import Ack, Status, decode
from helmet_protocol.topics import Channel


class SyntheticLocker:
    def __init__(self, locker_id: str, data_dir: Path, port: int, *, resend_after: float = 5.0) -> None:
        self.locker_id = locker_id
        self.store = Store(data_dir / f"{locker_id}.db", locker_id)
        self.forwarder = Forwarder(self.store, window=200, resend_after=resend_after)
        self.acks: queue.SimpleQueue[int] = queue.SimpleQueue()
        status = Status(locker_id=locker_id, online=False, boot_id="synthetic", fw="test", ts=datetime.now(UTC))
        self.link = MqttLink(
            MqttSettings(port=port),
            locker_id,
            online_payload=lambda: status.model_copy(update={"online": True}).to_json(),
            offline_payload=status.to_json(),
            on_message=self._message,
            on_connect=lambda: self.acks.put(-1),
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _message(self, channel: Channel, payload: bytes) -> None:
        if channel == Channel.ACK:
            self.acks.put(decode(Ack, payload).seq)

    def record(self, count: int) -> None:
        """Record ``count`` events, as a locker does when people use it."""
        drafts = [EventDraft(EventKind.PASS_REJECTED, reason="expired") for _ in range(count)]
        self.store.commit(events=drafts, now=datetime.now(UTC))

    def start(self) -> None:
        self.link.start()
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            while True:
                try:
                    seq = self.acks.get_nowait()
                except queue.Empty:
                    break
                if seq < 0:
                    self.forwarder.rewind()  # reconnected: send again what is unacknowledged
                else:
                    self.forwarder.on_ack(seq, now)
            if self.link.connected:
                self.forwarder.pump(now, lambda p: self.link.publish(Channel.EVENTS, p) is not None)
            self._stop.wait(0.02)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.link.stop()
        self.store.close()
