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

from helmet_cloud.broker_admin import DynsecAdmin
from helmet_sim.broker import Broker, start_mosquitto

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


class Peer:
    """One MQTT client with a user and password, recording what happens to it."""

    def __init__(self, port: int, username: str, password: str | None, *, client_id: str | None = None) -> None:
        self.received: list[tuple[str, bytes]] = []
        self.connect_rc: Any = None
        self.disconnected = threading.Event()
        c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id or f"{username}-peer")
        c.username_pw_set(username, password)
        c.on_connect = lambda _c, _u, _f, rc, _p: setattr(self, "connect_rc", rc)
        c.on_disconnect = lambda *_a: self.disconnected.set()
        c.on_message = lambda _c, _u, msg: self.received.append((msg.topic, msg.payload))
        c.reconnect_delay_set(30, 30)
        c.connect("127.0.0.1", port)
        c.loop_start()
        self.client = c

    @property
    def accepted(self) -> bool:
        return self.connect_rc is not None and not self.connect_rc.is_failure

    @property
    def refused(self) -> bool:
        return self.connect_rc is not None and self.connect_rc.is_failure

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
