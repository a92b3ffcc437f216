"""paho-mqtt 2.x clients for the cloud: TCP_NODELAY, automatic reconnection."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from helmet_cloud.settings import CloudSettings
from helmet_protocol.transport import set_tcp_nodelay

log = logging.getLogger(__name__)


class CloudMqtt:
    """One connection; ``subscriptions`` are (re)made on every connect."""

    def __init__(
        self,
        settings: CloudSettings,
        client_id: str,
        *,
        subscriptions: tuple[str, ...] = (),
        on_message: Callable[[str, bytes, bool], None] | None = None,
        on_connect: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self._on_connect = on_connect
        self.subscriptions = subscriptions
        self.connected = threading.Event()
        c = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv311,
            clean_session=not subscriptions,
        )
        if settings.mqtt_username:
            c.username_pw_set(settings.mqtt_username, settings.mqtt_password)
        c.reconnect_delay_set(min_delay=1, max_delay=15)
        c.max_inflight_messages_set(1000)
        c.max_queued_messages_set(0)
        c.on_socket_open = set_tcp_nodelay
        c.on_connect = self._connected
        c.on_disconnect = lambda *_a: self.connected.clear()
        if on_message is not None:
            # The flag says a retained copy (sent on subscribing), not a message published just now.
            c.on_message = lambda _c, _u, msg: on_message(msg.topic, bytes(msg.payload), bool(msg.retain))
        self.client = c

    def _connected(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.error("broker refused the connection: %s", reason)
            return
        for sub in self.subscriptions:
            client.subscribe(sub, qos=1)
        self.connected.set()
        if self._on_connect is not None:
            self._on_connect()
        log.info("MQTT connected to %s:%s", self.settings.mqtt_host, self.settings.mqtt_port)

    def start(self) -> None:
        self.client.connect_async(self.settings.mqtt_host, self.settings.mqtt_port, keepalive=30)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> bool:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            log.warning("could not publish to %s: %s", topic, mqtt.error_string(info.rc))
            return False
        return True
