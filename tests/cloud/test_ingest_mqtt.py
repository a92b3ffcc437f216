"""Ingest workers on a real Mosquitto, sharing the load."""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select
from support.cloud_events import event, insert_town
from support.waiting import eventually

from helmet_cloud.ingest.records import Inbound
from helmet_cloud.ingest.worker import IngestWorker
from helmet_cloud.models import RawEvent
from helmet_cloud.settings import CloudSettings


def _client(port: int, client_id: str) -> mqtt.Client:
    c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id)
    c.max_inflight_messages_set(1000)
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


def test_two_workers_store_every_event_once_and_ack_each_locker(settings: CloudSettings, engine: Engine) -> None:
    lockers = ["LK-0001", "LK-0002"]
    insert_town(engine, dict.fromkeys(lockers, ("ST-1", 6)))
    workers = [IngestWorker(settings, engine, worker_id=f"w{i}") for i in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        assert w.mqtt.connected.wait(10)
    acks: dict[str, int] = {}
    done = threading.Event()
    per_locker = 500

    def on_ack(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        body = json.loads(msg.payload)
        acks[body["locker_id"]] = body["seq"]
        if all(acks.get(lk) == per_locker for lk in lockers):
            done.set()

    watcher = _client(settings.mqtt_port, "watcher")
    watcher.on_message = on_ack
    watcher.subscribe("helmet/v1/+/ack", qos=1)
    publisher = _client(settings.mqtt_port, "lockers")
    now = datetime.now(UTC)
    infos = []
    for seq in range(1, per_locker + 1):
        for lk in lockers:
            topic, payload = event(lk, seq, now, "pass.rejected", reason="expired")
            infos.append(publisher.publish(topic, payload, qos=1))
            if seq % 100 == 0:  # and some retries, as a locker sends after a missing ack
                infos.append(publisher.publish(topic, payload, qos=1))
    for info in infos:
        info.wait_for_publish(10)
    assert done.wait(30), f"acks seen: {acks}"
    with Session(engine) as s:
        assert s.exec(select(func.count()).select_from(RawEvent)).one() == per_locker * len(lockers)
    for c in (publisher, watcher):
        c.disconnect()
        c.loop_stop()
    for w in workers:
        w.stop()
    # The shared subscription split the events between both workers.
    assert all(w.handled > 0 for w in workers), [w.handled for w in workers]


def test_a_message_that_breaks_ingest_is_dead_lettered_and_the_rest_go_through(
    settings: CloudSettings, engine: Engine
) -> None:
    from helmet_cloud.models import DeadLetter

    insert_town(engine, {"LK-0001": ("ST-1", 6)})
    worker = IngestWorker(settings, engine, worker_id="w-poison")
    real_handle = worker.ingestor.handle

    def handle(batch: list[Inbound]) -> None:  # a bug in ingest that one payload triggers
        if any(b"poison" in message.payload for message in batch):
            raise RuntimeError("bug")
        real_handle(batch)

    worker.ingestor.handle = handle  # type: ignore[method-assign]
    worker.start()
    assert worker.mqtt.connected.wait(10)
    publisher = _client(settings.mqtt_port, "locker")
    for seq in range(1, 21):
        fields = {"detail": "poison"} if seq == 7 else {}
        _, payload = event("LK-0001", seq, datetime.now(UTC), "pass.rejected", reason="expired", **fields)
        publisher.publish("helmet/v1/LK-0001/events", payload, qos=1).wait_for_publish(5)
    with Session(engine) as s:
        eventually(lambda: s.exec(select(func.count()).select_from(RawEvent)).one() == 19, timeout=15)
        dead = s.exec(select(DeadLetter)).all()
    assert len(dead) == 1 and "internal error" in dead[0].reason and "poison" in dead[0].payload
    publisher.disconnect()
    publisher.loop_stop()
    worker.stop()


def test_a_refused_event_never_takes_the_seq_the_real_one_needs(
    settings: CloudSettings, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 16, finding 9. A payload whose seq is the text "2" was read as seq 2 and stored, and the locker's
    real seq 2 was then dropped as a duplicate; a seq past 64 bits reached the database, logged a traceback and
    was dead-lettered as an internal error. Both are refused at decode now, each with its reason."""
    from helmet_cloud.models import DeadLetter, Locker

    insert_town(engine, {"LK-0001": ("ST-1", 6)})
    worker = IngestWorker(settings, engine, worker_id="w-strict")
    worker.start()
    assert worker.mqtt.connected.wait(10)
    publisher = _client(settings.mqtt_port, "locker")
    now = datetime.now(UTC)

    def send(payload: bytes) -> None:
        publisher.publish("helmet/v1/LK-0001/events", payload, qos=1).wait_for_publish(5)

    def wire(seq: object, event_id: str) -> bytes:
        _, payload = event("LK-0001", 1, now, "pass.rejected", reason="expired", event_id=event_id)
        return json.dumps(json.loads(payload) | {"seq": seq}).encode()

    with caplog.at_level(logging.WARNING):
        send(wire(1, "e-1"))
        send(wire("2", "e-forged"))
        send(wire(2**64, "e-huge"))
        send(wire(2, "e-2"))
        send(wire(3, "e-3"))
        with Session(engine) as s:
            eventually(lambda: s.exec(select(func.count()).select_from(DeadLetter)).one() == 2, timeout=15)
            eventually(lambda: (s.expire_all(), s.get(Locker, "LK-0001"))[1].acked_seq == 3, timeout=15)
            stored = {e.seq: e.event_id for e in s.exec(select(RawEvent)).all()}
            reasons = sorted(d.reason for d in s.exec(select(DeadLetter)).all())
    publisher.disconnect()
    publisher.loop_stop()
    worker.stop()
    assert stored == {1: "e-1", 2: "e-2", 3: "e-3"}
    assert reasons == [
        "invalid Event: seq: Input should be a valid integer",
        "invalid Event: seq: Input should be less than or equal to 9223372036854775807",
    ]
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR], "a traceback was logged"
