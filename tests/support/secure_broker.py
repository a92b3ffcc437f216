"""A real Mosquitto with the dynamic-security plugin: an admin, a cloud user, and per-locker users made by the cloud."""

from __future__ import annotations

import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from helmet_cloud.adapters.dynsec import DynsecAdmin
from helmet_cloud.settings import CloudSettings
from helmet_sim.broker import Broker, start_mosquitto
from support.waiting import eventually

PLUGIN = Path("/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so")
ADMIN = ("admin", "admin-secret")
CLOUD = ("cloud", "cloud-secret")


def start_secure_broker(tmp_path: Path) -> tuple[Broker, DynsecAdmin]:
    """The broker and an admin client; the ``cloud`` user exists with the cloud's role."""
    ctrl = shutil.which("mosquitto_ctrl")
    if ctrl is None or not PLUGIN.exists():
        pytest.skip("mosquitto's dynamic-security plugin is not installed")
    tmp_path.mkdir(parents=True, exist_ok=True)
    dynsec = tmp_path / "dynamic-security.json"
    subprocess.run([ctrl, "dynsec", "init", str(dynsec), *ADMIN], check=True, capture_output=True)
    broker = start_mosquitto(
        tmp_path / "broker",
        extra_conf=f"allow_anonymous false\nplugin {PLUGIN}\nplugin_opt_config_file {dynsec}\n",
        anonymous=False,
    )
    try:
        admin = DynsecAdmin("127.0.0.1", broker.port, *ADMIN)
    except BaseException:
        broker.stop()  # never leave a broker behind when its admin cannot get in
        raise
    try:
        admin.ensure_roles()
        admin.create_cloud_user(*CLOUD)
    except BaseException:
        admin.close()
        broker.stop()
        raise
    return broker, admin


def cloud_env(broker: Broker) -> dict[str, str]:
    """Settings of a cloud that manages locker users on this broker (as HELMET_* variables)."""
    return {
        "HELMET_MQTT_PORT": str(broker.port),
        "HELMET_MQTT_USERNAME": CLOUD[0],
        "HELMET_MQTT_PASSWORD": CLOUD[1],
        "HELMET_BROKER_ADMIN_USERNAME": ADMIN[0],
        "HELMET_BROKER_ADMIN_PASSWORD": ADMIN[1],
    }


def cloud_settings(broker: Broker, *, database_url: str, data_dir: Path) -> CloudSettings:
    """The same cloud as ``cloud_env``, as settings for an in-process app."""
    return CloudSettings(
        database_url=database_url,
        data_dir=data_dir,
        mqtt_port=broker.port,
        mqtt_username=CLOUD[0],
        mqtt_password=CLOUD[1],
        broker_admin_username=ADMIN[0],
        broker_admin_password=ADMIN[1],
    )


class Peer:
    """One MQTT client with a user and password, recording what happens to it.

    It does not come back by itself for 30 s after the broker drops or refuses it, so a test sees the first
    answer and a second client with the same client id is not thrown off; to try again, make a new Peer.
    """

    def __init__(
        self,
        port: int,
        username: str,
        password: str | None,
        *,
        client_id: str | None = None,
        clean_session: bool = True,
    ) -> None:
        self.session_present: bool | None = None
        self.received: list[tuple[str, bytes]] = []
        self.connect_rc: Any = None
        self.disconnected = threading.Event()
        self.subacks: dict[int, list[Any]] = {}
        # A locker's broker user may connect only with its own id as client id: that is the default.
        c = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id or username,
            clean_session=clean_session,
        )
        c.username_pw_set(username, password)
        c.on_connect = self._connected
        c.on_disconnect = lambda *_a: self.disconnected.set()
        c.on_message = lambda _c, _u, msg: self.received.append((msg.topic, bytes(msg.payload)))
        c.on_subscribe = lambda _c, _u, mid, codes, _p: self.subacks.__setitem__(mid, codes)
        c.reconnect_delay_set(30, 30)
        c.connect("127.0.0.1", port)
        c.loop_start()
        self.client = c

    def _connected(self, _c: mqtt.Client, _u: Any, flags: Any, rc: Any, _p: Any) -> None:
        self.session_present = bool(flags.session_present)
        self.connect_rc = rc

    @property
    def accepted(self) -> bool:
        return self.connect_rc is not None and not self.connect_rc.is_failure

    @property
    def refused(self) -> bool:
        return self.connect_rc is not None and self.connect_rc.is_failure

    @property
    def topics(self) -> list[str]:
        """The topics of what it received, in order."""
        return [topic for topic, _ in self.received]

    def subscribe(self, topic: str) -> bool:
        """Whether the broker granted the subscription (its SUBACK code)."""
        result, mid = self.client.subscribe(topic, qos=1)
        assert mid is not None, f"the SUBSCRIBE for {topic} was not sent: {result}"
        codes = eventually(lambda: self.subacks.get(mid, []), timeout=5)
        return not codes[0].is_failure

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        # Break the callbacks' cycle back to this Peer: the client is freed (and its sockets closed) at once.
        c = self.client
        c.on_connect = c.on_disconnect = c.on_message = c.on_subscribe = None


def connects(port: int, username: str, password: str | None, *, client_id: str | None = None) -> bool:
    """Whether the broker lets a fresh client in (its first answer; the client is closed again)."""
    peer = Peer(port, username, password, client_id=client_id)
    try:
        eventually(lambda: peer.connect_rc is not None)
        return peer.accepted
    finally:
        peer.close()
