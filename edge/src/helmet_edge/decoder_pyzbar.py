"""Decoder on pyzbar (the zbar C library), restricted to QR codes.

zbar is a system library (``apt-get install libzbar0``); without it this
adapter reports itself unavailable instead of failing at import, so the
cascade can run on zxing-cpp and OpenCV alone.

zbar converts a QR's content to UTF-8 text by guessing its encoding, so a
non-text payload may not come back byte for byte. Restricting it to QR
symbols halves its time and stops 1-D symbologies matching noise.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from helmet_edge.ports import Frame

log = logging.getLogger(__name__)

_decode: Callable[..., list[Any]] | None = None
_qr: list[Any] = []
_why_unavailable = ""
_warned = False

try:
    from pyzbar import pyzbar as _pyzbar

    _decode = _pyzbar.decode
    _qr = [_pyzbar.ZBarSymbol.QRCODE]
except (ImportError, OSError) as exc:  # pyzbar installed but libzbar0 missing raises ImportError
    _why_unavailable = str(exc) or type(exc).__name__


def available() -> bool:
    """Whether zbar could be loaded on this machine."""
    return _decode is not None


def why_unavailable() -> str:
    return _why_unavailable


def warn_if_unavailable() -> bool:
    """Log, once per process, that zbar is missing (the locker service does, at start); ``True`` when it is there."""
    global _warned
    if _decode is None and not _warned:
        _warned = True
        log.warning(
            "pyzbar unavailable (%s): the kiosk decodes with zxing-cpp alone and reads fewer damaged codes; "
            "apt-get install libzbar0",
            _why_unavailable,
        )
    return _decode is not None


class PyzbarDecoder:
    def __init__(self) -> None:
        if _decode is None:
            raise ImportError(f"pyzbar is unavailable: {_why_unavailable}")
        self._decode = _decode

    def decode(self, frame: Frame) -> list[bytes]:
        return [bytes(r.data) for r in self._decode(frame, symbols=_qr)]
