"""The embedded defaults: a private broker and the cloud on SQLite, as child processes of the simulator."""

from __future__ import annotations

import errno
import os
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from helmet_sim.broker import Broker, start_amqtt, start_broker, start_mosquitto
from helmet_sim.cloud_client import CloudClient

ADMIN = "demo-admin"


class SetupError(RuntimeError):
    """The embedded cloud could not start: one line saying why and what to do."""


def check_port_free(port: int) -> None:
    """Bind the port as uvicorn will, and say at once if something else holds it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As uvicorn binds: a port whose last connections linger in TIME_WAIT (a demo just stopped) is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            why = "address already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
            other = port + 1 if port < 65535 else 8080
            raise SetupError(
                f"port {port} is not free for the cloud ({why}): stop what holds it, or choose another "
                f"port with --port {other} (make demo DEMO_ARGS=--port={other})"
            ) from None


def _last_line(path: Path) -> str:
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1].strip() if lines else ""


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
    check_port_free(port)
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
        # Browsers reach this cloud over plain HTTP on this machine: sign-in cookies without Secure (not all
        # browsers keep a Secure cookie from http://127.0.0.1).
        "HELMET_SECURE_COOKIES": "false",
        **{f"HELMET_{k}": v for k, v in (settings or {}).items()},
    }
    exe = Path(sys.executable).parent / "helmet-cloud"
    password = secrets.token_urlsafe(12)
    made = subprocess.run(  # noqa: S603 (our own entry point)
        [exe, "add-user", ADMIN, "--role", "admin", "--password", password], env=env, capture_output=True, text=True
    )
    if made.returncode != 0:
        mqtt.stop()
        raise SetupError(f"helmet-cloud add-user failed: {made.stderr.strip() or made.stdout.strip()}")
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
        _wait_ready(embedded, probe, workdir / "cloud.log", timeout=60)
    except BaseException:
        embedded.stop()
        raise
    finally:
        probe.close()
    return embedded


def _wait_ready(embedded: Embedded, probe: CloudClient, log: Path, *, timeout: float) -> None:
    """Until ``/ready``; a cloud process that exits meanwhile is said at once, with its last log line."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code = embedded.cloud.poll()
        if code is not None:
            embedded.log.flush()
            raise SetupError(f"the cloud exited while starting (exit code {code}): {_last_line(log)} (log: {log})")
        if probe.is_ready():
            return
        time.sleep(0.2)
    raise SetupError(f"the cloud at {embedded.base_url} was not ready after {timeout:.0f} s (log: {log})")
