"""Socket settings both ends of the MQTT link must use."""

from __future__ import annotations

import socket
from typing import Any


def set_tcp_nodelay(_client: Any, _userdata: Any, sock: Any) -> None:
    """paho ``on_socket_open`` hook: switch Nagle's algorithm off.

    With Nagle on, a QoS 1 round trip measured 21 ms median instead of 1.3 ms
    on loopback: small PUBLISH/PUBACK packets wait for each other.
    """
    if isinstance(sock, socket.socket) and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
