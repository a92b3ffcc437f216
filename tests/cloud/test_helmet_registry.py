"""The helmet registry: bulk registration, listing, retirement (with its alert), and printable label sheets."""

from __future__ import annotations

import shutil
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
import pytest
import zxingcpp
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion
from support.cloud_events import event
from support.cloud_users import user_headers

from helmet_cloud.services.labels import MODULE_MM, dark_runs, label_qr, label_sheet
from helmet_cloud.settings import CloudSettings


def test_helmets_are_registered_in_bulk_all_or_nothing(api: TestClient, settings: CloudSettings) -> None:
    tech = user_headers(api, settings, role="technician")
    first = api.post("/api/helmets", headers=tech, json={"count": 3})
    assert first.status_code == 201, first.text
    assert first.json()["ids"] == ["H-00001", "H-00002", "H-00003"]
    assert first.json()["labels_url"] == "/api/labels/helmets.pdf?first=H-00001&last=H-00003"
    # Numbering continues after the highest id with the prefix.
    assert api.post("/api/helmets", headers=tech, json={"count": 2}).json()["ids"] == ["H-00004", "H-00005"]
    clash = api.post("/api/helmets", headers=tech, json={"ids": ["H-X1", "H-00002"]})
    assert clash.status_code == 409 and clash.json()["detail"] == "already registered: H-00002"
    bad = api.post("/api/helmets", headers=tech, json={"ids": ["H-X1", "helmet 7"]})
    assert bad.status_code == 422 and "helmet 7" in bad.json()["detail"]
    both = api.post("/api/helmets", headers=tech, json={"ids": ["H-X1"], "count": 1})
    assert both.status_code == 422
    listed = api.get("/api/helmets?limit=1000", headers=tech).json()
    assert [h["id"] for h in listed] == [f"H-0000{n}" for n in range(1, 6)]  # H-X1 was never added
    assert all(h["registered_by"] == "technician-user" and h["status"] == "unknown" for h in listed)
    assert api.get("/api/helmets", headers=user_headers(api, settings, role="staff", username="s")).status_code == 200
    assert api.get("/api/helmets").status_code == 401


def _publish(port: int, *items: tuple[str, bytes]) -> None:
    c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="LK-0001")
    c.connect("127.0.0.1", port)
    c.loop_start()
    for topic, payload in items:
        c.publish(topic, payload, qos=1).wait_for_publish(5)
    c.disconnect()
    c.loop_stop()


def _until(api: TestClient, headers: dict[str, str], path: str, check: Any, timeout: float = 15) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = api.get(path, headers=headers).json()
        if check(got) or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


def test_a_retired_helmet_in_a_slot_raises_an_alert_until_it_is_taken_out(
    api: TestClient, settings: CloudSettings
) -> None:
    staff = user_headers(api, settings, role="staff")
    assert api.post("/api/stations", headers=staff, json={"id": "ST-1", "name": "Hall", "lat": 47, "lon": 8}).is_success
    assert api.post("/api/lockers", headers=staff, json={"id": "LK-0001", "station_id": "ST-1", "slot_count": 2})
    assert api.post("/api/helmets", headers=staff, json={"ids": ["H-00001"]}).status_code == 201
    now = datetime.now(UTC)
    _publish(settings.mqtt_port, event("LK-0001", 1, now, "helmet.stocked", slot=1, helmet_id="H-00001"))
    assert _until(api, staff, "/api/helmets/H-00001", lambda h: h["status"] == "in_slot")["status"] == "in_slot"
    retired = api.post("/api/helmets/H-00001/retire", headers=staff, json={"reason": "cracked shell"})
    assert retired.status_code == 200
    assert (retired.json()["retired_by"], retired.json()["retired_reason"]) == ("staff-user", "cracked shell")
    alerts = api.get("/api/alerts?kind=helmet_retired&status=open", headers=staff).json()
    assert [(a["subject_id"], a["message"]) for a in alerts] == [
        ("H-00001", "Retired helmet H-00001 is in locker LK-0001, slot 1: take it out of service")
    ]
    again = api.post("/api/helmets/H-00001/retire", headers=staff)
    assert again.status_code == 409 and again.json()["detail"] == "helmet H-00001 is already retired"
    assert api.post("/api/helmets/H-99999/retire", headers=staff).status_code == 404
    assert [h["id"] for h in api.get("/api/helmets?retired=true", headers=staff).json()] == ["H-00001"]
    # A technician takes it out: the alert resolves.
    _publish(settings.mqtt_port, event("LK-0001", 2, now, "helmet.removed", slot=1, helmet_id="H-00001"))
    left = _until(api, staff, "/api/alerts?kind=helmet_retired&status=open", lambda rows: rows == [])
    assert left == []
    # Retired helmets get no new labels.
    pdf = api.get("/api/labels/helmets.pdf?ids=H-00001", headers=staff)
    assert pdf.status_code == 422 and "retired" in pdf.json()["detail"]


def _raster(qr: Any, px: int) -> np.ndarray[Any, np.dtype[np.uint8]]:
    """The label's QR exactly as the PDF draws it (the same dark runs), at ``px`` pixels per module."""
    n = qr.symbol_size(scale=1, border=0)[0]
    img = np.full((n + 8, n + 8), 255, dtype=np.uint8)
    for y, x, length in dark_runs(qr):
        img[y + 4, x + 4 : x + 4 + length] = 0
    return np.kron(img, np.ones((px, px), dtype=np.uint8))


def test_a_label_code_decodes_to_the_helmet_url_at_the_chosen_module_size() -> None:
    qr = label_qr("helmets.example.org", "H-00042")
    # 1.5 mm modules seen by a phone at arm's length: ~1.3 px/mm, so about 2 px per module.
    found = zxingcpp.read_barcodes(_raster(qr, 2))
    assert [r.text for r in found] == ["https://helmets.example.org/h/H-00042"]
    assert qr.version <= 3 and qr.symbol_size(scale=1, border=0)[0] * MODULE_MM == 43.5


def test_the_label_sheet_is_a4_and_every_label_scans(api: TestClient, settings: CloudSettings, tmp_path: Path) -> None:
    tech = user_headers(api, settings, role="technician")
    assert api.post("/api/helmets", headers=tech, json={"count": 14}).status_code == 201
    resp = api.get("/api/labels/helmets.pdf?first=H-00001&last=H-00014", headers=tech)
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/pdf"
    assert resp.content.startswith(b"%PDF-")
    assert b"/MediaBox [0 0 595.28 841.89]" in resp.content  # A4 in points
    assert api.get("/api/labels/helmets.pdf?ids=H-00001,H-77777", headers=tech).status_code == 422
    assert api.get("/api/labels/helmets.pdf?first=H-9&last=H-99", headers=tech).status_code == 404
    pdftoppm = shutil.which("pdftoppm")
    if pdftoppm is None:
        pytest.skip("pdftoppm (poppler-utils) is not installed: the PDF is not rendered")
    pdf = tmp_path / "labels.pdf"
    pdf.write_bytes(resp.content)
    # 100 dpi: a 1.5 mm module is ~5.9 px, about what a phone at 30 cm sees.
    subprocess.run([pdftoppm, "-r", "100", "-gray", "-png", str(pdf), str(tmp_path / "page")], check=True)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) == 2  # 12 a page
    import cv2

    texts: list[str] = []
    for page in pages:
        img = cv2.imread(str(page), cv2.IMREAD_GRAYSCALE)
        assert img.shape == (1170, 827)  # A4 at 100 dpi
        texts += sorted(r.text for r in zxingcpp.read_barcodes(img))
    assert texts == [f"https://helmets.example.org/h/H-{n:05d}" for n in range(1, 15)]


def test_labels_refuse_an_empty_or_oversized_run() -> None:
    with pytest.raises(ValueError, match="labels per sheet"):
        label_sheet("helmets.example.org", [])
    with pytest.raises(ValueError, match="does not fit"):
        label_sheet("a-very-long-public-host-name-for-the-town-helmet-programme.example.org", ["H-000000000001"])
