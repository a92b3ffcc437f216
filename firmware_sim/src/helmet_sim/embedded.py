"""The embedded defaults: a private broker and the cloud on SQLite, as child processes of the simulator."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from helmet_sim.broker import Broker, start_amqtt, start_broker, start_mosquitto
from helmet_sim.cloud_client import CloudClient

ADMIN = "demo-admin"


@dataclass
class Embedded:
    broker: Broker
    cloud: subprocess.Popen[bytes]
    base_url: str
    admin_password: str
    sms_file: Path
    log: IO[str]

    def stop(self) -> None:
        self.cloud.terminate()
        try:
            self.cloud.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.cloud.kill()
            self.cloud.wait()
        self.log.close()
        self.broker.stop()


def start_embedded(
    workdir: Path, *, port: int, broker: str = "auto", settings: dict[str, str] | None = None
) -> Embedded:
    """Broker (Mosquitto if installed, else amqtt) and ``helmet-cloud serve`` on SQLite in ``workdir``.

    ``settings`` are extra cloud settings (``HELMET_...`` without the prefix, e.g. ``{"ALERT_SWEEP_SECONDS": "5"}``).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    if broker == "amqtt":
        mqtt = start_amqtt()
    elif broker == "mosquitto":
        mqtt = start_mosquitto(workdir / "broker")
    else:
        mqtt = start_broker(workdir / "broker")
    sms_file = workdir / "sms.jsonl"
    env = {
        **os.environ,
        "HELMET_DATABASE_URL": f"sqlite:///{workdir}/cloud.db",
        "HELMET_DATA_DIR": str(workdir),
        "HELMET_MQTT_PORT": str(mqtt.port),
        "HELMET_SMS_BACKEND": f"file:{sms_file}",
        "HELMET_INGEST_SHARED": "true" if mqtt.shared_subscriptions else "false",
        **{f"HELMET_{k}": v for k, v in (settings or {}).items()},
    }
    exe = Path(sys.executable).parent / "helmet-cloud"
    password = secrets.token_urlsafe(9)
    subprocess.run(  # noqa: S603 (our own entry point)
        [exe, "add-user", ADMIN, "--role", "admin", "--password", password], env=env, check=True, capture_output=True
    )
    log = (workdir / "cloud.log").open("w")
    cloud = subprocess.Popen(  # noqa: S603 (our own entry point)
        [exe, "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # stopped by us, after the lockers, not by the terminal's Ctrl-C
    )
    base = f"http://127.0.0.1:{port}"
    embedded = Embedded(mqtt, cloud, base, password, sms_file, log)
    probe = CloudClient(base)
    try:
        probe.wait_ready(60)
    except BaseException:
        embedded.stop()
        raise
    finally:
        probe.close()
    return embedded
