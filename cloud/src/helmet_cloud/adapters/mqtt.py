"""paho-mqtt 2.x clients for the cloud: TCP_NODELAY, automatic reconnection, clean sessions.

Every cloud client connects with a clean session (docs/mqtt.md, delivery guarantees). A persistent
session that outlives its process stays a member of the ``$share/ingest`` group in Mosquitto: the
broker keeps handing it a share of the events and queues them for a client that never comes back.
Lockers keep every event in their outbox until the cloud's ``ack`` covers it, so a message that was
on its way to a worker when it died is sent again; the broker need not keep anything for the cloud.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from helmet_cloud.settings import CloudSettings
from helmet_protocol.transport import set_tcp_nodelay

log = logging.getLogger(__name__)


@dataclass
class Reachability:
    """Whether a connection is up, and since when it is not: told once, then again at widening intervals."""

    where: str
    first_repeat_s: float = 10.0
    longest_repeat_s: float = 600.0
    down_since: float | None = None  # time.time() of the first failure since the last connect
    problem: str | None = None
    attempts: int = 0
    _next_log: float = 0.0
    _every: float = 0.0

    def failed(self, problem: str | Callable[[], str]) -> None:
        """A connect attempt failed; ``problem`` may be a function that finds out why (asked only when told)."""
        now = time.time()
        self.attempts += 1
        telling = self.down_since is None or now >= self._next_log or self.problem is None
        if callable(problem):
            problem = problem() if telling else (self.problem or "")
        self.problem = problem
        if self.down_since is None:
            self.down_since, self._every = now, self.first_repeat_s
            self._next_log = now + self._every
            log.warning("cannot reach the MQTT broker at %s: %s; retrying", self.where, problem)
        elif now >= self._next_log:
            log.warning(
                "MQTT broker at %s still unreachable after %.0f s (%d attempts): %s",
                self.where, now - self.down_since, self.attempts, problem,
            )  # fmt: skip
            self._every = min(self._every * 2, self.longest_repeat_s)
            self._next_log = now + self._every

    def lost(self, reason: str) -> None:
        """A connection that was up has dropped: down from now, until the next connect."""
        if self.down_since is None:
            self.down_since, self._every = time.time(), self.first_repeat_s
            self._next_log = self.down_since + self._every
            self.problem = f"connection lost: {reason}"
            log.warning("lost the MQTT broker at %s: %s; reconnecting", self.where, reason)

    def connected(self) -> None:
        if self.down_since is not None:
            log.info("MQTT broker at %s reached after %.0f s", self.where, time.time() - self.down_since)
        self.down_since, self.problem, self.attempts = None, None, 0

    def report(self, connected: bool) -> dict[str, object]:
        """For ``/health``: ``{"broker": "host:port", "connected": ...}`` and, while down, since when and why."""
        out: dict[str, object] = {"broker": self.where, "connected": connected}
        if not connected and self.down_since is not None:
            out["unreachable_since"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.down_since))
            out["problem"] = self.problem
        return out


def _why_unreachable(host: str, port: int) -> str:
    """paho swallows the connect error: find it with a plain TCP connect (a name, a refused port, a timeout)."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return "the TCP connection opens but the MQTT handshake fails (TLS settings?)"
    except OSError as exc:
        return exc.strerror or str(exc) or type(exc).__name__


class CloudMqtt:
    """One connection with a clean session; ``subscriptions`` are (re)made on every connect.

    ``client_id`` must be unique among live clients (the broker throws the older one off), which is all
    it is for: no session is kept under it.

    A broker that cannot be reached is logged once, then at widening intervals (``reach``), and shows in
    ``/health``; paho keeps retrying with its own back-off.
    """

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
        self.reach = Reachability(f"{settings.mqtt_host}:{settings.mqtt_port}")
        self._stopping = False
        c = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv311,
            clean_session=True,
        )
        if settings.mqtt_username:
            c.username_pw_set(settings.mqtt_username, settings.mqtt_password)
        c.reconnect_delay_set(min_delay=1, max_delay=15)
        c.max_inflight_messages_set(1000)
        c.max_queued_messages_set(0)
        c.on_socket_open = set_tcp_nodelay
        c.on_connect = self._connected
        c.on_connect_fail = lambda *_a: self.reach.failed(
            lambda: _why_unreachable(settings.mqtt_host, settings.mqtt_port)
        )
        c.on_disconnect = self._disconnected
        if on_message is not None:
            # The flag says a retained copy (sent on subscribing), not a message published just now.
            c.on_message = lambda _c, _u, msg: on_message(msg.topic, bytes(msg.payload), bool(msg.retain))
        self.client = c

    def _connected(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            self.reach.failed(f"the broker refused the connection: {reason}")
            return
        self.reach.connected()
        for sub in self.subscriptions:
            client.subscribe(sub, qos=1)
        self.connected.set()
        if self._on_connect is not None:
            self._on_connect()
        log.info("MQTT connected to %s:%s", self.settings.mqtt_host, self.settings.mqtt_port)

    def _disconnected(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        was_up = self.connected.is_set()
        self.connected.clear()
        if was_up and not self._stopping:
            self.reach.lost(str(reason))

    def start(self) -> None:
        self.client.connect_async(self.settings.mqtt_host, self.settings.mqtt_port, keepalive=30)
        self.client.loop_start()

    def stop(self) -> None:
        self._stopping = True
        self.client.disconnect()
        self.client.loop_stop()

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> bool:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            log.warning("could not publish to %s: %s", topic, mqtt.error_string(info.rc))
            return False
        return True
