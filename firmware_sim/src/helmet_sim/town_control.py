"""The control channel of a running ``helmet-sim town``: faults from the command line.

JSON lines over a Unix socket in the town's work directory (``control.sock``), the same lines as
``helmet-sim locker`` reads on stdin: one request per line, a JSON object with an ``op`` and
optionally an ``"id"``; one answer per line, carrying that id, ``"ok"`` and, if not ok, an
``"error"`` in words. A connection carries as many requests as it likes, one after another; several
connections may be open at once. ``helmet-sim control`` is its client (``nc -U`` or ``socat`` work too).

The socket is the town's own file (mode 0600 in its work directory): only its user can steer it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import socketserver
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from helmet_sim.control import BadRequest, arg, serve_lines
from helmet_sim.town import FaultError, Town

log = logging.getLogger(__name__)

SOCKET_NAME = "control.sock"
# AF_UNIX addresses are at most 107 bytes on Linux.
MAX_SOCKET_PATH = 107

OPS = {
    "status": "the town's figures and each locker: running, cable, connected, events, outbox",
    "cut": 'pull a locker\'s network cable: {"locker": "LK-0001"} (or its station id, or its number)',
    "restore": 'plug it back in: {"locker": ...}',
    "kill": 'a locker loses power between two visits, no goodbye; its kiosk is dark: {"locker": ...}',
    "restart": 'the killed locker boots on its own data: {"locker": ..., "timeout": 20} for its connection',
    "pause": 'residents stop, simulated time stands still, doors left open get shut: {"timeout": 60}',
    "resume": "residents go on",
    "check": 'the consistency check now (a running town is paused for it, then resumed): {"timeout": 30}',
    "stop": "end the run: the final check, as after Ctrl-C",
    "help": "these ops",
}


class ControlError(RuntimeError):
    """The control channel cannot be opened (a town already runs there, the path is too long), in words."""


def socket_path(workdir: Path) -> Path:
    return workdir / SOCKET_NAME


def answers(path: Path) -> bool:
    """Whether a town listens on ``path`` now."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(2)
        try:
            probe.connect(str(path))
        except OSError:
            return False
        return True


class TownControl:
    """The ops on one town; ``stop_requested`` is set by ``stop`` for the runner's loop."""

    def __init__(self, town: Town) -> None:
        self.town = town
        self.stop_requested = threading.Event()

    def handle(self, req: dict[str, Any]) -> dict[str, Any]:
        op = req["op"]
        method = getattr(self, f"op_{op}", None) if op in OPS else None
        if method is None:
            raise BadRequest(f"unknown op {op!r}; the ops: {', '.join(OPS)}")
        try:
            result: dict[str, Any] = method(req)
        except FaultError as exc:
            raise BadRequest(str(exc)) from None
        return result

    def _locker(self, req: dict[str, Any]) -> int:
        if "locker" not in req:
            raise BadRequest('missing "locker" (its id, e.g. "LK-0001", its station id, or its number)')
        return self.town.index_of(req["locker"])

    def _named(self, i: int, **fields: Any) -> dict[str, Any]:
        return {"locker": self.town.rigs[i].locker_id, **fields}

    def op_help(self, _req: dict[str, Any]) -> dict[str, Any]:
        return {"ops": OPS}

    def op_status(self, _req: dict[str, Any]) -> dict[str, Any]:
        return self.town.status()

    def op_cut(self, req: dict[str, Any]) -> dict[str, Any]:
        i = self._locker(req)
        self.town.cut(i)
        return self._named(i, cable="cut")

    def op_restore(self, req: dict[str, Any]) -> dict[str, Any]:
        i = self._locker(req)
        self.town.restore(i)
        return self._named(i, cable="plugged")

    def op_kill(self, req: dict[str, Any]) -> dict[str, Any]:
        i = self._locker(req)
        return self._named(i, running=False, events=self.town.kill(i))

    def op_restart(self, req: dict[str, Any]) -> dict[str, Any]:
        i = self._locker(req)
        connected = self.town.restart(i, timeout=arg(req, "timeout", float, 20.0))
        return self._named(i, running=True, connected=connected)

    def op_pause(self, req: dict[str, Any]) -> dict[str, Any]:
        done = self.town.pause(timeout=arg(req, "timeout", float, 60.0))
        return {"paused": True, "simulated": self.town.clock.now().strftime("%a %H:%M"), **done}

    def op_resume(self, _req: dict[str, Any]) -> dict[str, Any]:
        self.town.resume()
        return {"paused": False, "simulated": self.town.clock.now().strftime("%a %H:%M")}

    def op_check(self, req: dict[str, Any]) -> dict[str, Any]:
        paused = self.town.paused.is_set()
        problems = self.town.check_now(timeout=arg(req, "timeout", float, 30.0))
        return {
            "consistent": not problems,
            "problems": problems,
            "paused_for_check": not paused,
            "lockers": len(self.town.rigs),
            "events": self.town.recorded_events(),
            "helmets_out": sum(len(r.holding) for r in self.town.residents),
        }

    def op_stop(self, _req: dict[str, Any]) -> dict[str, Any]:
        self.stop_requested.set()
        return {"stopping": True}


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    handle_request_fields: Callable[[dict[str, Any]], dict[str, Any] | None]


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        def write(line: str) -> None:
            self.wfile.write(line.encode() + b"\n")
            self.wfile.flush()

        lines = (raw.decode("utf-8", errors="replace") for raw in self.rfile)
        with contextlib.suppress(OSError):  # the client went away
            serve_lines(lines, write, self.server.handle_request_fields)


class ControlServer:
    """Serves a :class:`TownControl` on ``<workdir>/control.sock`` until :meth:`close`."""

    def __init__(self, control: TownControl, path: Path) -> None:
        if len(os.fsencode(path)) > MAX_SOCKET_PATH:
            raise ControlError(
                f"the control socket {path} would be longer than {MAX_SOCKET_PATH} bytes: use a shorter --workdir"
            )
        if path.exists() or path.is_symlink():
            if answers(path):
                raise ControlError(f"a town already runs on {path.parent} (its control socket answers)")
            path.unlink()
        self.path = path
        old = os.umask(0o177)  # the socket is the town's user's alone
        try:
            self.server = _Server(str(path), _Handler)
        finally:
            os.umask(old)
        self.server.handle_request_fields = control.handle
        self.thread = threading.Thread(target=self.server.serve_forever, name="town-control", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        with contextlib.suppress(OSError):
            self.path.unlink()


def send(
    path: Path, requests: Iterable[str], on_answer: Callable[[str], None], *, timeout: float | None = None
) -> None:
    """Send request lines to the town on ``path``, one after another; each answer line to ``on_answer``."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        with sock.makefile("rwb") as stream:
            for line in (r for r in requests if r.strip()):  # a blank line gets no answer
                stream.write(line.strip().encode() + b"\n")
                stream.flush()
                reply = stream.readline()
                if not reply:
                    raise ConnectionError("the town closed the control connection (it is stopping?)")
                on_answer(reply.decode().rstrip("\n"))
