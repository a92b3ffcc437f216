"""Helmet label sheets: A4 PDF, each label the QR code of the helmet's sticker URL and its readable id.

Size: every QR module is 1.5 mm. A phone camera at arm's length (about 60 cm,
a 1080 px-wide frame over ~80 cm) sees ~1.3 px per mm, and the kiosk's
640 px camera at 30 cm ~1.8 px per mm; decoders want at least 2 px per module,
so 1.5 mm gives 2-2.7 px with margin for blur. A typical sticker URL
(``https://helmets.example.org/h/H-00042``, 38 bytes) is a version 3 code at
level M: 29 modules, 43.5 mm, which also meets the 10:1 rule of thumb for
scanning distance (a 4.35 cm code reads from ~45 cm). The quiet zone is the
standard 4 modules. Labels are 70 x 74.25 mm, 3 x 4 on a sheet, so common
12-up A4 label stock or plain paper and a cutter both work.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import segno
from fpdf import FPDF

from helmet_cloud.errors import InvalidError
from helmet_protocol.stickers import helmet_url

MODULE_MM = 1.5
QUIET_MODULES = 4
PAGE_W, PAGE_H = 210.0, 297.0  # A4
COLUMNS, ROWS = 3, 4
LABEL_W, LABEL_H = PAGE_W / COLUMNS, PAGE_H / ROWS
TEXT_MM = 7.0  # cap height of the id under the code, readable from a metre
ID_PT = 20
MAX_LABELS = 1000


class LabelError(InvalidError):
    """A label that cannot be printed at the chosen size."""


def label_qr(host: str, helmet_id: str) -> segno.QRCode:
    """The QR code on a helmet's label (error correction M, like every QR code the kiosk reads)."""
    return segno.make(helmet_url(host, helmet_id), error="m", micro=False, boost_error=False)


def dark_runs(qr: segno.QRCode) -> Iterator[tuple[int, int, int]]:
    """``(row, first column, length)`` of each horizontal run of dark modules, without the quiet zone."""
    for y, row in enumerate(qr.matrix_iter(scale=1, border=0)):
        x, line = 0, list(row)
        while x < len(line):
            if line[x]:
                start = x
                while x < len(line) and line[x]:
                    x += 1
                yield y, start, x - start
            else:
                x += 1


def label_sheet(host: str, helmet_ids: Sequence[str]) -> bytes:
    """An A4 PDF of labels, 12 per page, in the order given."""
    if not 1 <= len(helmet_ids) <= MAX_LABELS:
        raise LabelError("1 to {most} labels per sheet run", most=MAX_LABELS)
    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_auto_page_break(auto=False)
    pdf.set_margins(0, 0, 0)
    pdf.set_creator("helmet-station")
    pdf.set_title("Helmet labels")
    pdf.set_font("Helvetica", style="B", size=ID_PT)
    pdf.set_fill_color(0, 0, 0)
    per_page = COLUMNS * ROWS
    for n, helmet_id in enumerate(helmet_ids):
        if n % per_page == 0:
            pdf.add_page()
        col, row = n % COLUMNS, (n % per_page) // COLUMNS
        _label(pdf, host, helmet_id, col * LABEL_W, row * LABEL_H)
    return bytes(pdf.output())


def _label(pdf: FPDF, host: str, helmet_id: str, x0: float, y0: float) -> None:
    qr = label_qr(host, helmet_id)
    modules = qr.symbol_size(scale=1, border=0)[0]
    side = (modules + 2 * QUIET_MODULES) * MODULE_MM
    if side > LABEL_W or side + TEXT_MM + 2 > LABEL_H:
        raise LabelError(
            "the code for {url} is version {version} ({modules} modules); "
            "at {module} mm a module it does not fit a {width} mm label: use a shorter public host",
            url=helmet_url(host, helmet_id),
            version=qr.version,
            modules=modules,
            module=MODULE_MM,
            width=round(LABEL_W),
        )
    left = x0 + (LABEL_W - modules * MODULE_MM) / 2
    top = y0 + (LABEL_H - side - TEXT_MM) / 2 + QUIET_MODULES * MODULE_MM
    for y, x, length in dark_runs(qr):
        # A hair of overlap so that no white seam shows between adjacent runs in some viewers.
        pdf.rect(left + x * MODULE_MM, top + y * MODULE_MM, length * MODULE_MM, MODULE_MM + 0.01, style="F")
    pdf.set_xy(x0, top + (modules + QUIET_MODULES) * MODULE_MM)
    pdf.cell(LABEL_W, TEXT_MM, helmet_id, align="C")
    # A light cut mark at the label's corner keeps hand-cut labels square.
    pdf.set_draw_color(200, 200, 200)
    pdf.set_line_width(0.1)
    pdf.line(x0, y0, x0 + 3, y0)
    pdf.line(x0, y0, x0, y0 + 3)
