"""Decoder on zxing-cpp, restricted to QR codes (Model 2, the only kind a pass or sticker is)."""

from __future__ import annotations

import zxingcpp

from helmet_edge.ports import Frame

# zxing-cpp 3 made ``QRCode`` a family that includes Micro QR and rMQR; Micro QR's
# tiny symbols match sensor noise (a noisy frame read as "104"). zxing-cpp 2 has no
# Model 2 entry, and its ``QRCode`` is Model 2 only.
QR_ONLY = zxingcpp.BarcodeFormats(getattr(zxingcpp.BarcodeFormat, "QRCodeModel2", zxingcpp.BarcodeFormat.QRCode))


class ZxingDecoder:
    def decode(self, frame: Frame) -> list[bytes]:
        results = zxingcpp.read_barcodes(frame, formats=QR_ONLY, try_downscale=True)
        return [bytes(r.bytes) for r in results if r.valid]
