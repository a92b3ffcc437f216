"""sd_notify for systemd: ``READY=1`` after start-up, ``WATCHDOG=1`` from the main loop, ``STOPPING=1``.

The protocol is one datagram per message to the socket named in
``$NOTIFY_SOCKET`` (a path, or ``@name`` in the abstract namespace); no
library needed. Without ``$NOTIFY_SOCKET`` (not under systemd, tests, the
simulator) every call does nothing. The unit's ``WatchdogSec=`` arrives as
``$WATCHDOG_USEC``; pings go out at half that period, so a main loop that
hangs is killed and restarted by systemd.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        path = env.get("NOTIFY_SOCKET") or None
        self.address = "\0" + path[1:] if path and path.startswith("@") else path
        usec = env.get("WATCHDOG_USEC", "")
        # WATCHDOG_PID, when set, names the process the pings must come from.
        pid = env.get("WATCHDOG_PID")
        mine = pid is None or pid == str(os.getpid())
        self.interval = int(usec) / 2e6 if usec.isdigit() and int(usec) > 0 and mine else None
        self._last_ping = float("-inf")

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, message: str) -> bool:
        if self.address is None:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(self.address)
                sock.sendall(message.encode())
        except OSError as exc:  # systemd gone or socket not ours: never a reason to stop a locker
            log.debug("sd_notify %r failed: %s", message, exc)
            return False
        return True

    def ready(self, status: str = "") -> None:
        self.send("READY=1" + (f"\nSTATUS={status}" if status else ""))

    def stopping(self) -> None:
        self.send("STOPPING=1")

    def ping(self, now: float | None = None) -> None:
        """``WATCHDOG=1``, at most twice per watchdog period; call it from the loop that must stay alive."""
        if self.interval is None:
            return
        now = time.monotonic() if now is None else now
        if now - self._last_ping >= self.interval:
            self._last_ping = now
            self.send("WATCHDOG=1")
