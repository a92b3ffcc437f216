"""The network cable (``helmet_sim.network.Cable``): a quiet link stays up, a pulled one is dead until plugged."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from helmet_sim.network import Cable


@pytest.fixture
def echo() -> Iterator[int]:
    """A TCP echo server on a loopback port."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(1024):
                conn.sendall(data)

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield server.getsockname()[1]
    server.close()


def test_a_link_quiet_for_longer_than_the_connect_timeout_stays_up(echo: int) -> None:
    """It once kept the 5 s connect timeout on the upstream socket: every locker behind a cable lost its
    MQTT connection (and the broker published its Last Will) whenever it had nothing to say for 5 s."""
    cable = Cable(echo)
    try:
        with socket.create_connection(("127.0.0.1", cable.port), timeout=10) as link:
            link.sendall(b"hello")
            assert link.recv(5) == b"hello"
            time.sleep(6.5)  # quieter than 5 s, well within an MQTT keepalive
            link.sendall(b"still")
            assert link.recv(5) == b"still"
    finally:
        cable.close()


def test_a_pulled_cable_cuts_the_link_and_refuses_new_ones_until_plugged(echo: int) -> None:
    cable = Cable(echo)
    try:
        link = socket.create_connection(("127.0.0.1", cable.port), timeout=5)
        link.sendall(b"x")
        assert link.recv(1) == b"x"
        cable.unplug()
        assert link.recv(1) == b""  # the connection died
        link.close()
        with socket.create_connection(("127.0.0.1", cable.port), timeout=5) as again:
            assert again.recv(1) == b""  # accepted and dropped at once, as a dead mobile link
        cable.plug()
        with socket.create_connection(("127.0.0.1", cable.port), timeout=5) as back:
            back.sendall(b"y")
            assert back.recv(1) == b"y"
    finally:
        cable.close()
