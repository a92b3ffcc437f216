"""Store-and-forward: publish outbox events in ``seq`` order within a window.

An event stays in the outbox until the cloud's ``ack`` covers it. Events are
published at most ``window`` ahead of the last ack (paho refuses QoS 1
publishes beyond 65,535 in flight); if acks stop advancing for
``resend_after`` seconds, sending starts again from the first unacknowledged
event. The cloud de-duplicates, so a resend is harmless.
"""

from __future__ import annotations

from collections.abc import Callable

from helmet_edge.ports import Store


class Forwarder:
    def __init__(self, store: Store, *, window: int, resend_after: float) -> None:
        self.store = store
        self.window = window
        self.resend_after = resend_after
        self.acked = store.acked_seq()
        self.next_seq = self.acked + 1
        self._progress_at: float | None = None

    def rewind(self, from_seq: int | None = None) -> None:
        """Send again from ``from_seq`` (a ``resend`` command) or from the first unacknowledged event."""
        # Never past the newest event: anything committed later would wait for a resend timeout.
        self.next_seq = max(self.acked + 1, min(from_seq or 0, self.store.last_seq() + 1))
        self._progress_at = None

    def on_ack(self, seq: int, now: float) -> None:
        if seq > self.acked:
            self.store.acknowledge(seq)
            self.acked = seq
            self._progress_at = now
            self.next_seq = max(self.next_seq, seq + 1)

    def pump(self, now: float, publish: Callable[[bytes], bool]) -> int:
        """Publish what the window allows; returns how many were handed to MQTT."""
        if self.next_seq > self.acked + 1:
            if self._progress_at is None:
                self._progress_at = now
            elif now - self._progress_at >= self.resend_after:
                self.rewind()
        else:
            # Nothing in flight: the resend clock starts with the next publish, not at an old ack.
            self._progress_at = None
        room = self.acked + self.window - self.next_seq + 1
        if room <= 0:
            return 0
        sent = 0
        for seq, payload in self.store.unsent(self.next_seq, room):
            if not publish(payload):
                break
            self.next_seq = seq + 1
            sent += 1
        if sent and self._progress_at is None:
            self._progress_at = now
        return sent
