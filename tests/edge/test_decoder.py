"""The kiosk's QR decoders on real rendered frames, and the process that keeps a crashing one from mattering."""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest
import segno
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from helmet_edge import decoder_pyzbar
from helmet_edge.decoder_cascade import CascadeDecoder
from helmet_edge.decoder_process import SupervisedDecoder
from helmet_edge.decoder_pyzbar import PyzbarDecoder
from helmet_edge.decoder_zxing import ZxingDecoder
from helmet_edge.ports import Decoder, Frame
from helmet_protocol.passes import issue_pass
from helmet_sim.camera import VirtualCamera, render_qr

PASS = issue_pass(
    signing_key=Ed25519PrivateKey.generate(),
    kid="k1",
    holder_id="R-0042",
    quantity=1,
    now=datetime(2026, 11, 28, 9, 0, tzinfo=UTC),
    ttl=timedelta(minutes=30),
)

# On a laptop without libzbar0 the pyzbar tests skip; CI must install it (see .ci/run).
needs_zbar = pytest.mark.skipif(
    not decoder_pyzbar.available() and not os.environ.get("CI"),
    reason=f"zbar is not installed (apt-get install libzbar0): {decoder_pyzbar.why_unavailable()}",
)


def kiosk_frame(text: str | None, *, dark_mode: bool = False) -> Frame:
    """What the kiosk camera sees: a noisy scene, with a phone showing ``text`` when given."""
    camera = VirtualCamera(seed=3)
    if text is not None:
        camera.show(text, dark_mode=dark_mode)
    frame = camera.read()
    assert frame is not None
    return frame


def binary_frame(payload: bytes) -> Frame:
    """A QR code holding arbitrary bytes, rendered with segno (byte mode, level M)."""
    qr = segno.make(payload, error="m", micro=False)
    modules = np.pad(np.array(qr.matrix, dtype=np.uint8), 4)
    code = np.kron(np.where(modules == 1, 0, 255).astype(np.uint8), np.ones((4, 4), np.uint8))
    frame = np.full((480, 640), 180, np.uint8)
    frame[40 : 40 + code.shape[0], 40 : 40 + code.shape[1]] = code
    return frame


def posed_frame(
    text: str,
    *,
    module_px: float,
    roll: float,
    tilt: float = 0.0,
    axis: float = 0.0,
    at: tuple[float, float] = (320.0, 240.0),
) -> Frame:
    """A phone showing ``text`` posed in 3-D before a 640x480 pinhole camera (as ``bench/frames.py`` does).

    ``module_px``: camera pixels per module at the code's centre; ``roll``: turned in the image plane;
    ``tilt``: degrees away from the camera about an axis at ``axis`` degrees; ``at``: where the centre lands.
    """
    obj = 8  # object-plane pixels per module
    code = render_qr(text, module_px=obj).astype(np.float32)
    phone = np.pad(np.pad(code, 3 * obj, constant_values=255), 2 * obj, constant_values=25)
    h, w = phone.shape
    focal, z = 560.0, 560.0 / (module_px / obj)
    t, a, r = math.radians(tilt), math.radians(axis), math.radians(roll)
    k = np.array([[0, 0, math.sin(a)], [0, 0, -math.cos(a)], [-math.sin(a), math.cos(a), 0]])
    turn = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    rot = (np.eye(3) + math.sin(t) * k + (1 - math.cos(t)) * (k @ k)) @ turn
    src, dst = [], []
    for ox, oy in ((0, 0), (w, 0), (w, h), (0, h)):
        p = rot @ np.array([ox - w / 2, oy - h / 2, 0.0]) + np.array([0.0, 0.0, z])
        src.append((ox, oy))
        dst.append((focal * p[0] / p[2] + at[0], focal * p[1] / p[2] + at[1]))
    hom = cv2.getPerspectiveTransform(np.array(src, np.float32), np.array(dst, np.float32))
    layer = cv2.warpPerspective(phone, hom, (640, 480), flags=cv2.INTER_AREA)
    alpha = cv2.warpPerspective(np.ones_like(phone), hom, (640, 480), flags=cv2.INTER_AREA)
    frame = cv2.GaussianBlur(110 * (1 - alpha) + layer, (0, 0), 0.5)
    frame = frame + np.random.default_rng(0).normal(0, 3, frame.shape)
    return np.clip(np.round(frame), 0, 255).astype(np.uint8)


def unhurried() -> CascadeDecoder:
    """The cascade without pyzbar and with time for every step: these tests are about what reads, not how fast."""
    return CascadeDecoder(use_pyzbar=False, quick_ms=10_000, budget_ms=10_000)


def symbol_modules(text: str) -> int:
    return render_qr(text, module_px=1, border=0).shape[0]


DECODERS: dict[str, Callable[[], Decoder]] = {
    "zxing": ZxingDecoder,
    "pyzbar": PyzbarDecoder,
    "cascade": CascadeDecoder,
}


@pytest.fixture(params=list(DECODERS))
def decoder(request: pytest.FixtureRequest) -> Decoder:
    if request.param == "pyzbar" and not decoder_pyzbar.available() and not os.environ.get("CI"):
        pytest.skip("zbar is not installed (apt-get install libzbar0)")
    return DECODERS[request.param]()


def test_each_decoder_reads_a_pass_on_a_phone(decoder: Decoder) -> None:
    assert decoder.decode(kiosk_frame(PASS)) == [PASS.encode()]


def test_each_decoder_finds_nothing_in_a_frame_without_a_code(decoder: Decoder) -> None:
    assert decoder.decode(kiosk_frame(None)) == []


@needs_zbar
def test_the_cascade_reads_a_dark_mode_screen_that_pyzbar_cannot() -> None:
    frame = kiosk_frame(PASS, dark_mode=True)
    assert PyzbarDecoder().decode(frame) == []
    assert CascadeDecoder().decode(frame) == [PASS.encode()]


def test_the_cascade_reads_a_colour_frame_as_the_opencv_camera_delivers_it() -> None:
    frame = cv2.cvtColor(kiosk_frame(PASS), cv2.COLOR_GRAY2BGR)
    assert CascadeDecoder().decode(np.asarray(frame, dtype=np.uint8)) == [PASS.encode()]


@pytest.mark.parametrize("lost", [0.02, 0.06])
def test_a_code_with_a_corner_cut_off_by_the_frame_edge_reads(lost: float) -> None:
    """Turned 45 degrees, the corner without a finder pattern points down, past the frame's bottom edge.

    zxing-cpp locates the symbol but will not sample a grid that leaves the image; in a white border the
    modules out of view are just wrong ones, which level M's error correction mends. Without pyzbar, so it
    is zxing-cpp reading (pyzbar reads some such frames, at ten times the cost, when it is installed).
    """
    mp = 4.0
    half = symbol_modules(PASS) / 2 * mp
    depth = math.sqrt(lost) * 2 * half  # how far that corner lies past the edge: ``lost`` of the modules
    frame = posed_frame(PASS, module_px=mp, roll=45, at=(300, 480 + depth - math.sqrt(2) * half))
    assert ZxingDecoder().decode(frame) == []
    assert unhurried().decode(frame) == [PASS.encode()]


@pytest.mark.parametrize("where", ["left", "corner"])
def test_a_code_touching_the_frame_edge_with_no_quiet_zone_reads(where: str) -> None:
    """The phone pushed against the side, or into a corner, of the view: no quiet zone left there.

    zxing-cpp itself reads these (this guards that nothing the cascade does before or around it breaks that).
    """
    half = symbol_modules(PASS) / 2 * 3.0
    at = (half, 240.0) if where == "left" else (640 - half, 480 - half)
    frame = posed_frame(PASS, module_px=3.0, roll=0, at=at)
    assert unhurried().decode(frame) == [PASS.encode()]


@pytest.mark.parametrize(("tilt", "axis"), [(60, 30), (60, 45)])
def test_a_steeply_tilted_code_reads(tilt: float, axis: float) -> None:
    """Tilted past 45 degrees about an axis oblique to the code's rows: raw zxing-cpp does not find it."""
    frame = posed_frame(PASS, module_px=3.0, roll=5, tilt=tilt, axis=axis)
    assert ZxingDecoder().decode(frame) == []
    assert unhurried().decode(frame) == [PASS.encode()]


def test_binary_content_comes_back_byte_for_byte() -> None:
    payload = bytes([0xFF, 0xFE, 0x00, 0x80, 0xC3, 0x28]) + bytes(range(200, 256))
    with pytest.raises(UnicodeDecodeError):
        payload.decode("utf-8")
    assert CascadeDecoder().decode(binary_frame(payload)) == [payload]


def test_the_cascade_works_without_zbar_and_the_service_says_so_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The cascade itself stays quiet (``helmet-edge scan`` warned on every call); the locker service warns once."""
    monkeypatch.setattr(decoder_pyzbar, "_decode", None)
    monkeypatch.setattr(decoder_pyzbar, "_why_unavailable", "libzbar.so.0: cannot open shared object file")
    monkeypatch.setattr(decoder_pyzbar, "_warned", False)
    with caplog.at_level(logging.WARNING, logger="helmet_edge.decoder_pyzbar"):
        first, second = CascadeDecoder(), CascadeDecoder()
        assert caplog.records == []
        assert decoder_pyzbar.warn_if_unavailable() is False
        assert decoder_pyzbar.warn_if_unavailable() is False
    assert [r.getMessage() for r in caplog.records] == [
        "pyzbar unavailable (libzbar.so.0: cannot open shared object file): the kiosk decodes with zxing-cpp "
        "alone and reads fewer damaged codes; apt-get install libzbar0"
    ]
    assert first.decode(kiosk_frame(PASS)) == [PASS.encode()]
    assert second.decode(kiosk_frame(None)) == []


# -- the scan command -------------------------------------------------------------


def test_scan_prints_one_json_line_per_file(tmp_path: Path) -> None:
    paths = {name: tmp_path / f"{name}.png" for name in ("phone", "dark", "empty")}
    cv2.imwrite(str(paths["phone"]), kiosk_frame(PASS))
    cv2.imwrite(str(paths["dark"]), kiosk_frame(PASS, dark_mode=True))
    cv2.imwrite(str(paths["empty"]), kiosk_frame(None))
    exe = Path(sys.executable).with_name("helmet-edge")
    done = subprocess.run(
        [str(exe), "scan", *map(str, paths.values())], capture_output=True, text=True, timeout=120, check=True
    )
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line["file"] for line in lines] == [str(p) for p in paths.values()]
    assert [line["texts"] for line in lines] == [[PASS], [PASS], []]
    assert all(isinstance(line["ms"], float | int) and line["ms"] >= 0 for line in lines)


def test_scan_reports_a_file_it_cannot_read(tmp_path: Path) -> None:
    bad = tmp_path / "not-an-image.png"
    bad.write_text("hello")
    exe = Path(sys.executable).with_name("helmet-edge")
    done = subprocess.run([str(exe), "scan", str(bad)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert json.loads(done.stdout) == {"file": str(bad), "error": "not an image OpenCV can read"}


# -- supervision --------------------------------------------------------------------


class AbortsOnBlack:
    """A decoder whose C library aborts the process on a certain frame (here: an all-black one)."""

    def __init__(self) -> None:
        self.inner = ZxingDecoder()

    def decode(self, frame: Frame) -> list[bytes]:
        if not frame.any():
            os.abort()
        return self.inner.decode(frame)


class HangsOnBlack:
    def __init__(self) -> None:
        self.inner = ZxingDecoder()

    def decode(self, frame: Frame) -> list[bytes]:
        if not frame.any():
            time.sleep(600)
        return self.inner.decode(frame)


@pytest.fixture
def supervised(request: pytest.FixtureRequest) -> Iterator[SupervisedDecoder]:
    factory = getattr(request, "param", CascadeDecoder)
    decoder = SupervisedDecoder(factory, deadline_s=5.0 if factory is not HangsOnBlack else 0.5)
    yield decoder
    decoder.close()


def decode_soon(decoder: Decoder, frame: Frame, attempts: int = 50) -> list[bytes]:
    """Decode until something comes back: a replaced child may take a few frames to be ready."""
    for _ in range(attempts):
        found = decoder.decode(frame)
        if found:
            return found
        time.sleep(0.1)
    return []


def test_a_killed_decoder_process_is_replaced(supervised: SupervisedDecoder, caplog: pytest.LogCaptureFixture) -> None:
    frame = kiosk_frame(PASS)
    assert supervised.decode(frame) == [PASS.encode()]
    first = supervised.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    with caplog.at_level(logging.ERROR, logger="helmet_edge.decoder_process"):
        assert supervised.decode(frame) == []  # the frame that found the child dead
    assert "exit code -9" in caplog.text
    assert decode_soon(supervised, frame) == [PASS.encode()]
    assert supervised.pid not in (None, first)
    assert supervised.restarts == 1


@pytest.mark.parametrize("supervised", [AbortsOnBlack], indirect=True)
def test_a_decoder_that_aborts_costs_one_frame(supervised: SupervisedDecoder) -> None:
    frame = kiosk_frame(PASS)
    assert supervised.decode(frame) == [PASS.encode()]
    assert supervised.decode(np.zeros((480, 640), np.uint8)) == []
    assert decode_soon(supervised, frame) == [PASS.encode()]
    assert supervised.restarts == 1


@pytest.mark.parametrize("supervised", [HangsOnBlack], indirect=True)
def test_a_hung_decoder_is_killed_and_replaced(supervised: SupervisedDecoder) -> None:
    frame = kiosk_frame(PASS)
    first = supervised.pid
    assert supervised.decode(np.zeros((480, 640), np.uint8)) == []
    assert decode_soon(supervised, frame) == [PASS.encode()]
    assert supervised.pid != first
    assert supervised.restarts == 1
