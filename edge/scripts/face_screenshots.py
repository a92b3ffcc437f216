"""Screenshots of the locker's face for docs/edge.md: idle, borrow, return and a refusal, in zh-CN and en.

    .venv/bin/python edge/scripts/face_screenshots.py   # writes docs/img/face-*.png (800x480)

A simulated locker on a private Mosquitto, its config published as the cloud would (station names, poster),
its screen in Debian's Chromium; codes are held to the virtual camera as a resident would.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.publish as publish
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from playwright.sync_api import Page, sync_playwright

from helmet_edge.config import FaceSettings
from helmet_protocol.keys import public_key_b64
from helmet_protocol.messages import LockerConfig
from helmet_protocol.passes import issue_pass
from helmet_protocol.stickers import helmet_url, poster_url
from helmet_sim.broker import start_mosquitto
from helmet_sim.rig import SimLocker

OUT = Path(__file__).resolve().parents[2] / "docs" / "img"
HOST, LOCKER = "helmets.example.org", "LK-0001"


def main() -> int:
    key = Ed25519PrivateKey.generate()
    with tempfile.TemporaryDirectory() as tmp:
        broker = start_mosquitto(Path(tmp) / "broker")
        cfg = LockerConfig(
            locker_id=LOCKER, slot_count=6, pass_keys={"k1": public_key_b64(key)}, helmet_url_host=HOST,
            station_id="ST-HALL", station_names={"en": "Town hall", "zh": "市政厅"},
            poster_url=poster_url(HOST, "ST-HALL"), ts=datetime.now(UTC),
        )  # fmt: skip
        publish.single(f"helmet/v1/{LOCKER}/config", cfg.to_json(), qos=1, retain=True, port=broker.port)
        data = Path(tmp) / "locker"
        data.mkdir()
        (data / "physical.json").write_text(json.dumps({str(n): {"helmet": f"H-000{n}"} for n in (1, 2, 3, 5)}))
        rig = SimLocker(LOCKER, data_dir=data, mqtt_port=broker.port, helmet_host=HOST, persist_physical=True,
                        face=FaceSettings(port=0, result_s=30))  # fmt: skip
        rig.start()
        time.sleep(2)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
                page = browser.new_page(viewport={"width": 800, "height": 480})
                page.goto(rig.face_url or "")
                page.wait_for_function("document.getElementById('poster').naturalWidth > 0")
                both(page, "idle")
                show(rig, page, "https://www.example.org/menu")
                both(page, "refused")
                pass_text = issue_pass(signing_key=key, kid="k1", holder_id="R-1", quantity=2,
                                       now=datetime.now(UTC), ttl=timedelta(minutes=5))  # fmt: skip
                show(rig, page, pass_text)
                both(page, "borrow")
                rig.take(2)
                time.sleep(1)
                show(rig, page, helmet_url(HOST, "H-0042"))
                both(page, "return")
                browser.close()
        finally:
            rig.stop()
            broker.stop()
    return 0


def show(rig: SimLocker, page: Page, text: str) -> None:
    seen = page.evaluate("window.faceLog.length")
    rig.camera.show(text)
    page.wait_for_function("(n) => window.faceLog.length > n", arg=seen, timeout=15_000)
    rig.camera.clear()
    time.sleep(0.3)


def both(page: Page, name: str) -> None:
    for lang in ("zh-CN", "en"):
        if page.evaluate("document.documentElement.lang") != lang:
            page.click("#lang")
            page.wait_for_function("(l) => document.documentElement.lang === l", arg=lang)
        page.screenshot(path=str(OUT / f"face-{name}-{lang}.png"))
        print(f"docs/img/face-{name}-{lang}.png")


if __name__ == "__main__":
    sys.exit(main())
