"""poll() in place of select() for paho: works past descriptor 1023, where select() cannot look."""

from __future__ import annotations

import os
import select
import socket
from collections.abc import Iterator

import paho.mqtt.client as paho_client
import pytest

from helmet_sim.paho_poll import _PollSelect, install


class HighFd:
    """A socket's duplicate numbered past FD_SETSIZE, as the 170th locker's socket is in one process."""

    def __init__(self, sock: socket.socket, number: int) -> None:
        self.number = os.dup2(sock.fileno(), number)

    def fileno(self) -> int:
        return self.number

    def close(self) -> None:
        os.close(self.number)


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    yield a, b
    a.close()
    b.close()


def test_a_descriptor_past_1023_is_watched(pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    high = HighFd(a, 1500)
    try:
        with pytest.raises(ValueError, match="filedescriptor out of range"):
            select.select([high], [], [], 0)
        poll = _PollSelect()
        assert poll.select([high], [high], [], 0) == ([], [high], [])  # nothing to read yet, room to write
        b.send(b"x")
        assert poll.select([high], [], [], 1.0) == ([high], [], [])
    finally:
        high.close()


def test_a_hang_up_reads_as_readable_and_a_closed_socket_is_refused_as_select_would(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    a, b = pair
    b.close()
    assert _PollSelect().select([a], [], [], 1.0)[0] == [a]
    a.close()
    with pytest.raises(ValueError, match="negative"):
        _PollSelect().select([a], [], [], 0)
    with pytest.raises(TypeError):
        _PollSelect().select([None], [], [], 0)


def test_install_swaps_paho_s_select_only() -> None:
    install()
    install()
    assert isinstance(paho_client.select, _PollSelect)  # type: ignore[attr-defined]
    assert paho_client.select.POLLIN == select.POLLIN  # type: ignore[attr-defined]  (the rest passes through)
    assert select.select is not paho_client.select.select  # type: ignore[attr-defined]
