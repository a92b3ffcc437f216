"""Start an MQTT broker for the demo and tests: Mosquitto if installed, else amqtt.

amqtt (pure Python) has no shared subscriptions; callers learn that from
:attr:`Broker.shared_subscriptions` and configure ingest accordingly.
"""

from __future__ import annotations

import asyncio
import getpass
import logging
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


class Broker:
    def __init__(self, port: int, kind: str, stop_fn: object) -> None:
        self.port = port
        self.kind = kind
        self._stop_fn = stop_fn
        self.shared_subscriptions = kind == "mosquitto"

    def stop(self) -> None:
        self._stop_fn()  # type: ignore[operator]


def start_mosquitto(workdir: Path, port: int | None = None, *, extra_conf: str = "", anonymous: bool = True) -> Broker:
    """A private Mosquitto on a free loopback port, with persistence in ``workdir``."""
    exe = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
    if exe is None:
        raise FileNotFoundError("mosquitto is not installed")
    port = port or free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    conf = workdir / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\n{'allow_anonymous true' if anonymous else ''}\npersistence true\n"
        f"persistence_location {workdir}/\nset_tcp_nodelay true\nmax_queued_messages 100000\n"
        f"log_dest file {workdir}/mosquitto.log\n"
        # Started as root, Mosquitto would switch to the 'mosquitto' user and then fail, silently, to
        # read or write its files under a private temporary directory. Stay whoever started it.
        f"user {getpass.getuser()}\n{extra_conf}"
    )
    # Its own session: Ctrl-C in the demo's terminal must not kill the broker before the lockers say goodbye.
    proc = subprocess.Popen(  # noqa: S603
        [exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        wait_port(port)
    except TimeoutError:
        proc.kill()
        raise RuntimeError(f"mosquitto did not start: {proc.stderr.read().decode() if proc.stderr else ''}") from None

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()

    broker = Broker(port, "mosquitto", stop)
    broker.process = proc  # type: ignore[attr-defined]
    return broker


def start_amqtt(port: int | None = None) -> Broker:
    """An embedded pure-Python broker in a background thread."""
    from amqtt.broker import Broker as AmqttBroker

    port = port or free_port()
    loop = asyncio.new_event_loop()
    config = {
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
        "sys_interval": 0,
        "auth": {"allow-anonymous": True, "plugins": ["auth_anonymous"]},
        "topic-check": {"enabled": False},
    }
    holder: dict[str, AmqttBroker] = {}
    started = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        broker = AmqttBroker(config, loop=loop)
        holder["b"] = broker
        loop.run_until_complete(broker.start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="amqtt", daemon=True)
    thread.start()
    started.wait(10)
    wait_port(port)

    def stop() -> None:
        fut = asyncio.run_coroutine_threadsafe(holder["b"].shutdown(), loop)
        try:
            fut.result(timeout=5)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=5)

    return Broker(port, "amqtt", stop)


def start_broker(workdir: Path, port: int | None = None) -> Broker:
    try:
        return start_mosquitto(workdir, port)
    except FileNotFoundError:
        log.warning("mosquitto is not installed: using the embedded amqtt broker (no shared subscriptions)")
        return start_amqtt(port)
