"""Camera on OpenCV ``VideoCapture`` that always returns the newest frame."""

from __future__ import annotations

import logging
import threading
import time

import cv2
import numpy as np

from helmet_edge.config import CameraSettings
from helmet_edge.ports import Frame

log = logging.getLogger(__name__)


class OpenCvCamera:
    """A reader thread drains the device so ``read()`` never sees a stale buffered frame.

    A device that does not open, or stops delivering frames for ``stale_after`` seconds, is reopened with
    back-off (1 s, doubling to ``longest_retry`` s). That is said once when it starts, with what to check,
    and once when frames come again; ``healthy`` tells the locker's status meanwhile. OpenCV's own warnings
    for each attempt are silenced: this log line says it in words a technician can act on.
    """

    def __init__(self, settings: CameraSettings, *, stale_after: float = 3.0, longest_retry: float = 30.0) -> None:
        self.settings = settings
        self.stale_after = stale_after
        self.longest_retry = longest_retry
        self._frame: Frame | None = None
        self._frame_at = 0.0
        self._taken = True
        self.reopened = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        self._thread = threading.Thread(target=self._run, name="camera", daemon=True)
        self._thread.start()

    @property
    def healthy(self) -> bool:
        return time.monotonic() - self._frame_at < self.stale_after

    def _open(self) -> cv2.VideoCapture:
        cap = cv2.VideoCapture(self.settings.device)
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.settings.width)
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.settings.height)
        cap.set(cv2.CAP_PROP_FPS, self.settings.fps)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        return cap

    def _run(self) -> None:
        device = self.settings.device
        cap = self._open()
        started = time.monotonic()
        delay = 1.0
        trouble_since: float | None = None
        while not self._stop.is_set():
            ok, raw = cap.read() if cap.isOpened() else (False, None)
            if ok and raw is not None:
                frame: Frame = np.asarray(raw, dtype=np.uint8)
                with self._lock:
                    self._frame, self._frame_at, self._taken = frame, time.monotonic(), False
                if trouble_since is not None:
                    log.info("camera %s delivers frames again (after %.0f s)", device, time.monotonic() - trouble_since)
                    trouble_since, delay = None, 1.0
            elif not cap.isOpened() or time.monotonic() - max(self._frame_at, started) >= self.stale_after:
                if trouble_since is None:
                    trouble_since = time.monotonic()
                    if not cap.isOpened():
                        log.warning(
                            "camera %s cannot be opened (is it connected, and is camera.device right?); "
                            "retrying, less often each time (every %g s at most)", device, self.longest_retry,
                        )  # fmt: skip
                    else:
                        log.warning("camera %s delivers no frames; reopening it, then every %g s at most",
                                    device, self.longest_retry)  # fmt: skip
                cap.release()
                self._stop.wait(delay)
                delay = min(delay * 2, self.longest_retry)
                cap = self._open()
                started = time.monotonic()
                self.reopened += 1
            else:
                self._stop.wait(0.05)
        cap.release()

    def read(self) -> Frame | None:
        with self._lock:
            if self._taken or self._frame is None:
                return None
            self._taken = True
            return self._frame

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
