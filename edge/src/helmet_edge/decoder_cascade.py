"""A decoder that combines zxing-cpp, pyzbar and image restoration, inside a time budget per frame.

zxing-cpp (QR Model 2 only, ``try_downscale`` on) reads almost every frame in
about a millisecond, so it goes first; every other step runs only while the
frame has not yielded, cheapest and most productive first (the order was
chosen on ``bench/frames.py`` seed 1):

1. only if zxing located a symbol it could not read at the frame's edge (or
   could give no position for it, as for a code whose grid leaves the image):
   the frame in a white border, so a corner or quiet zone cut off by the
   frame's edge comes back as light modules for error correction to mend;
2. zxing-cpp again on cheap variants of the frame: half scale (also smooths
   sensor noise), half scale sharpened with a fixed threshold, a 3x3 median
   (noise in dark and low-contrast frames), the most densely edged region
   sharpened and stretched 1.6 times along the direction a steep tilt (past
   about 50 degrees) squeezed it, the frame sharpened with a fixed threshold
   (defocus);
3. motion-blur deconvolution of the region where the code probably is (where
   zxing located a symbol it could not read, else the most densely edged
   area): the streak's direction and length are estimated, then undone;
4. only once zxing has located a symbol: more deconvolution settings, then
   pyzbar (QR only) on the region and on the frame.

zxing-cpp itself already tries every in-plane rotation of a QR code (its
finder patterns are found in any direction) and reads a code whose quiet zone
is cut off by the frame's edge, so no rotated or padded copy is tried blind.

Each step's cost is learned from its recent runs, and a step is skipped when
it would not finish within the frame's budget: ``quick_ms`` while nothing has
been located (a frame with no code must stay cheap), ``budget_ms`` once zxing
has located a symbol. A frame that still does not yield is left to the next
one. Under load, fewer fallbacks fit, so the read rate falls before the
frame rate does.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np
import zxingcpp

from helmet_edge import decoder_deblur as deblur
from helmet_edge import decoder_pyzbar
from helmet_edge.decoder_zxing import QR_ONLY
from helmet_edge.ports import Frame

log = logging.getLogger(__name__)

_FIXED = zxingcpp.Binarizer.FixedThreshold
_LOCAL = zxingcpp.Binarizer.LocalAverage
_DEBLUR_AREA = 50_000  # pixels; deconvolution cost grows with the area
_PAD_UNKNOWN = 96  # pixels of border when zxing-cpp located a symbol but gave no position


@dataclass
class _Work:
    """What the steps learn about one frame as the cascade runs."""

    gray: Frame
    seen: list[list[tuple[float, float]]] = field(default_factory=list)  # symbols located but not read
    _region: deblur.Rect | None = None
    _streak: tuple[Frame, float] | None = None
    _squeezed: tuple[Frame, float] | None = None
    _half: Frame | None = None
    tried: set[tuple[float, float]] = field(default_factory=set)  # deconvolution settings already tried

    @property
    def evidence(self) -> bool:
        return bool(self.seen)

    def half(self) -> Frame:
        if self._half is None:
            small = cv2.resize(self.gray, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
            self._half = np.asarray(small, dtype=np.uint8)
        return self._half

    def region(self) -> deblur.Rect:
        if self._region is None:
            if self.seen:
                self._region = deblur.box_around(self.seen[0], self.gray.shape)
            else:
                self._region = deblur.textured_region(self.gray)
        return self._region

    def crop(self) -> Frame:
        x0, y0, x1, y1 = self.region()
        return self.gray[y0:y1, x0:x1]

    def squeezed(self) -> tuple[Frame, float] | None:
        """The code's region and the direction along which a steep tilt squeezed it (None: too small a region)."""
        if self._squeezed is None:
            if self.seen:
                x0, y0, x1, y1 = self.region()
            else:  # a looser area than the deblurring one: a squeezed code's edges are less dense across it
                # (found on the half-scale frame, already made, for a quarter of the cost: the same pixels)
                x0, y0, x1, y1 = (2 * v for v in deblur.textured_region(self.half(), level=0.4, margin=2, shrink=2))
            crop = self.gray[y0:y1, x0:x1]
            if min(crop.shape[:2]) < 24:
                return None
            self._squeezed = crop, deblur.compression_axis(crop)[0]
        return self._squeezed

    def near_edge(self) -> int:
        """How wide a border would give back what a located symbol has lost past the frame's edge (0: none lost).

        zxing-cpp gives no position (all corners at 0, 0) for a symbol whose grid would leave the image,
        the usual case for a cut-off corner: then a border that covers a cut of a quarter of a large code.
        """
        h, w = self.gray.shape[:2]
        for quad in self.seen:
            xs, ys = [p[0] for p in quad], [p[1] for p in quad]
            side = max(max(xs) - min(xs), max(ys) - min(ys))
            if side < 8:
                return _PAD_UNKNOWN
            m = max(8.0, 0.15 * side)
            if min(xs) < m or min(ys) < m or max(xs) > w - m or max(ys) > h - m:
                return int(min(max(0.4 * side, 32), 160))
        return 0

    def streak(self) -> tuple[Frame, float] | None:
        """The code's region turned so a motion streak runs along the rows, and the streak's length."""
        if self._streak is None:
            crop = self.crop()
            if min(crop.shape[:2]) < 24:
                return None
            if crop.size > _DEBLUR_AREA:  # a close, large code: its modules survive shrinking, and it is cheaper
                f = (_DEBLUR_AREA / crop.size) ** 0.5
                crop = np.asarray(cv2.resize(crop, None, fx=f, fy=f, interpolation=cv2.INTER_AREA), dtype=np.uint8)
            angle, ratio = deblur.streak_angle(crop)
            if ratio > 0.8:  # no dominant direction: not motion blur
                return None
            rows = deblur.straighten(crop, angle)
            self._streak = rows, deblur.streak_length(rows)
        return self._streak


def _zxing(
    work: _Work,
    image: Frame,
    *,
    scale: float | None = 1.0,
    binarizer: zxingcpp.Binarizer = _LOCAL,
    downscale: bool = True,
) -> list[bytes]:
    """zxing-cpp on ``image``, the frame at ``scale``; symbols it located but could not read are noted.

    ``scale=None``: the image is not the whole frame, so locations mean nothing there.
    """
    found = []
    for r in zxingcpp.read_barcodes(
        image, formats=QR_ONLY, try_downscale=downscale, binarizer=binarizer, return_errors=True
    ):
        if r.valid:
            found.append(bytes(r.bytes))
        elif scale is not None:
            p = r.position
            corners = (p.top_left, p.top_right, p.bottom_right, p.bottom_left)
            work.seen.append([(c.x / scale, c.y / scale) for c in corners])
    return found


def _sharpen(image: Frame, amount: float = 2.0, sigma: float = 2.0) -> Frame:
    blurred = cv2.GaussianBlur(image, (0, 0), sigma)
    return np.asarray(cv2.addWeighted(image, 1 + amount, blurred, -amount, 0), dtype=np.uint8)


def _raw(w: _Work) -> list[bytes]:
    return _zxing(w, w.gray)


def _half(w: _Work) -> list[bytes]:
    return _zxing(w, w.half(), scale=0.5)


def _half_sharp_fixed(w: _Work) -> list[bytes]:
    return _zxing(w, _sharpen(w.half(), 1.5, 1.0), scale=0.5, binarizer=_FIXED)


def _median(w: _Work) -> list[bytes]:
    return _zxing(w, np.asarray(cv2.medianBlur(w.gray, 3), dtype=np.uint8))


def _sharp_fixed(w: _Work) -> list[bytes]:
    return _zxing(w, _sharpen(w.gray), binarizer=_FIXED)


def _padded(w: _Work) -> list[bytes]:
    """A located symbol at the frame's edge: the frame in a white border, so the symbol's quiet zone and the
    modules cut off come back as light ones. zxing-cpp does not sample a grid that leaves the image; with the
    border, the modules that were out of view are wrong in a way the code's error correction can mend."""
    pad = w.near_edge()
    if not pad:
        return []
    framed = cv2.copyMakeBorder(w.gray, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=255)
    return _zxing(w, np.asarray(framed, dtype=np.uint8), scale=None)


def _steep(w: _Work) -> list[bytes]:
    """The code's region, sharpened and stretched back along the direction a steep tilt squeezed it.

    Tilted past about 50 degrees about an axis oblique to its rows, a code's modules are squeezed to under
    two pixels along one direction and zxing-cpp mostly does not locate it at all (tilted about the code's
    own row or column axis it still reads). Stretching by 1.6 (about 1 / cos 50-65 degrees) along the
    direction of strongest gradients gives roughly square modules again; a fixed threshold reads them best.
    """
    squeezed = w.squeezed()
    if squeezed is None:
        return []
    crop, angle = squeezed
    stretched = deblur.stretch(_sharpen(crop, 1.0, 1.0), angle, 1.6)
    return _zxing(w, stretched, scale=None, binarizer=_FIXED, downscale=False)


def _unstreak(*tries: tuple[float, float]) -> Callable[[_Work], list[bytes]]:
    """Deconvolve the motion streak with each (extra length, noise-to-signal) in turn."""

    def step(w: _Work) -> list[bytes]:
        streak = w.streak()
        if streak is None:
            return []
        rows, length = streak
        for extra, nsr in tries:
            if (extra, nsr) in w.tried:
                continue
            w.tried.add((extra, nsr))
            found = _zxing(w, deblur.unstreak(rows, length + extra, nsr), scale=None)
            if found:
                return found
        return []

    return step


class CascadeDecoder:
    """zxing-cpp first; fallbacks and restoration only while a frame has not yielded, within a time budget.

    ``wins`` counts the frames each step read (for the benchmark and for tuning).
    """

    def __init__(
        self,
        *,
        quick_ms: float = 4.0,
        budget_ms: float = 30.0,
        use_pyzbar: bool = True,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.quick_ms = quick_ms
        self.budget_ms = budget_ms
        self._clock = clock
        # (name, step, only when a symbol was located): cheapest and most productive first.
        steps: list[tuple[str, Callable[[_Work], list[bytes]], bool]] = [
            ("zxing", _raw, False),
            ("padded", _padded, True),
            ("half", _half, False),
            ("half-sharp-fixed", _half_sharp_fixed, False),
            ("median", _median, False),
            ("steep", _steep, False),
            ("sharp-fixed", _sharp_fixed, False),
            ("unstreak", _unstreak((0, 0.01)), False),
            ("unstreak-more", _unstreak((0, 0.01), (0, 0.003), (0.5, 0.02), (-0.5, 0.005)), True),
        ]
        if use_pyzbar and decoder_pyzbar.available():  # the locker service says once when it is not
            zbar = decoder_pyzbar.PyzbarDecoder()
            steps.append(("pyzbar-region", lambda w: zbar.decode(np.ascontiguousarray(w.crop())), True))
            steps.append(("pyzbar", lambda w: zbar.decode(w.gray), True))
        self._steps = steps
        # Recent run times per step; their median is the step's expected cost (one slow run must not starve it).
        self._took: dict[str, deque[float]] = {name: deque(maxlen=15) for name, _, _ in steps}
        self.wins = dict.fromkeys((name for name, _, _ in steps), 0)

    @property
    def cost_ms(self) -> dict[str, float]:
        """What each step is expected to cost, from its recent runs."""
        return {name: statistics.median(took) if took else 0.0 for name, took in self._took.items()}

    def decode(self, frame: Frame) -> list[bytes]:
        start = self._clock()
        gray = frame if frame.ndim == 2 else np.asarray(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), dtype=np.uint8)
        work = _Work(np.ascontiguousarray(gray))
        for i, (name, step, needs_evidence) in enumerate(self._steps):
            if needs_evidence and not work.evidence:
                continue
            limit = self.budget_ms if work.evidence else self.quick_ms
            began = self._clock()
            took = self._took[name]
            if i and took and (began - start) * 1000 + statistics.median(took) > limit:
                continue
            found = step(work)
            took.append((self._clock() - began) * 1000)
            if found:
                self.wins[name] += 1
                return list(dict.fromkeys(found))
        return []
