"""Store-and-forward: what reaches MQTT, in which order, and when it is sent again."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from helmet_edge.forwarder import Forwarder
from helmet_edge.slot_machine import EventDraft
from helmet_edge.store import Store
from helmet_protocol.events import EventKind
from helmet_protocol.messages import Event, decode

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "locker.db", "LK-0001")
    yield s
    s.close()


def add_events(store: Store, n: int) -> None:
    drafts = [EventDraft(EventKind.HELMET_BORROWED, slot=1, helmet_id=f"H-{i:04d}") for i in range(n)]
    store.commit(events=drafts, now=NOW)


class Broker:
    """The MQTT side as the forwarder sees it: accepts a payload or, while disconnected, refuses it."""

    def __init__(self) -> None:
        self.seqs: list[int] = []
        self.connected = True

    def publish(self, payload: bytes) -> bool:
        if not self.connected:
            return False
        self.seqs.append(decode(Event, payload).seq)
        return True

    def take(self) -> list[int]:
        seqs, self.seqs = self.seqs, []
        return seqs


@pytest.fixture
def broker() -> Broker:
    return Broker()


def test_publishes_in_seq_order_and_stops_at_the_window(store: Store, broker: Broker) -> None:
    add_events(store, 10)
    fwd = Forwarder(store, window=4, resend_after=30)

    assert fwd.pump(0.0, broker.publish) == 4
    assert broker.take() == [1, 2, 3, 4]
    assert fwd.pump(1.0, broker.publish) == 0, "the window is full until an ack comes"
    assert broker.take() == []

    fwd.on_ack(2, 2.0)
    fwd.pump(2.0, broker.publish)
    assert broker.take() == [5, 6]

    fwd.on_ack(6, 3.0)
    fwd.pump(3.0, broker.publish)
    assert broker.take() == [7, 8, 9, 10]
    assert store.outbox_size() == 4, "acknowledged events leave the outbox, the rest stay"

    fwd.on_ack(10, 4.0)
    assert fwd.pump(4.0, broker.publish) == 0
    assert store.outbox_size() == 0


def test_new_events_are_sent_as_they_come(store: Store, broker: Broker) -> None:
    fwd = Forwarder(store, window=100, resend_after=30)
    assert fwd.pump(0.0, broker.publish) == 0
    add_events(store, 2)
    fwd.pump(0.1, broker.publish)
    add_events(store, 1)
    fwd.pump(0.2, broker.publish)
    assert broker.take() == [1, 2, 3]


def test_resends_from_first_unacknowledged_after_resend_after_without_progress(store: Store, broker: Broker) -> None:
    add_events(store, 5)
    fwd = Forwarder(store, window=10, resend_after=30)
    fwd.pump(0.0, broker.publish)
    assert broker.take() == [1, 2, 3, 4, 5]

    fwd.on_ack(2, 10.0)  # progress at t=10
    for t in range(11, 40):
        fwd.pump(float(t), broker.publish)
    assert broker.take() == [], "no resend before 30 s without progress"

    fwd.pump(40.0, broker.publish)
    assert broker.take() == [3, 4, 5]
    fwd.pump(40.1, broker.publish)
    assert broker.take() == []

    fwd.pump(70.1, broker.publish)
    assert broker.take() == [3, 4, 5], "and again while the cloud stays silent"


def test_silent_cloud_with_full_window_gets_the_window_again(store: Store, broker: Broker) -> None:
    add_events(store, 6)
    fwd = Forwarder(store, window=3, resend_after=30)
    fwd.pump(0.0, broker.publish)
    fwd.pump(29.9, broker.publish)
    assert broker.take() == [1, 2, 3]
    fwd.pump(30.0, broker.publish)
    assert broker.take() == [1, 2, 3]


def test_no_resend_right_after_a_quiet_spell(store: Store, broker: Broker) -> None:
    """The resend clock starts when an event goes out, not at the last ack long ago."""
    fwd = Forwarder(store, window=10, resend_after=30)
    add_events(store, 1)
    fwd.pump(0.0, broker.publish)
    fwd.on_ack(1, 1.0)
    fwd.pump(1.0, broker.publish)
    assert broker.take() == [1]

    add_events(store, 1)  # an hour of nothing, then a borrow
    for t in (3600.0, 3600.02, 3600.04, 3629.9):
        fwd.pump(t, broker.publish)
    assert broker.take() == [2]

    fwd.pump(3630.1, broker.publish)
    assert broker.take() == [2]


def test_refused_publish_is_tried_again_in_order(store: Store, broker: Broker) -> None:
    add_events(store, 3)
    fwd = Forwarder(store, window=10, resend_after=30)
    broker.connected = False
    assert fwd.pump(0.0, broker.publish) == 0
    broker.connected = True
    assert fwd.pump(0.1, broker.publish) == 3
    assert broker.take() == [1, 2, 3]


def test_rewind_sends_again_from_a_seq_but_never_before_the_ack(store: Store, broker: Broker) -> None:
    add_events(store, 5)
    fwd = Forwarder(store, window=10, resend_after=30)
    fwd.pump(0.0, broker.publish)
    fwd.on_ack(2, 1.0)
    broker.take()

    fwd.rewind(4)  # the cloud saw a gap at 4
    fwd.pump(2.0, broker.publish)
    assert broker.take() == [4, 5]

    fwd.rewind()  # reconnected: everything unacknowledged
    fwd.pump(3.0, broker.publish)
    assert broker.take() == [3, 4, 5]

    fwd.rewind(1)  # 1 and 2 are acknowledged and gone
    fwd.pump(4.0, broker.publish)
    assert broker.take() == [3, 4, 5]


def test_rewind_past_the_newest_event_does_not_hold_back_new_ones(store: Store, broker: Broker) -> None:
    add_events(store, 2)
    fwd = Forwarder(store, window=10, resend_after=30)
    fwd.pump(0.0, broker.publish)
    fwd.on_ack(2, 0.5)
    fwd.rewind(50)
    add_events(store, 1)
    fwd.pump(1.0, broker.publish)
    assert broker.take() == [1, 2, 3]


def test_restart_resumes_from_the_first_unacknowledged(store: Store, broker: Broker) -> None:
    add_events(store, 4)
    fwd = Forwarder(store, window=10, resend_after=30)
    fwd.pump(0.0, broker.publish)
    fwd.on_ack(2, 1.0)
    broker.take()

    after_restart = Forwarder(store, window=10, resend_after=30)
    after_restart.pump(0.0, broker.publish)
    assert broker.take() == [3, 4]


def test_ack_for_events_sent_before_a_restart_moves_sending_on(store: Store, broker: Broker) -> None:
    add_events(store, 4)
    fwd = Forwarder(store, window=10, resend_after=30)
    fwd.on_ack(3, 0.0)  # the retained ack arrives before anything was sent
    fwd.pump(0.0, broker.publish)
    assert broker.take() == [4]
