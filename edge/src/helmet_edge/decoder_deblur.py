"""Image restoration for the decoder cascade: find the code, undo motion blur.

Pure OpenCV and NumPy on grayscale frames; nothing here decodes. Motion blur
from a phone moving during the exposure is a straight streak: its direction is
the one along which the image has the least gradient energy (a QR code alone
has as much along one of its axes as along the other), and its length is where
the derivative along that direction correlates most negatively with itself.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import numpy.typing as npt

from helmet_edge.ports import Frame

Rect = tuple[int, int, int, int]  # x0, y0, x1, y1
F32 = npt.NDArray[np.float32]


def textured_region(gray: Frame, *, level: float = 0.5, margin: int = 3, shrink: int = 4) -> Rect:
    """The bounding box of the most densely edged area: where a code most likely is.

    ``level``: the share of the densest point's edge density that still counts as the same area;
    ``margin``: added on every side, in quarter-scale pixels; ``shrink``: what makes ``gray`` quarter-scale
    (2 for a frame already at half scale; the box is then in half-scale pixels).
    """
    # A quarter of the size is enough to find a code of 100 px or more, and 16 times cheaper.
    small = cv2.resize(gray, None, fx=1 / shrink, fy=1 / shrink, interpolation=cv2.INTER_AREA)
    gx = cv2.Sobel(small, cv2.CV_16S, 1, 0)
    gy = cv2.Sobel(small, cv2.CV_16S, 0, 1)
    density = cv2.boxFilter((np.abs(gx) + np.abs(gy)).astype(np.float32), -1, (7, 7))
    y, x = np.unravel_index(int(np.argmax(density)), density.shape)
    dense = (density > level * density[y, x]).astype(np.uint8)
    _, labels, stats, _ = cv2.connectedComponentsWithStats(dense)
    x0, y0, w, h, _ = (int(v) for v in stats[labels[y, x]])
    m, k = margin, shrink
    return _clip((k * (x0 - m), k * (y0 - m), k * (x0 + w + m), k * (y0 + h + m)), gray.shape)


def box_around(points: list[tuple[float, float]], shape: tuple[int, ...], margin: float = 0.2) -> Rect:
    """The bounding box of ``points`` grown by ``margin`` of its size on every side."""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = (max(xs) - min(xs)) * margin + 4, (max(ys) - min(ys)) * margin + 4
    return _clip((int(min(xs) - mx), int(min(ys) - my), int(max(xs) + mx), int(max(ys) + my)), shape)


def _clip(rect: Rect, shape: tuple[int, ...]) -> Rect:
    h, w = shape[:2]
    x0, y0, x1, y1 = rect
    return max(0, x0), max(0, y0), min(w, x1), min(h, y1)


def streak_angle(crop: Frame) -> tuple[float, float]:
    """The direction of a motion streak in degrees (image axes, y down) and the gradient anisotropy.

    Anisotropy is the ratio of the weaker to the stronger gradient energy: near
    1 for a sharp code, well below for one smeared along a line.
    """
    smooth = cv2.GaussianBlur(crop.astype(np.float32), (0, 0), 1.0)
    gx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0)
    gy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1)
    jxx, jyy, jxy = float((gx * gx).sum()), float((gy * gy).sum()), float((gx * gy).sum())
    mean, diff = (jxx + jyy) / 2, math.hypot((jxx - jyy) / 2, jxy)
    ratio = (mean - diff) / (mean + diff) if mean > 0 else 1.0
    # The gradients point across the streak; the streak runs perpendicular to them.
    return math.degrees(0.5 * math.atan2(2 * jxy, jxx - jyy)) + 90, ratio


def straighten(crop: Frame, angle: float) -> Frame:
    """Rotate ``crop`` so a streak at ``angle`` degrees runs along the rows."""
    h, w = crop.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    cos, sin = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = int(h * sin + w * cos), int(h * cos + w * sin)
    m[0, 2] += nw / 2 - w / 2
    m[1, 2] += nh / 2 - h / 2
    out = cv2.warpAffine(crop, m, (nw, nh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return np.asarray(out, dtype=np.uint8)


def streak_length(rows: Frame, longest: int = 24) -> float:
    """The length in pixels of a streak along the rows of ``rows``."""
    d = np.diff(rows[::3].astype(np.float32), axis=1)  # every third row is plenty, and cheaper
    d -= d.mean()
    energy = float((d * d).sum()) or 1.0
    corr = [float((d[:, :-k] * d[:, k:]).sum()) / energy for k in range(2, min(longest, d.shape[1] - 1))]
    return float(np.argmin(corr)) + 2 if corr else 2.0


def unstreak(rows: Frame, length: float, nsr: float) -> Frame:
    """Wiener-deconvolve a streak of ``length`` pixels along the rows (``nsr``: noise to signal power)."""
    pad = math.ceil(length) * 2
    n = cv2.getOptimalDFTSize(rows.shape[1] + 2 * pad)
    img = np.pad(rows.astype(np.float32), ((0, 0), (pad, n - rows.shape[1] - pad)), mode="edge")
    kernel = np.zeros(n, np.float32)
    whole = int(length)
    kernel[:whole] = 1
    kernel[whole] = length - whole
    kernel = np.roll(kernel / kernel.sum(), -(whole // 2))
    k = np.fft.rfft(kernel)
    restored = np.fft.irfft(np.fft.rfft(img, axis=1) * (np.conj(k) / (np.abs(k) ** 2 + nsr))[None, :], n=n, axis=1)
    return np.clip(restored[:, pad : pad + rows.shape[1]], 0, 255).astype(np.uint8)


def compression_axis(crop: Frame) -> tuple[float, float]:
    """The direction in degrees (image axes, y down) along which a steeply tilted code is squeezed, and how evenly.

    A code seen at a steep angle has its modules foreshortened along one direction, so its edges come closer
    together, and its gradients are stronger, along that one. The second value is the ratio of the weaker to
    the stronger gradient energy (1 for a code seen head-on). No smoothing first: it would erase the
    squeezed modules' edges, which are the ones that tell the direction.
    """
    gx = cv2.Sobel(crop, cv2.CV_32F, 1, 0, ksize=1)
    gy = cv2.Sobel(crop, cv2.CV_32F, 0, 1, ksize=1)
    jxx, jyy, jxy = float((gx * gx).sum()), float((gy * gy).sum()), float((gx * gy).sum())
    mean, diff = (jxx + jyy) / 2, math.hypot((jxx - jyy) / 2, jxy)
    ratio = (mean - diff) / (mean + diff) if mean > 0 else 1.0
    return math.degrees(0.5 * math.atan2(2 * jxy, jxx - jyy)), ratio


def stretch(crop: Frame, angle: float, factor: float, *, scale: float = 1.0, cubic: bool = False) -> Frame:
    """``crop`` stretched by ``factor`` along the direction ``angle`` (degrees), and scaled by ``scale`` overall."""
    h, w = crop.shape[:2]
    a = math.radians(angle)
    u = np.array([math.cos(a), math.sin(a)])
    m = scale * (np.eye(2) + (factor - 1) * np.outer(u, u))
    corners = np.array([[0, 0], [w, 0], [0, h], [w, h]], dtype=np.float64) @ m.T
    lo, hi = corners.min(axis=0), corners.max(axis=0)
    affine = np.hstack([m, -lo[:, None]])
    size = (math.ceil(hi[0] - lo[0]), math.ceil(hi[1] - lo[1]))
    flags = cv2.INTER_CUBIC if cubic else cv2.INTER_LINEAR
    along = (angle % 180 + 15) % 90 - 15  # off the nearest image axis, in degrees
    if abs(along) < 1e-6 or (abs(along) < 10 and factor * scale < 3):
        # Close enough to an axis: a plain resize, several times cheaper than a warp.
        horizontal = abs(angle % 180 - 90) > 45
        fx, fy = (factor * scale, scale) if horizontal else (scale, factor * scale)
        return np.ascontiguousarray(cv2.resize(crop, None, fx=fx, fy=fy, interpolation=flags), dtype=np.uint8)
    out = cv2.warpAffine(crop, affine, size, flags=flags, borderMode=cv2.BORDER_REPLICATE)
    return np.ascontiguousarray(out, dtype=np.uint8)
