"""A decoder that runs another one in a child process and replaces it when it crashes or hangs.

The C libraries behind decoding can take the whole process down (zbar has
aborted processes on malformed input); the kiosk must keep its locks, MQTT
link and store running regardless. Frames go to the child over a pipe; a
child that dies, or does not answer within ``deadline_s``, is killed and a
new one started, and that frame decodes as nothing. Restarts after repeated
failures back off so a child that cannot even start does not spin.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerContext, SpawnContext
from multiprocessing.process import BaseProcess

import numpy as np

from helmet_edge.decoder_cascade import CascadeDecoder
from helmet_edge.ports import Decoder, Frame

log = logging.getLogger(__name__)

_READY = "ready"


def _serve(conn: Connection, factory: Callable[[], Decoder]) -> None:
    """The child: build the decoder, then answer frames until told to stop.

    Ctrl-C at a terminal reaches the whole process group: the parent shuts down and closes the child, which
    ignores the signal instead of dying mid-frame with a traceback.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    decoder = factory()
    conn.send(_READY)
    while True:
        header = conn.recv()
        if header is None:
            return
        shape, dtype = header
        frame = np.frombuffer(conn.recv_bytes(), dtype=dtype).reshape(shape)
        try:
            conn.send(("ok", decoder.decode(frame)))
        except Exception as exc:  # a Python error in one frame is not worth a restart
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


@dataclass
class _Child:
    proc: BaseProcess
    conn: Connection
    started_at: float
    ready: bool = False

    def wait_ready(self, timeout: float) -> bool:
        if not self.ready:
            with contextlib.suppress(EOFError, OSError):  # a child that died before it was ready
                self.ready = self.conn.poll(timeout) and self.conn.recv() == _READY
        return self.ready

    def stop(self, *, gently: bool) -> None:
        if gently:
            with contextlib.suppress(OSError):
                self.conn.send(None)
            self.proc.join(1)
        self.conn.close()
        self.proc.kill()
        self.proc.join(5)
        self.proc.close()


class SupervisedDecoder:
    """Implements :class:`~helmet_edge.ports.Decoder` by delegating to ``factory()`` in a child process.

    ``factory`` must be picklable (a class or module-level function): the
    child builds its own decoder. The constructor waits up to ``start_s`` for
    the first child; later restarts happen inside ``decode`` and wait at most
    ``deadline_s``, so a restart costs the kiosk a frame, not its loop.
    """

    def __init__(
        self,
        factory: Callable[[], Decoder] = CascadeDecoder,
        *,
        deadline_s: float = 2.0,
        start_s: float = 60.0,
        backoff_s: tuple[float, float] = (0.5, 30.0),
    ) -> None:
        self.factory = factory
        self.deadline_s = deadline_s
        self.backoff_s = backoff_s
        self.restarts = 0
        self._ctx: SpawnContext | ForkServerContext
        if "forkserver" in mp.get_all_start_methods():
            self._ctx = mp.get_context("forkserver")
            # Restarts fork from a server that has already imported OpenCV and zxing-cpp.
            self._ctx.set_forkserver_preload(["helmet_edge.decoder_cascade"])
        else:
            self._ctx = mp.get_context("spawn")
        self._failures = 0
        self._not_before = 0.0
        self._child: _Child | None = self._start()
        if not self._child.wait_ready(start_s):
            alive = self._child.proc.is_alive()
            self._fail(f"did not start within {start_s} s" if alive else "failed to start")

    @property
    def pid(self) -> int | None:
        """The child's process id (for tests and diagnostics)."""
        return self._child.proc.pid if self._child is not None else None

    def _start(self) -> _Child:
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(target=_serve, args=(child, self.factory), name="decoder", daemon=True)
        proc.start()
        child.close()
        return _Child(proc, parent, time.monotonic())

    def _fail(self, why: str) -> None:
        child, self._child = self._child, None
        detail = ""
        if child is not None:
            code = child.proc.exitcode
            detail = f" (exit code {code})" if code is not None else ""
            child.stop(gently=False)
        self._failures += 1
        self.restarts += 1
        delay = 0.0 if self._failures == 1 else min(self.backoff_s[0] * 2 ** (self._failures - 2), self.backoff_s[1])
        self._not_before = time.monotonic() + delay
        log.error("decoder process %s%s; replacing it%s", why, detail, f" in {delay:.1f} s" if delay else "")

    def decode(self, frame: Frame) -> list[bytes]:
        if self._child is None:
            if time.monotonic() < self._not_before:
                return []
            self._child = self._start()
        child = self._child
        if not child.wait_ready(self.deadline_s):
            if not child.proc.is_alive():
                self._fail("failed to start")
            elif time.monotonic() - child.started_at > 10 * self.deadline_s:
                self._fail("is too slow to start")
            return []
        frame = np.ascontiguousarray(frame)
        try:
            child.conn.send((frame.shape, frame.dtype.str))
            child.conn.send_bytes(frame.reshape(-1).data)
            if not child.conn.poll(self.deadline_s):
                self._fail(f"did not answer within {self.deadline_s} s")
                return []
            status, value = child.conn.recv()
        except (EOFError, OSError) as exc:
            child.proc.join(1)  # reap it, so its exit code (the signal that killed it) can be logged
            self._fail(f"died ({type(exc).__name__})")
            return []
        self._failures = 0
        if status != "ok":
            log.warning("decoder raised on a frame: %s", value)
            return []
        return list(value)

    def close(self) -> None:
        """Stop the child."""
        child, self._child = self._child, None
        if child is not None:
            child.stop(gently=True)

    def __enter__(self) -> SupervisedDecoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
