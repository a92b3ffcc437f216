"""Decoder on zxing-cpp, restricted to QR codes."""

from __future__ import annotations

import zxingcpp

from helmet_edge.ports import Frame


class ZxingDecoder:
    def decode(self, frame: Frame) -> list[bytes]:
        results = zxingcpp.read_barcodes(frame, formats=zxingcpp.BarcodeFormat.QRCode, try_downscale=True)
        return [bytes(r.bytes) for r in results if r.valid]
