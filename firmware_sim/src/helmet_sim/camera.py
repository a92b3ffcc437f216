"""A virtual kiosk camera: renders what is held in front of it as real frames.

The frame is what a 640x480 camera would see: a grey, noisy background and,
when something is shown, a phone screen or sticker with a real QR code on it.
The locker's real decoder has to read it; nothing is short-circuited.
"""

from __future__ import annotations

import threading

import numpy as np
import segno

from helmet_edge.ports import Frame

WIDTH, HEIGHT = 640, 480


def render_qr(text: str, *, module_px: int = 4, dark_mode: bool = False, border: int = 4) -> Frame:
    """A QR code as a grayscale image, the way segno encodes it (level M)."""
    qr = segno.make(text, error="m", boost_error=False)
    matrix = np.array([[1 if bit else 0 for bit in row] for row in qr.matrix], dtype=np.uint8)
    matrix = np.pad(matrix, border, constant_values=0)
    img = np.where(matrix == 1, 0, 255).astype(np.uint8)
    if dark_mode:
        img = 255 - img
    return np.kron(img, np.ones((module_px, module_px), dtype=np.uint8))


class VirtualCamera:
    """Thread-safe: the scenario shows and hides things while the locker reads frames."""

    def __init__(self, *, seed: int = 0, idle: bool = False) -> None:
        # idle: deliver no frame while nothing is held up. A town of 200 lockers cannot afford to
        # decode empty frames; the decoder would find nothing in them anyway.
        self.idle = idle
        self._rng = np.random.default_rng(seed)
        self._lock = threading.Lock()
        self._frame: Frame | None = None
        self._blank = self._background()
        self.frozen = False
        self.frames_read = 0

    def _background(self) -> Frame:
        noise = self._rng.normal(0, 6, (HEIGHT, WIDTH))
        gradient = np.linspace(90, 140, WIDTH)[None, :]
        return np.clip(gradient + noise, 0, 255).astype(np.uint8)

    def show(
        self, text: str, *, module_px: int = 4, dark_mode: bool = False, x: int | None = None, y: int | None = None
    ) -> None:
        """Hold a QR with ``text`` in front of the camera (a phone screen or sticker)."""
        code = render_qr(text, module_px=module_px, dark_mode=dark_mode)
        h, w = code.shape
        if h > HEIGHT - 20 or w > WIDTH - 20:
            raise ValueError(f"code of {w}x{h} px does not fit the frame")
        frame = self._background()
        x = (WIDTH - w) // 2 if x is None else x
        y = (HEIGHT - h) // 2 if y is None else y
        # The phone's bezel around the screen.
        frame[max(0, y - 12) : y + h + 12, max(0, x - 12) : x + w + 12] = 25
        frame[y : y + h, x : x + w] = code
        with self._lock:
            self._frame = frame

    @property
    def healthy(self) -> bool:
        return not self.frozen

    def clear(self) -> None:
        with self._lock:
            self._frame = None

    def read(self) -> Frame | None:
        if self.frozen:
            return None
        with self._lock:
            if self._frame is None and self.idle:
                return None
            self.frames_read += 1
            return self._frame if self._frame is not None else self._blank

    def close(self) -> None:
        self.clear()
