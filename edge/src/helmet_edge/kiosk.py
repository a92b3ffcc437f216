"""What a scanned QR code is: a borrow pass, a helmet sticker, or someone else's code.

Pure logic; the camera and decoder live elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from helmet_protocol.errors import ProtocolError
from helmet_protocol.passes import PREFIX
from helmet_protocol.stickers import is_poster_url, parse_helmet_url

_PASS_PREFIX = PREFIX.encode()


@dataclass(frozen=True, slots=True)
class PassScan:
    data: bytes


@dataclass(frozen=True, slots=True)
class StickerScan:
    helmet_id: str


@dataclass(frozen=True, slots=True)
class ForeignScan:
    """A code that is not ours: nothing happens, the reason is logged and the person told what to show."""

    reason: str
    poster: bool = False  # a station poster's code (``/s/{station}``): meant for a phone, not the camera


Scan = PassScan | StickerScan | ForeignScan


def classify(data: bytes, *, helmet_host: str | None) -> Scan:
    """Sort one decoded QR payload into what the kiosk should do with it."""
    if data.startswith(_PASS_PREFIX):
        return PassScan(data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return ForeignScan(f"binary data ({len(data)} bytes)")
    if text.startswith("https://") or text.startswith("http://"):
        try:
            return StickerScan(parse_helmet_url(text, host=helmet_host))
        except ProtocolError as exc:
            if is_poster_url(text, host=helmet_host):  # posters and stickers share the cloud's host
                return ForeignScan("a station poster's code (for a phone)", poster=True)
            return ForeignScan(f"URL that is not a helmet sticker: {exc}")
    if text.upper().startswith("WIFI:"):
        return ForeignScan("Wi-Fi credentials")
    return ForeignScan(f"unrecognised text ({len(data)} bytes)")
