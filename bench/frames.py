"""A reproducible set of kiosk camera frames for the decoder benchmark.

Every frame is what a 640x480 grayscale kiosk camera would see: a cluttered
background and a phone screen (a signed ``HP1:`` pass, level M) or a helmet
sticker (``https://{host}/h/{id}``) placed in 3-D in front of a pinhole camera,
rendered at twice the resolution and area-averaged down, so modules straddle
pixels the way a sensor integrates them.

Every frame has the ordinary imperfections of a cheap fixed-focus camera and a
hand-held phone (some tilt and in-plane rotation, slight defocus, sensor
noise). Each category then adds one dominant degradation, with ranges taken
from what happens at a kiosk, fixed before any decoder was tuned:

small          phone held far away: 1.8-2.6 px per module
rotated        phone held at any angle in the image plane (0-360 deg)
perspective    phone or helmet tilted 25-50 deg away from the camera
blurred        out of focus (phone too close to a fixed-focus lens): blur disk radius 0.35-0.7 module
motion-blurred phone moving 1.5-5 cm/s during a 1/30 s exposure: a 0.6-2 module streak, any direction
noisy          high sensor gain in a dim place: noise sigma 12-24 grey levels
low-contrast   screen brightness turned down in daylight: 30-55 grey levels between modules
glare          a light reflected on the screen or a glossy sticker: +100..+210 grey levels, smooth
dark           underexposed (evening, no kiosk light): 15-30 % exposure, then gain noise
inverted       phone in dark mode: light modules on a dark screen
jpeg           an MJPEG webcam at low bandwidth: JPEG quality 8-20
quiet-zone     phone pushed against the side or a corner of the view: the code (whole) touches one
               or two frame edges, 0-1 module of its 4-module quiet zone left on that side
cut-off        phone half out of view, held at an angle (roll 15-75 deg off upright, any quadrant):
               the frame's side or corner cuts off the code's corner without a finder pattern,
               1-6 % of the code's modules out of view, and its quiet zone there; the three finder
               patterns stay whole in view (an upright code loses a corner only with the whole
               side, finder pattern included, which no decoder can be expected to read)
steep          phone tilted 50-65 deg away from the camera, past the perspective category's 45
none           no code: empty scene, phones with app screens or text, stickers with a logo

Two revisions were made after the first run of the raw libraries, before the
cascade existed: defocus and motion blur were first fixed pixel amounts, and
became amounts in modules (a fixed-focus lens blurs a close phone, whose
modules are large, more; a streak is hand speed times exposure, which is the
same number of modules at any distance). Later, placement was changed to keep
the whole code in view once it is rolled (one rotated frame had a finder
pattern outside the image, which no decoder should be expected to read).

quiet-zone, cut-off and steep were added later (issue 18: residents hold the
phone half out of view and at odd angles), appended after jpeg so that every
earlier category's frames stay the same. Their ranges were set before the
cascade was changed for them; one change came from trying the placement, not
a decoder: cut-off first drew any roll, and an upright code cannot lose its
corner to the frame's straight edge without the finder pattern beside it.
A cut-off share of 1-6 % of the modules is within level M's error correction
(15 % of the codewords; a corner cut also spoils the codewords along its
edge): pyzbar reads every one of them.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import cv2
import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from helmet_protocol.passes import issue_pass
from helmet_protocol.stickers import helmet_url
from helmet_sim.camera import render_qr

W, H = 640, 480
SS = 2  # supersampling factor of the renderer
FOCAL = 560.0  # px at 640x480: a ~60 deg webcam
OBJ_PX = 8  # object-plane pixels per QR module

CATEGORIES = (
    "small",
    "rotated",
    "perspective",
    "blurred",
    "motion-blurred",
    "noisy",
    "low-contrast",
    "glare",
    "dark",
    "inverted",
    "jpeg",
    "quiet-zone",
    "cut-off",
    "steep",
)

F32 = npt.NDArray[np.float32]
U8 = npt.NDArray[np.uint8]


@dataclass(frozen=True, slots=True)
class Sample:
    category: str
    text: str | None  # None: no code in the frame
    frame: U8
    detail: str = ""  # how the frame was made, to explain a miss


def _token(rng: np.random.Generator, n: int) -> str:
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
    return "".join(alphabet[i] for i in rng.integers(0, len(alphabet), n))


def make_pass(rng: np.random.Generator, key: Ed25519PrivateKey, now: datetime) -> str:
    return issue_pass(
        signing_key=key,
        kid=f"k{int(rng.integers(1, 100))}",
        holder_id="R-" + _token(rng, int(rng.integers(2, 15))),
        quantity=int(rng.integers(1, 5)),
        now=now + timedelta(seconds=int(rng.integers(0, 86400))),
        ttl=timedelta(minutes=int(rng.integers(5, 61))),
        pass_id=str(uuid.UUID(bytes=rng.bytes(16))),
    )


def make_sticker(rng: np.random.Generator) -> str:
    host = ("helmets.town.example", "bike.example.org", "h.example")[int(rng.integers(0, 3))]
    return helmet_url(host, "H-" + str(int(rng.integers(0, 100000))).zfill(5))


# -- scene -----------------------------------------------------------------------


def _background(rng: np.random.Generator) -> F32:
    """A kiosk's surroundings: uneven light, a few edges and objects, texture."""
    h, w = H * SS, W * SS
    gx = np.linspace(0, 1, w, dtype=np.float32)[None, :]
    gy = np.linspace(0, 1, h, dtype=np.float32)[:, None]
    a, b, c = rng.uniform(60, 170), rng.uniform(-50, 50), rng.uniform(-40, 40)
    bg = (a + b * gx + c * gy).astype(np.float32) * np.ones((h, w), np.float32)
    for _ in range(int(rng.integers(3, 9))):
        x0, y0 = int(rng.integers(-200, w)), int(rng.integers(-200, h))
        x1, y1 = x0 + int(rng.integers(60, 700)), y0 + int(rng.integers(60, 700))
        colour = float(rng.uniform(20, 230))
        if rng.random() < 0.5:
            cv2.rectangle(bg, (x0, y0), (x1, y1), colour, -1)
        else:
            box = ((x0 + x1) / 2, (y0 + y1) / 2), (x1 - x0, (y1 - y0) / 2), float(rng.uniform(0, 180))
            cv2.ellipse(bg, box, colour, -1)
    texture = cv2.GaussianBlur(rng.normal(0, 12, (h, w)).astype(np.float32), (0, 0), 3)
    return bg + texture


def _carrier(text: str, *, dark_mode: bool, sticker: bool, rng: np.random.Generator) -> tuple[F32, float, float]:
    """The phone or sticker in its own plane (OBJ_PX per module, grey levels) and the code's centre on it."""
    code = render_qr(text, module_px=OBJ_PX, dark_mode=dark_mode).astype(np.float32)
    n = code.shape[0]
    if sticker:
        # A printed label on a helmet: the paper is not white, the ink not black.
        pad = int(rng.integers(1, 4)) * OBJ_PX
        paper = float(rng.uniform(200, 240))
        carrier = np.full((n + 2 * pad, n + 2 * pad), paper, np.float32)
        carrier[pad : pad + n, pad : pad + n] = np.where(code > 127, paper, float(rng.uniform(15, 45)))
        return carrier, pad + n / 2, pad + n / 2
    # A phone in portrait: the code in the middle of the screen, a dark bezel around it.
    screen_w = int(n * rng.uniform(1.15, 1.5))
    screen_h = int(screen_w * rng.uniform(1.8, 2.1))
    bezel = int(screen_w * 0.05)
    carrier = np.full((screen_h + 2 * bezel, screen_w + 2 * bezel), float(rng.uniform(10, 30)), np.float32)
    carrier[bezel : bezel + screen_h, bezel : bezel + screen_w] = code[0, 0]
    x = bezel + (screen_w - n) // 2
    y = bezel + int((screen_h - n) * rng.uniform(0.3, 0.6))
    carrier[y : y + n, x : x + n] = code
    return carrier, x + n / 2, y + n / 2


@dataclass(frozen=True, slots=True)
class Pose:
    module_px: float  # camera pixels per module at the code's centre
    roll_deg: float  # in-plane rotation
    tilt_deg: float  # angle between the code's plane and the sensor
    tilt_axis_deg: float
    cx: float  # where the code's centre lands in the frame
    cy: float


def _homography(pose: Pose, obj_w: int, obj_h: int, code_cx: float, code_cy: float) -> npt.NDArray[np.float64]:
    """Map object-plane pixels to supersampled camera pixels for a plane posed in 3-D."""
    scale = pose.module_px / OBJ_PX  # camera px per object px at the centre's depth
    z = FOCAL / scale  # depth of the centre, in object px
    t, a, r = math.radians(pose.tilt_deg), math.radians(pose.tilt_axis_deg), math.radians(pose.roll_deg)
    axis = np.array([math.cos(a), math.sin(a), 0.0])
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    rot_tilt = np.eye(3) + math.sin(t) * k + (1 - math.cos(t)) * (k @ k)
    rot_roll = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    rot = rot_tilt @ rot_roll
    src, dst = [], []
    for ox, oy in ((0, 0), (obj_w, 0), (obj_w, obj_h), (0, obj_h)):
        p = rot @ np.array([ox - code_cx, oy - code_cy, 0.0]) + np.array([0.0, 0.0, z])
        u = (FOCAL * p[0] / p[2] + pose.cx) * SS
        v = (FOCAL * p[1] / p[2] + pose.cy) * SS
        src.append((ox, oy))
        dst.append((u, v))
    return cv2.getPerspectiveTransform(np.float32(src), np.float32(dst)).astype(np.float64)


def _disk(radius: float) -> F32:
    r = math.ceil(radius)
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    k = (np.hypot(xx, yy) <= radius + 0.5).astype(np.float32)
    return k / k.sum()


def _streak(length: float, angle_deg: float) -> F32:
    """A straight, evenly exposed streak: the phone moving at constant speed during the exposure."""
    size = math.ceil(length) | 1
    k = np.zeros((size * 4, size * 4), np.float32)
    dx, dy = math.cos(math.radians(angle_deg)) * length * 2, math.sin(math.radians(angle_deg)) * length * 2
    c = size * 2
    p0 = (round(c - dx), round(c - dy))
    p1 = (round(c + dx), round(c + dy))
    cv2.line(k, p0, p1, 1.0, 1, cv2.LINE_AA)
    k = cv2.resize(k, (size, size), interpolation=cv2.INTER_AREA)
    return k / k.sum()


def _jpeg(img: U8, quality: int) -> U8:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return np.asarray(cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE), dtype=np.uint8)


@dataclass(frozen=True)
class Severity:
    """How hard each category's dominant degradation is (ranges drawn uniformly)."""

    small_module_px: tuple[float, float]
    streak_modules: tuple[float, float]
    defocus_modules: tuple[float, float]
    contrast_span: tuple[float, float]
    noise_sigma: tuple[float, float]
    dark_exposure: tuple[float, float]
    jpeg_quality: tuple[int, int]


SEVERITIES = {
    # Calibrated so that raw zxing-cpp reads about what the issue measured on its kiosk frame set
    # (~97%); chosen by looking at raw zxing-cpp's rate only, never at the cascade's.
    "kiosk": Severity((2.0, 2.8), (0.3, 1.2), (0.25, 0.5), (40, 80), (10, 18), (0.2, 0.35), (10, 25)),
    # The far end: defocus past half a module, streaks of two modules, 30-grey-level contrast.
    "harsh": Severity((1.8, 2.6), (0.6, 2.0), (0.35, 0.7), (30, 55), (12, 24), (0.15, 0.3), (8, 21)),
}


def render(
    category: str, text: str | None, rng: np.random.Generator, severity: Severity = SEVERITIES["kiosk"]
) -> tuple[U8, str]:
    """One frame of ``category`` showing ``text`` (``None``: something that is not a code), and how it was made."""
    if text is None:
        carrier, code_cx, code_cy = _decoy(rng)
        n_mod = 45
    else:
        sticker = not text.startswith("HP1:")
        carrier, code_cx, code_cy = _carrier(text, dark_mode=category == "inverted", sticker=sticker, rng=rng)
        n_mod = render_qr(text, module_px=1).shape[0]
    mask = np.ones_like(carrier)

    # Ordinary conditions, then the category's dominant one.
    pose = Pose(
        module_px=float(rng.uniform(2.8, 5.2)),
        roll_deg=float(rng.normal(0, 8)),
        tilt_deg=float(rng.uniform(0, 15)),
        tilt_axis_deg=float(rng.uniform(0, 360)),
        cx=0.0,
        cy=0.0,
    )
    if category == "small":
        pose = _replace(pose, module_px=float(rng.uniform(*severity.small_module_px)))
    elif category == "rotated":
        pose = _replace(pose, roll_deg=float(rng.uniform(0, 360)))
    elif category == "perspective":
        pose = _replace(pose, tilt_deg=float(rng.uniform(25, 50)))
    elif category == "steep":
        pose = _replace(pose, tilt_deg=float(rng.uniform(50, 65)))
    elif category == "cut-off":
        # Upright (within 15 deg), a corner only leaves the view with the whole side, finder pattern included.
        pose = _replace(pose, roll_deg=float(90 * rng.integers(0, 4) + rng.uniform(15, 75)))
    notes = []
    if category == "quiet-zone":
        pose, note = _against_the_edge(pose, carrier, code_cx, code_cy, n_mod, rng)
        notes.append(note)
    elif category == "cut-off":
        pose, note = _corner_cut_off(pose, carrier, code_cx, code_cy, n_mod, rng)
        notes.append(note)
    else:
        # Keep the whole code in view: its extent grows with the roll (a diagonal is longer) and with the tilt.
        roll = math.radians(pose.roll_deg)
        half = pose.module_px * n_mod / 2 * (abs(math.cos(roll)) + abs(math.sin(roll))) * 1.15
        pose = _replace(
            pose,
            cx=float(rng.uniform(min(half, W / 2), max(W - half, W / 2))),
            cy=float(rng.uniform(min(half, H / 2), max(H - half, H / 2))),
        )
    notes.insert(0, f"{pose.module_px:.1f}px/mod roll {pose.roll_deg:.0f} tilt {pose.tilt_deg:.0f}")

    hom = _homography(pose, carrier.shape[1], carrier.shape[0], code_cx, code_cy)
    size = (W * SS, H * SS)
    layer = cv2.warpPerspective(carrier * mask, hom, size, flags=cv2.INTER_LINEAR)
    alpha = cv2.warpPerspective(mask, hom, size, flags=cv2.INTER_LINEAR)

    if category == "low-contrast":
        lo = float(rng.uniform(70, 160))
        span = float(rng.uniform(*severity.contrast_span))
        notes.append(f"span {span:.0f}")
        layer = np.where(alpha > 0, lo + layer / 255 * span, 0).astype(np.float32) * np.minimum(alpha, 1)
    if category == "glare":
        gx, gy = np.meshgrid(np.arange(size[0], dtype=np.float32), np.arange(size[1], dtype=np.float32))
        code_w = pose.module_px * n_mod * SS
        ox, oy = pose.cx * SS + rng.uniform(-0.4, 0.4) * code_w, pose.cy * SS + rng.uniform(-0.4, 0.4) * code_w
        sx, sy = code_w * rng.uniform(0.12, 0.3), code_w * rng.uniform(0.12, 0.3)
        peak = float(rng.uniform(100, 210))
        blob = np.exp(-(((gx - ox) / sx) ** 2 + ((gy - oy) / sy) ** 2) / 2) * peak
        notes.append(f"glare +{peak:.0f}")
        layer = layer + blob.astype(np.float32) * alpha
    if category == "motion-blurred":
        # Measured in modules: 0.6-2 modules is a phone moving 1.5-5 cm/s during a 1/30 s exposure.
        streak, angle = float(rng.uniform(*severity.streak_modules)), float(rng.uniform(0, 180))
        k = _streak(streak * pose.module_px * SS, angle)
        notes.append(f"streak {streak:.2f} mod at {angle:.0f} deg")
        layer = cv2.filter2D(layer, -1, k)
        alpha = cv2.filter2D(alpha, -1, k)

    frame = _background(rng) * (1 - alpha) + layer
    frame = cv2.resize(frame, (W, H), interpolation=cv2.INTER_AREA)

    # The lens: a fixed-focus webcam is sharp for a phone held far, and defocused the closer it is,
    # so the blur circle grows with the module size. Optics and demosaicing add a little everywhere.
    defocus = pose.module_px * float(
        rng.uniform(*severity.defocus_modules) if category == "blurred" else rng.uniform(0, 0.2)
    )
    if category == "blurred":
        notes.append(f"defocus radius {defocus / pose.module_px:.2f} mod")
    if defocus >= 0.5:
        frame = cv2.filter2D(frame, -1, _disk(defocus))
    frame = cv2.GaussianBlur(frame, (0, 0), float(rng.uniform(0.4, 0.6)))
    # Vignetting and exposure.
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    vignette = 1 - 0.25 * (((xx - W / 2) / (W / 2)) ** 2 + ((yy - H / 2) / (H / 2)) ** 2) / 2
    exposure = float(rng.uniform(*severity.dark_exposure)) if category == "dark" else float(rng.uniform(0.85, 1.05))
    if category == "dark":
        notes.append(f"exposure {exposure:.2f}")
    frame = frame * vignette * exposure
    # Sensor noise: shot noise grows with the signal, read noise is amplified by gain.
    read_sigma = float(rng.uniform(*severity.noise_sigma)) if category == "noisy" else float(rng.uniform(1.5, 4.0))
    if category == "dark":
        read_sigma = float(rng.uniform(3, 6))
    if category == "noisy":
        notes.append(f"noise {read_sigma:.0f}")
    shot = np.sqrt(np.maximum(frame, 0) * 0.3)
    frame = frame + rng.normal(0, 1, frame.shape).astype(np.float32) * np.hypot(read_sigma, shot).astype(np.float32)
    img = np.clip(np.round(frame), 0, 255).astype(np.uint8)
    if category == "jpeg":
        quality = int(rng.integers(severity.jpeg_quality[0], severity.jpeg_quality[1] + 1))
        img = _jpeg(img, quality)
        notes.append(f"jpeg q{quality}")
    return img, ", ".join(notes)


def _modules_in_frame(pose: Pose, carrier: F32, code_cx: float, code_cy: float, n_mod: int) -> npt.NDArray[np.float64]:
    """Where the centre of every module of the symbol (quiet zone excluded) lands, with the code's centre at (0, 0).

    Rows and columns as in the symbol's matrix: finder patterns at [0, 0], [0, -1] and [-1, 0].
    """
    hom = _homography(replace(pose, cx=0.0, cy=0.0), carrier.shape[1], carrier.shape[0], code_cx, code_cy)
    n = n_mod - 8
    first = code_cx - (n_mod / 2 - 4) * OBJ_PX  # the symbol's first module's edge (square: x and y alike)
    centres = first + (np.arange(n) + 0.5) * OBJ_PX
    ox, oy = np.meshgrid(centres, centres - code_cx + code_cy)
    pts = np.stack([ox, oy, np.ones_like(ox)], axis=-1) @ hom.T
    return np.asarray(pts[..., :2] / pts[..., 2:] / SS, dtype=np.float64)  # (n, n, 2): x, y in frame px


def _inside(xy: npt.NDArray[np.float64], dx: float, dy: float) -> npt.NDArray[np.bool_]:
    x, y = xy[..., 0] + dx, xy[..., 1] + dy
    return (x >= 0) & (x < W) & (y >= 0) & (y < H)


def _against_the_edge(
    pose: Pose, carrier: F32, code_cx: float, code_cy: float, n_mod: int, rng: np.random.Generator
) -> tuple[Pose, str]:
    """The whole code in view, pushed against one side of the frame or into a corner: 0-1 module of quiet zone left."""
    xy = _modules_in_frame(pose, carrier, code_cx, code_cy, n_mod)
    half = pose.module_px / 2  # from a module's centre to the symbol's outer edge
    lo_x, hi_x = float(xy[..., 0].min()) - half, float(xy[..., 0].max()) + half
    lo_y, hi_y = float(xy[..., 1].min()) - half, float(xy[..., 1].max()) + half
    q = 4 * pose.module_px  # keep the quiet zone in view on the sides the code is not pushed against
    cx = float(rng.uniform(min(q - lo_x, W / 2), max(W - q - hi_x, W / 2)))
    cy = float(rng.uniform(min(q - lo_y, H / 2), max(H - q - hi_y, H / 2)))
    sides = [["left", "right", "top", "bottom"][int(rng.integers(0, 4))]]
    if rng.random() < 0.5:  # a corner of the frame: one vertical side and one horizontal
        sides = [("left", "right")[int(rng.integers(0, 2))], ("top", "bottom")[int(rng.integers(0, 2))]]
    gaps = []
    for side in sides:
        gap = float(rng.uniform(0, 1))
        gaps.append(f"{side} {gap:.2f}")
        g = gap * pose.module_px
        if side == "left":
            cx = g - lo_x
        elif side == "right":
            cx = W - g - hi_x
        elif side == "top":
            cy = g - lo_y
        else:
            cy = H - g - hi_y
    return replace(pose, cx=cx, cy=cy), "quiet zone left: " + ", ".join(gaps) + " mod"


def _corner_cut_off(
    pose: Pose, carrier: F32, code_cx: float, code_cy: float, n_mod: int, rng: np.random.Generator
) -> tuple[Pose, str]:
    """The code's corner without a finder pattern out of view, 1-6 % of the symbol's modules lost, finders in view.

    The share lost is drawn first. That corner is put on a corner of the frame or a point of its border, and the
    code is pushed out along its own diagonal until that share is out of view; placements that would cut a finder
    pattern (7x7 modules) are drawn again.
    """
    xy = _modules_in_frame(pose, carrier, code_cx, code_cy, n_mod)
    n = xy.shape[0]
    finders = np.concatenate([xy[:7, :7].reshape(-1, 2), xy[:7, -7:].reshape(-1, 2), xy[-7:, :7].reshape(-1, 2)])
    corner = xy[-1, -1]  # the module at the corner without a finder pattern
    diagonal = (corner - xy[0, 0]) / float(np.hypot(*(corner - xy[0, 0])))
    span = n * pose.module_px
    want = float(rng.uniform(0.01, 0.06))
    for _ in range(200):
        if rng.random() < 0.5:
            ex, ey = (0.0, float(W))[int(rng.integers(0, 2))], (0.0, float(H))[int(rng.integers(0, 2))]
        else:
            t = float(rng.uniform(0, 2 * (W + H)))
            ex, ey = (
                (t, 0.0)
                if t < W
                else (float(W), t - W)
                if t < W + H
                else (t - W - H, float(H))
                if t < 2 * W + H
                else (0.0, t - 2 * W - H)
            )
        base_x, base_y = ex - float(corner[0]), ey - float(corner[1])
        lo, hi = -span, span  # how far past that point the code is pushed along its diagonal
        for _ in range(20):
            mid = (lo + hi) / 2
            lost = 1 - float(_inside(xy, base_x + mid * diagonal[0], base_y + mid * diagonal[1]).mean())
            lo, hi = (lo, mid) if lost > want else (mid, hi)
        cx, cy = base_x + lo * diagonal[0], base_y + lo * diagonal[1]
        lost = 1 - float(_inside(xy, cx, cy).mean())
        if lost > 0.5 * want and _inside(finders, cx, cy).all():
            note = f"cut off: {lost:.1%} of {n}x{n} modules out of view"
            return replace(pose, cx=cx, cy=cy), note
    # Not seen at these sizes: no placement keeps the finder patterns whole. The code is then left whole in view.
    return replace(pose, cx=W / 2, cy=H / 2), "cut off: no placement found, whole code in view"


def _decoy(rng: np.random.Generator) -> tuple[F32, float, float]:
    """A phone showing some other app, or a sticker with a logo and text: things a kiosk sees that hold no code."""
    n = 45 * OBJ_PX
    dark = rng.random() < 0.3
    paper, ink = (30.0, 220.0) if dark else (float(rng.uniform(200, 250)), float(rng.uniform(10, 60)))
    carrier = np.full((int(n * 1.9), int(n * 1.1)), paper, np.float32)
    h, w = carrier.shape
    kind = int(rng.integers(0, 3))
    if kind == 0:  # text lines
        y = int(rng.integers(20, 60))
        while y < h - 30:
            x = 20
            while x < w - 40:
                word = int(rng.integers(15, 70))
                cv2.rectangle(carrier, (x, y), (min(x + word, w - 20), y + 10), ink, -1)
                x += word + 12
            y += int(rng.integers(22, 40))
    elif kind == 1:  # app tiles and buttons
        for _ in range(int(rng.integers(4, 12))):
            x0, y0 = int(rng.integers(0, w - 40)), int(rng.integers(0, h - 40))
            cv2.rectangle(
                carrier,
                (x0, y0),
                (x0 + int(rng.integers(30, 200)), y0 + int(rng.integers(30, 120))),
                float(rng.uniform(0, 255)),
                -1,
            )
    else:  # a logo: rings and a checker band (the closest thing to finder patterns)
        cx, cy = w // 2, h // 3
        for r in range(int(rng.integers(60, 140)), 10, -int(rng.integers(12, 30))):
            cv2.circle(carrier, (cx, cy), r, ink if (r // 10) % 2 else paper, -1)
        sq = int(rng.integers(8, 20))
        for i in range(w // sq):
            carrier[h // 2 + (i % 2) * sq : h // 2 + (i % 2 + 1) * sq, i * sq : (i + 1) * sq] = ink
    bezel = int(w * 0.05)
    carrier = np.pad(carrier, bezel, constant_values=float(rng.uniform(10, 30)))
    return carrier, w / 2 + bezel, h / 2 + bezel


def frame_set(seed: int, per_category: int, no_code: int, severity: str = "kiosk") -> list[Sample]:
    """The benchmark's frames: ``per_category`` of each category (half passes, half stickers) and ``no_code`` more."""
    rng = np.random.default_rng(seed)
    key = Ed25519PrivateKey.from_private_bytes(rng.bytes(32))
    now = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
    out: list[Sample] = []
    for category in CATEGORIES:
        for i in range(per_category):
            # Dark mode is a phone setting: stickers are never inverted.
            as_pass = category == "inverted" or i % 2 == 0
            text = make_pass(rng, key, now) if as_pass else make_sticker(rng)
            frame, detail = render(category, text, rng, SEVERITIES[severity])
            out.append(Sample(category, text, frame, detail))
    for _ in range(no_code):
        carrier = rng.random() < 0.75
        frame, detail = render("none", None, rng, SEVERITIES[severity]) if carrier else (_empty(rng), "empty scene")
        out.append(Sample("none", None, frame, detail))
    return out


def _empty(rng: np.random.Generator) -> U8:
    frame = cv2.resize(_background(rng), (W, H), interpolation=cv2.INTER_AREA)
    frame = frame + rng.normal(0, 3, frame.shape)
    return np.clip(np.round(frame), 0, 255).astype(np.uint8)


def _replace(pose: Pose, **kw: float) -> Pose:
    return replace(pose, **kw)
