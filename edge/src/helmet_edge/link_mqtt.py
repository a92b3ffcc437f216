"""The locker's MQTT connection (paho-mqtt 2.x).

Retained ``status`` with a Last Will, subscriptions to the locker's own
``cmd``, ``config`` and ``ack``, TCP_NODELAY on the socket, automatic
reconnection. Incoming messages are handed to ``on_message`` on paho's
thread; the service queues them for its own loop.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from helmet_edge.config import MqttSettings
from helmet_protocol import topics
from helmet_protocol.topics import Channel
from helmet_protocol.transport import set_tcp_nodelay

log = logging.getLogger(__name__)

SUBSCRIBED = (Channel.CMD, Channel.CONFIG, Channel.ACK)


class MqttLink:
    def __init__(
        self,
        settings: MqttSettings,
        locker_id: str,
        *,
        online_payload: Callable[[], bytes],
        offline_payload: bytes,
        on_message: Callable[[Channel, bytes], None],
        on_connect: Callable[[], None] = lambda: None,
    ) -> None:
        self.settings = settings
        self.locker_id = locker_id
        self._online_payload = online_payload
        self._on_message = on_message
        self._on_connect = on_connect
        self._connected = threading.Event()
        c = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=locker_id,
            protocol=mqtt.MQTTv311,
            clean_session=False,
        )
        if settings.username:
            c.username_pw_set(settings.username, settings.password)
        if settings.tls:
            c.tls_set(ca_certs=str(settings.ca_file) if settings.ca_file else None, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        c.will_set(topics.topic(locker_id, Channel.STATUS), offline_payload, qos=1, retain=True)
        c.reconnect_delay_set(min_delay=1, max_delay=settings.reconnect_max_s)
        c.max_inflight_messages_set(100)
        c.on_socket_open = set_tcp_nodelay
        c.on_connect = self._handle_connect
        c.on_disconnect = self._handle_disconnect
        c.on_message = self._handle_message
        self.client = c

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def start(self) -> None:
        self.client.connect_async(self.settings.host, self.settings.port, keepalive=self.settings.keepalive)
        self.client.loop_start()

    def stop(self, offline_payload: bytes | None = None) -> None:
        if offline_payload is not None and self.connected:
            info = self.publish(Channel.STATUS, offline_payload, retain=True)
            if info:
                info.wait_for_publish(timeout=2)
        self.client.disconnect()
        self.client.loop_stop()

    def publish(self, channel: Channel, payload: bytes, *, retain: bool = False) -> mqtt.MQTTMessageInfo | None:
        """Hand one message to paho; ``None`` if it refused (not connected, queue full)."""
        info = self.client.publish(topics.topic(self.locker_id, channel), payload, qos=1, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            return None
        return info

    def _handle_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.error("broker refused the connection: %s", reason)
            return
        log.info("connected to %s:%s", self.settings.host, self.settings.port)
        for channel in SUBSCRIBED:
            client.subscribe(topics.topic(self.locker_id, channel), qos=1)
        client.publish(topics.topic(self.locker_id, Channel.STATUS), self._online_payload(), qos=1, retain=True)
        self._connected.set()
        self._on_connect()

    def _handle_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self._connected.clear()
        if reason.is_failure:
            log.warning("lost the broker (%s); events queue in the outbox until it is back", reason)
        else:
            log.info("disconnected from broker")

    def _handle_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            parsed = topics.parse(msg.topic)
        except ValueError as exc:
            log.warning("ignored message on %s: %s", msg.topic, exc)
            return
        if parsed.locker_id != self.locker_id or parsed.channel not in SUBSCRIBED:
            log.warning("ignored message on %s: not for this locker", msg.topic)
            return
        self._on_message(parsed.channel, bytes(msg.payload))
