"""Decoder on zxing-cpp, restricted to QR codes."""

from __future__ import annotations

import zxingcpp

from helmet_edge.ports import Frame

_QR_ONLY = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)


class ZxingDecoder:
    def decode(self, frame: Frame) -> list[bytes]:
        results = zxingcpp.read_barcodes(frame, formats=_QR_ONLY, try_downscale=True)
        return [bytes(r.bytes) for r in results if r.valid]
