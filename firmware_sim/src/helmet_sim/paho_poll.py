"""Let hundreds of paho MQTT clients live in one process: poll() instead of select() in paho's loop.

paho-mqtt's network loop calls ``select.select``, which cannot watch a file
descriptor numbered 1024 or above (FD_SETSIZE). Each simulated locker holds
about six descriptors (its SQLite database, WAL and shared memory, its socket,
paho's wake-up socket pair), so past ~170 lockers in one process new
connections fail silently. A Pi runs one client and never gets near that; the
town simulator calls :func:`install`, which swaps paho's module-level
``select`` for this poll()-based stand-in, in this process only.
"""

from __future__ import annotations

import select as _select
from collections.abc import Sequence
from typing import Any

import paho.mqtt.client as _paho_client


def _fd(obj: Any) -> int:
    if isinstance(obj, int):
        fd = obj
    else:
        try:
            fd = obj.fileno()
        except AttributeError:
            raise TypeError(f"{obj!r} has no fileno()") from None
    if fd < 0:
        raise ValueError("file descriptor cannot be a negative integer")
    return int(fd)


class _PollSelect:
    """The parts of the ``select`` module paho uses, with ``select()`` built on ``poll()``."""

    error = OSError

    def __getattr__(self, name: str) -> Any:
        return getattr(_select, name)

    @staticmethod
    def select(
        rlist: Sequence[Any], wlist: Sequence[Any], xlist: Sequence[Any], timeout: float | None = None
    ) -> tuple[list[Any], list[Any], list[Any]]:
        poller = _select.poll()
        masks: dict[int, int] = {}
        objects: dict[int, tuple[list[Any], list[Any]]] = {}
        for objs, mask, slot in ((rlist, _select.POLLIN, 0), (wlist, _select.POLLOUT, 1)):
            for obj in objs:
                fd = _fd(obj)
                masks[fd] = masks.get(fd, 0) | mask
                objects.setdefault(fd, ([], []))[slot].append(obj)
        for fd, mask in masks.items():
            poller.register(fd, mask)
        ready = poller.poll(None if timeout is None else max(0.0, timeout) * 1000)
        readable: list[Any] = []
        writable: list[Any] = []
        for fd, event in ready:
            reads, writes = objects[fd]
            if event & (_select.POLLIN | _select.POLLHUP | _select.POLLERR | _select.POLLNVAL):
                readable += reads  # a hang-up or error reads as readable: paho's read then sees it
            if event & (_select.POLLOUT | _select.POLLERR):
                writable += writes
        return readable, writable, []


def install() -> None:
    """Use poll() in every paho client of this process (idempotent)."""
    if not isinstance(getattr(_paho_client, "select", None), _PollSelect):
        _paho_client.select = _PollSelect()  # type: ignore[attr-defined,assignment]
