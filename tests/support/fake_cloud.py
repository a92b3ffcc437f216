"""The cloud's half of the MQTT contract, played by a test over the real broker.

Not a fake broker: it subscribes and publishes on a real Mosquitto exactly as
the cloud would (retained config, acks after "storing", commands), so tests can
check precisely what a locker sends.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion

from helmet_protocol.keys import public_key_b64
from helmet_protocol.messages import Ack, Command, LockerConfig
from support.waiting import eventually

LOCKER = "LK-0001"


class FakeCloud:
    """The cloud's half of the MQTT contract, over the real broker."""

    def __init__(self, port: int, *, ack: bool = True) -> None:
        self.port = port
        self.ack = ack
        self.events: list[dict[str, Any]] = []
        self.acks: dict[str, dict[str, Any]] = {}
        self.status: dict[str, Any] = {}
        self.lock = threading.Lock()
        self.client = self._connect()

    def _connect(self) -> mqtt.Client:
        c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="fake-cloud", clean_session=False)
        c.on_connect = lambda cl, *_: cl.subscribe(
            [(f"helmet/v1/{LOCKER}/{ch}", 1) for ch in ("events", "cmd/ack", "status")]
        )
        c.on_message = self._on_message
        c.reconnect_delay_set(1, 2)
        c.connect_async("127.0.0.1", self.port)
        c.loop_start()
        return c

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        body = json.loads(msg.payload)
        with self.lock:
            if msg.topic.endswith("/events"):
                if body["event_id"] not in {e["event_id"] for e in self.events}:
                    self.events.append(body)
                if self.ack:
                    seqs = sorted(e["seq"] for e in self.events)
                    top = 0
                    for s in seqs:
                        if s == top + 1:
                            top = s
                    self.publish("ack", Ack(locker_id=LOCKER, seq=top).to_json(), retain=True)
            elif msg.topic.endswith("/cmd/ack"):
                self.acks[body["cmd_id"]] = body
            else:
                self.status = body

    def publish(self, channel: str, payload: bytes, *, retain: bool = False) -> None:
        self.client.publish(f"helmet/v1/{LOCKER}/{channel}", payload, qos=1, retain=retain)

    def send_config(
        self, *keys: Ed25519PrivateKey, revoked: list[str] | None = None, used: list[str] | None = None
    ) -> None:
        cfg = LockerConfig(
            locker_id=LOCKER,
            slot_count=6,
            pass_keys={f"k{i}": public_key_b64(k) for i, k in enumerate(keys, 1)},
            revoked_pass_ids=revoked or [],
            used_pass_ids=used or [],
            helmet_url_host="helmets.example.org",
            ts=datetime.now(UTC),
        )
        self.publish("config", cfg.to_json(), retain=True)

    def command(self, cmd_id: str, op: str, **args: Any) -> dict[str, Any]:
        self.publish("cmd", Command(cmd_id=cmd_id, op=op, **args).to_json())  # type: ignore[arg-type]
        return eventually(lambda: self.acks.get(cmd_id))  # type: ignore[no-any-return]

    def kinds(self) -> list[str]:
        with self.lock:
            return [e["kind"] for e in sorted(self.events, key=lambda e: e["seq"])]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
