"""Codes of other kinds in front of the kiosk camera (docs/reliability.md, scenario 11).

Real camera-sized frames go through the kiosk's real decoder and its decision
code, as the locker service does with each frame: URLs, Wi-Fi credentials,
helmet stickers of another town, binary data, 1D barcodes and two codes in one
frame open nothing, and each code that is read is ignored with a logged reason.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import segno
import zxingcpp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from helmet_edge.decoder_cascade import CascadeDecoder
from helmet_edge.locker import Locker, Rules
from helmet_edge.ports import Frame
from helmet_edge.slot_machine import SlotMachine, SlotRecord, Timing
from helmet_protocol.events import SlotState
from helmet_protocol.passes import issue_pass

KEY = Ed25519PrivateKey.generate()
NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
HOST = "helmets.example.org"
LOCKER_LOG = "helmet_edge.locker"


def qr(data: str | bytes, module_px: int = 4) -> Frame:
    code = segno.make(data, error="m", boost_error=False, micro=False)
    matrix = np.array([[0 if bit else 255 for bit in row] for row in code.matrix], dtype=np.uint8)
    return np.kron(np.pad(matrix, 4, constant_values=255), np.ones((module_px, module_px), dtype=np.uint8))


def barcode(text: str, fmt: zxingcpp.BarcodeFormat) -> Frame:
    scale = 3 if len(text) < 16 else 1  # a long Code 128 still fits the frame
    return np.asarray(zxingcpp.create_barcode(text, fmt).to_image(scale=scale), dtype=np.uint8)


def frame(*images: Frame) -> Frame:
    """A 640x480 grey, noisy camera frame with the images held up side by side."""
    rng = np.random.default_rng(7)
    out = np.clip(np.linspace(90, 140, 640)[None, :] + rng.normal(0, 6, (480, 640)), 0, 255).astype(np.uint8)
    x = 20
    for img in images:
        h, w = img.shape
        y = (480 - h) // 2
        out[y : y + h, x : x + w] = img
        x += w + 30
    return out


def a_pass() -> str:
    return issue_pass(signing_key=KEY, kid="k1", holder_id="R-1", quantity=1, now=NOW, ttl=timedelta(minutes=5))


def locker() -> Locker:
    machines = {
        n: SlotMachine(
            SlotRecord(slot=n, state=state, helmet_id="H-0001" if state == SlotState.OCCUPIED else None),
            Timing(),
            door_closed=True,
            present=state == SlotState.OCCUPIED,
        )
        for n, state in ((1, SlotState.OCCUPIED), (2, SlotState.EMPTY))
    }
    return Locker(machines, Rules(keys={"k1": KEY.public_key()}, helmet_host=HOST))


@pytest.fixture(scope="module")
def decoder() -> CascadeDecoder:
    return CascadeDecoder()


@pytest.mark.parametrize(
    ("shown", "reason"),
    [
        ("https://www.example.org/menu", "URL that is not a helmet sticker"),
        ("https://evil.example.com/h/H-0009", "URL that is not a helmet sticker"),
        ("WIFI:S:TownHall;T:WPA;P:hunter2;;", "Wi-Fi credentials"),
        (b"\xff\xfe\x00\x01\x02binary\x80", "binary data"),
        ("BEGIN:VCARD\nFN:Ana\nEND:VCARD", "unrecognised text"),
        ("HP2:ABCDEFGH", "unrecognised text"),
    ],
    ids=["url", "sticker-other-town", "wifi", "binary", "vcard", "not-our-pass"],
)
def test_a_foreign_qr_code_changes_nothing_and_its_reason_is_logged(
    decoder: CascadeDecoder, caplog: pytest.LogCaptureFixture, shown: str | bytes, reason: str
) -> None:
    kiosk = locker()
    codes = decoder.decode(frame(qr(shown)))
    assert codes == [shown.encode() if isinstance(shown, str) else shown]  # the decoder really read it
    caplog.set_level("INFO", logger=LOCKER_LOG)
    told = kiosk.scan_frame(codes, wall=NOW, mono=0.0, honoured=lambda _: False)
    # The person is told it is not ours (the face says what to show instead); nothing recorded, nothing opens.
    assert told is not None and not told.durable and told.locks == {} and told.reason == "foreign"
    for mono in (0.1, 0.2):  # held in front for several frames: one log line, told once
        assert kiosk.scan_frame(codes, wall=NOW, mono=mono, honoured=lambda _: False) is None
    ignored = [r.getMessage() for r in caplog.records if r.name == LOCKER_LOG]
    assert len(ignored) == 1 and ignored[0].startswith("ignored a QR code: ") and reason in ignored[0]
    assert [m.state for m in kiosk.machines.values()] == [SlotState.OCCUPIED, SlotState.EMPTY]


@pytest.mark.parametrize(
    ("text", "fmt"),
    [
        ("4006381333931", zxingcpp.BarcodeFormat.EAN13),
        ("HELMET-0001", zxingcpp.BarcodeFormat.Code128),
        (f"https://{HOST}/h/H-1", zxingcpp.BarcodeFormat.Code128),
    ],
    ids=["ean13", "code128", "code128-sticker-url"],
)
def test_a_1d_barcode_is_never_read_as_a_code(decoder: CascadeDecoder, text: str, fmt: zxingcpp.BarcodeFormat) -> None:
    """The kiosk reads QR codes only: a barcode, even one spelling a sticker URL, is not seen at all."""
    image = barcode(text, fmt)
    assert [r.text for r in zxingcpp.read_barcodes(frame(image))] == [text]  # a readable barcode
    assert decoder.decode(frame(image)) == []


def test_two_codes_in_one_frame_are_ignored_even_when_one_is_a_valid_pass(
    decoder: CascadeDecoder, caplog: pytest.LogCaptureFixture
) -> None:
    kiosk = locker()
    text = a_pass()
    caplog.set_level("INFO", logger=LOCKER_LOG)
    for pair in ((text, f"https://{HOST}/h/H-0002"), (text, "https://www.example.org/menu")):
        codes = decoder.decode(frame(qr(pair[0], 3), qr(pair[1], 3)))
        assert sorted(codes) == sorted(p.encode() for p in pair)
        assert kiosk.scan_frame(codes, wall=NOW, mono=0.0, honoured=lambda _: False) is None
    assert [r.getMessage() for r in caplog.records if r.name == LOCKER_LOG] == [
        "ignored a frame with 2 codes in it: one code at a time"
    ] * 2
    assert [m.state for m in kiosk.machines.values()] == [SlotState.OCCUPIED, SlotState.EMPTY]
    # The same pass on its own opens the slot: it was the ambiguity that was refused, not the pass.
    out = kiosk.scan_frame(decoder.decode(frame(qr(text, 3))), wall=NOW, mono=10.0, honoured=lambda _: False)
    assert out is not None and out.opened == [1]
