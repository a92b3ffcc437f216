"""The kiosk's QR decoders on real rendered frames, and the process that keeps a crashing one from mattering."""

from __future__ import annotations

import json
import logging
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
from helmet_sim.camera import VirtualCamera

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
