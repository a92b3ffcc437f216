"""Hostile MQTT input into the running ingest (docs/reliability.md, scenario 9).

Malformed JSON, wrong types, oversized payloads, odd and wildcard-like ids,
unregistered lockers, payloads naming another locker: each is dead-lettered
with its reason while valid events, interleaved with them, all arrive. On a
broker with per-locker users, a locker cannot publish on another locker's
topics or subscribe to ``#`` at all.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select
from support.cloud_events import insert_town
from support.secure_broker import Peer
from support.waiting import eventually

from helmet_cloud.adapters.dynsec import DynsecAdmin
from helmet_cloud.ingest.worker import IngestWorker
from helmet_cloud.models import DeadLetter, Locker, RawEvent
from helmet_cloud.settings import CloudSettings
from helmet_protocol.messages import Event, new_event_id
from helmet_sim.broker import Broker


def valid(locker: str, seq: int) -> bytes:
    return Event(
        event_id=new_event_id(), locker_id=locker, seq=seq, ts=datetime.now(UTC), kind="pass.rejected", reason="expired"
    ).to_json()


def tampered(locker: str, seq: int, /, **fields: Any) -> bytes:
    body = json.loads(valid(locker, seq))
    body.update(fields)
    return json.dumps(body).encode()


EV1 = "helmet/v1/LK-0001/events"
# (topic, payload): every one reaches ingest's subscriptions and must be dead-lettered, never applied.
HOSTILE: list[tuple[str, bytes]] = [
    (EV1, b"{not json"),
    (EV1, b""),
    (EV1, b"[]"),
    (EV1, b"null"),
    (EV1, b'"a string"'),
    (EV1, b"\xff\xfe\x00garbage"),
    (EV1, b'{"v": 1}'),
    (EV1, tampered("LK-0001", 900, seq="nine")),
    (EV1, tampered("LK-0001", 901, seq=-5)),
    (EV1, tampered("LK-0001", 902, event_id=12345)),
    (EV1, tampered("LK-0001", 903, ts="yesterday")),
    (EV1, tampered("LK-0001", 904, v=2)),
    (EV1, tampered("LK-0001", 905, slot="all")),
    (EV1, tampered("LK-0001", 906, event_id="x" * 5000)),
    (EV1, tampered("LK-0001", 907, detail="A" * 20_000)),  # over the 16 KiB payload limit
    (EV1, b"{" + b'"a":' * 200_000 + b"1}"),  # 800 kB of nesting
    (EV1, tampered("LK-0002", 908)),  # names another locker
    (EV1, tampered("LK-0001", 909, locker_id="LK-+")),
    (EV1, tampered("LK-0001", 910, locker_id="#")),
    ("helmet/v1/LK-9999/events", valid("LK-9999", 1)),  # not registered
    ("helmet/v1/lk 0001/events", valid("LK-0001", 911)),
    ("helmet/v1/\uff2c\uff2b-\uff10\uff10\uff10\uff11/events", valid("LK-0001", 913)),
    ("helmet/v1/LK-0001'; DROP TABLE rawevent;--/events", valid("LK-0001", 914)),
    ("helmet/v1/LK-0001/status", b'{"v": 1, "locker_id": "LK-0001", "online": "very"}'),
    (
        "helmet/v1/LK-0001/state",
        b'{"v": 1, "locker_id": "LK-0002", "seq": 1, "ts": "2026-11-28T08:00:00Z", "slots": []}',
    ),
    ("helmet/v1/LK-0001/cmd/ack", b'{"v": 1, "cmd_id": "never-sent", "ok": true, "ts": "2026-11-28T08:00:00Z"}'),
]


# NUL inside JSON strings: a well-formed event (of an unknown kind), but PostgreSQL text cannot hold NUL.
# SQLite stores them; PostgreSQL refuses them and ingest dead-letters them alone, with the reason. Either way
# they are kept, and they never hold up the valid events around them.
NUL_CASES: list[tuple[str, bytes]] = [
    (EV1, tampered("LK-0001", 915, kind="pass.\u0000rejected")),
    (EV1, tampered("LK-0001", 916, event_id="evil-\u0000-id")),
    (EV1, tampered("LK-0001", 917, detail="a\u0000b", reason="\u0000")),
]
# MQTT forbids these topic names; Mosquitto disconnects whoever sends one, and nothing reaches ingest.
BROKER_REFUSES = ["helmet/v1/LK-0001\u0000/events", "helmet/v1/LK-0001/events\u0000"]


@pytest.fixture
def worker(settings: CloudSettings, engine: Engine) -> Iterator[IngestWorker]:
    insert_town(engine, {"LK-0001": ("ST-A", 6), "LK-0002": ("ST-A", 6)})
    w = IngestWorker(settings, engine, worker_id="ingest-hostile")
    w.start()
    assert w.mqtt.connected.wait(10)
    yield w
    w.stop()


def publisher(port: int, name: str, username: str | None = None, password: str | None = None) -> mqtt.Client:
    c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=name)
    if username:
        c.username_pw_set(username, password)
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


def test_hostile_messages_are_dead_lettered_and_every_valid_event_arrives(
    worker: IngestWorker, engine: Engine, mosquitto: Broker
) -> None:
    attacker = publisher(mosquitto.port, "attacker")
    honest = publisher(mosquitto.port, "honest")
    per_locker = 60
    try:
        seqs = {"LK-0001": 0, "LK-0002": 0}
        for i in range(per_locker * 2):
            locker = ("LK-0001", "LK-0002")[i % 2]
            seqs[locker] += 1
            honest.publish(f"helmet/v1/{locker}/events", valid(locker, seqs[locker]), qos=1)
            if i < len(HOSTILE + NUL_CASES):
                topic, payload = (HOSTILE + NUL_CASES)[i]
                attacker.publish(topic, payload, qos=1).wait_for_publish(5)

        for n, topic in enumerate(BROKER_REFUSES):
            rude = publisher(mosquitto.port, f"rude-{n}")
            rude.publish(topic, valid("LK-0001", 912 + n), qos=1)
            eventually(lambda c=rude: not c.is_connected(), timeout=5)
            rude.loop_stop()

        def settled() -> bool:
            with Session(engine) as s:
                stored = s.exec(select(func.count()).select_from(RawEvent)).one()
                dead = s.exec(select(func.count()).select_from(DeadLetter)).one()
            return stored + dead == per_locker * 2 + len(HOSTILE + NUL_CASES) and dead >= len(HOSTILE)

        eventually(settled, timeout=30)
        with Session(engine) as s:
            acked = {lk.id: lk.acked_seq for lk in s.exec(select(Locker)).all()}
            letters = s.exec(select(DeadLetter).order_by(col(DeadLetter.id))).all()
            stray = s.exec(select(func.count()).where(col(RawEvent.seq).between(900, 914))).one()
            nul_kept = s.exec(select(func.count()).where(col(RawEvent.seq) >= 915)).one()
        assert acked == {"LK-0001": per_locker, "LK-0002": per_locker}
        assert stray == 0
        assert len(letters) + nul_kept == len(HOSTILE + NUL_CASES)
        assert all(d.reason for d in letters)
        assert all(len(d.payload) <= 16384 for d in letters)
        reasons = " | ".join(d.reason for d in letters)
        assert "names locker LK-0002 but came on LK-0001" in reasons
        assert "LK-9999 is not registered" in reasons
        assert "limit is 16384" in reasons
        assert all("\x00" not in d.payload + d.reason for d in letters)
        assert worker._thread.is_alive()
        # Still listening: one more valid event goes through after all that.
        honest.publish("helmet/v1/LK-0001/events", valid("LK-0001", per_locker + 1), qos=1)
        eventually(lambda: _acked(engine, "LK-0001") == per_locker + 1)
    finally:
        for c in (attacker, honest):
            c.disconnect()
            c.loop_stop()


def _acked(engine: Engine, locker_id: str) -> int:
    with Session(engine) as s:
        locker = s.get(Locker, locker_id)
        return locker.acked_seq if locker else -1


# -- the broker's ACL in front of the running ingest -------------------------------------------------------


def test_a_locker_cannot_speak_for_another_or_listen_to_everything(
    secure_broker: tuple[Broker, DynsecAdmin], settings: CloudSettings, engine: Engine
) -> None:
    broker, admin = secure_broker
    passwords = {lk: admin.create_locker(lk) for lk in ("LK-0001", "LK-0002")}
    insert_town(engine, {"LK-0001": ("ST-A", 6), "LK-0002": ("ST-A", 6)})
    cloud = settings.model_copy(
        update={"mqtt_port": broker.port, "mqtt_username": "cloud", "mqtt_password": "cloud-secret"}
    )
    w = IngestWorker(cloud, engine, worker_id="ingest-acl")
    w.start()
    rogue = Peer(broker.port, "LK-0001", passwords["LK-0001"], client_id="LK-0001")
    try:
        assert w.mqtt.connected.wait(10)
        assert not rogue.subscribe("#")  # refused by the ACL
        # Forged events for LK-0002, well formed and naming LK-0002: the broker drops them.
        for seq in range(1, 6):
            rogue.client.publish("helmet/v1/LK-0002/events", valid("LK-0002", seq), qos=1).wait_for_publish(5)
        for seq in range(1, 6):
            rogue.client.publish("helmet/v1/LK-0001/events", valid("LK-0001", seq), qos=1).wait_for_publish(5)
        eventually(lambda: _acked(engine, "LK-0001") == 5)
        assert _acked(engine, "LK-0002") == 0
        with Session(engine) as s:
            assert s.exec(select(func.count()).where(RawEvent.locker_id == "LK-0002")).one() == 0
        assert rogue.received == []  # heard nothing of the cloud's or other lockers' traffic
    finally:
        rogue.close()
        w.stop()
