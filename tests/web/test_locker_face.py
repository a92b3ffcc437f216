"""The locker's face in Debian's Chromium at 800x480, against a simulated locker on a real broker.

One locker and one kiosk page for the module, used in file order like a day at one station: the idle
screen, every refusal in both languages (touched on the toggle), a borrow whose doors the page numbers,
a door held open, a pass shown twice, a return, the broker gone, a technician. At the end the simulated
speaker's record is held against everything the page showed. The cloud's half of MQTT is played by
``support.fake_cloud`` over the real Mosquitto (retained config with the station's names, acks).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from support.fake_cloud import LOCKER, FakeCloud
from support.waiting import eventually

from helmet_edge.config import FaceSettings, TimingSettings
from helmet_edge.face_text import say
from helmet_protocol.keys import public_key_b64
from helmet_protocol.messages import LockerConfig
from helmet_protocol.passes import Role, decode_pass, issue_pass
from helmet_protocol.stickers import helmet_url, poster_url
from helmet_sim.broker import Broker, start_mosquitto
from helmet_sim.rig import SimLocker

HOST = "helmets.example.org"
KEY = Ed25519PrivateKey.generate()
VIEWPORT = {"width": 800, "height": 480}


def a_pass(quantity: int = 1, *, key: Ed25519PrivateKey = KEY, kid: str = "k1", ago: timedelta = timedelta(0),
           role: Role = Role.RESIDENT, holder: str = "R-1") -> str:  # fmt: skip
    return issue_pass(
        signing_key=key, kid=kid, holder_id=holder, quantity=quantity, now=datetime.now(UTC) - ago,
        ttl=timedelta(minutes=10), role=role,
    )  # fmt: skip


REVOKED, USED = a_pass(), a_pass()


@dataclass
class Kiosk:
    broker: Broker
    cloud: FakeCloud
    rig: SimLocker
    page: Any
    workdir: Path

    def log(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = self.page.evaluate("window.faceLog")
        return entries

    def show(self, text: str) -> dict[str, Any]:
        """Hold a code to the camera until the page shows a new moment; the moment as the page logged it."""
        seen = len(self.log())
        self.rig.camera.show(text)
        try:
            self.page.wait_for_function("(n) => window.faceLog.length > n", arg=seen, timeout=15_000)
        finally:
            self.rig.camera.clear()
        return self.log()[-1]

    def wait_key(self, key: str, timeout: float = 15) -> dict[str, Any]:
        moment = "document.getElementById('moment')"
        self.page.wait_for_function(f"(k) => {moment}.dataset.key === k && !{moment}.hidden", arg=key,
                                    timeout=timeout * 1000)  # fmt: skip
        return self.log()[-1]

    def language(self, lang: str) -> None:
        self.page.tap("#lang")  # a finger on the touch screen, not a mouse click
        self.page.wait_for_function("(l) => document.documentElement.lang === l", arg=lang, timeout=5000)

    def text(self, selector: str) -> str:
        value: str = self.page.inner_text(selector)
        return value.strip()


@pytest.fixture(scope="module")
def kiosk(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kiosk]:
    workdir = tmp_path_factory.mktemp("face")
    broker = start_mosquitto(workdir / "broker")
    cloud = FakeCloud(broker.port)
    config = LockerConfig(
        locker_id=LOCKER,
        slot_count=2,  # the cloud counts slots 1 and 2: both hold a helmet, so nothing is free for a return
        pass_keys={"k1": public_key_b64(KEY)},
        revoked_pass_ids=[decode_pass(REVOKED)[0].pass_id],
        used_pass_ids=[decode_pass(USED)[0].pass_id],
        helmet_url_host=HOST,
        station_id="ST-HALL",
        station_names={"en": "Town hall", "zh": "市政厅"},
        poster_url=poster_url(HOST, "ST-HALL"),
        ts=datetime.now(UTC),
    )
    cloud.publish("config", config.to_json(), retain=True)
    data = workdir / "locker"
    data.mkdir()
    (data / "physical.json").write_text(json.dumps({"1": {"helmet": "H-0001"}, "2": {"helmet": "H-0002"}}))
    rig = SimLocker(
        LOCKER,
        data_dir=data,
        mqtt_port=broker.port,
        helmet_host=HOST,
        persist_physical=True,
        reconnect_max_s=1,
        timing=TimingSettings(poll_hz=50, repeat_window_s=2),
        face=FaceSettings(port=0, door_reminder_s=2, door_reminder_repeat_s=30, result_s=4, language_reset_s=60),
    )
    rig.start()
    eventually(lambda: rig.service.face.poster_url is not None and rig.service.link.connected)
    context = browser.new_context(viewport=VIEWPORT, has_touch=True, device_scale_factor=1)
    page = context.new_page()
    page.goto(rig.face_url or "")
    page.wait_for_function("document.body.dataset.version !== undefined")
    kiosk = Kiosk(broker, cloud, rig, page, workdir)
    yield kiosk
    context.close()
    rig.stop()
    cloud.close()
    kiosk.broker.stop()  # the one running now: the offline test starts a new broker on the same port


def test_the_idle_screen_names_the_station_counts_helmets_and_shows_the_poster(kiosk: Kiosk) -> None:
    page = kiosk.page
    page.wait_for_function("document.getElementById('station').textContent === '市政厅'")
    assert page.evaluate("document.documentElement.lang") == "zh-CN"
    assert (kiosk.text("#available"), kiosk.text("#free")) == ("2", "0")
    assert kiosk.text("#how-return") == "还：把头盔上的标签对准摄像头"  # noqa: RUF001
    page.wait_for_function("document.getElementById('poster').naturalWidth > 0")
    assert page.is_hidden("#offline") and page.is_hidden("#moment")
    size = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
    assert size == [800, 480]  # nothing scrolls on the kiosk screen


@pytest.mark.parametrize(
    ("code", "key"),
    [
        (helmet_url(HOST, "H-0777"), "refused.no_free_slot"),
        ("https://www.example.org/menu?today=1", "refused.foreign"),
        (poster_url(HOST, "ST-HALL"), "refused.poster"),
        (a_pass(ago=timedelta(hours=3)), "refused.expired"),
        (a_pass(key=Ed25519PrivateKey.generate(), kid="town2"), "refused.unknown_key"),
        (REVOKED, "refused.revoked"),
        (USED, "refused.used_elsewhere"),
        (a_pass(quantity=9), "refused.over_quantity"),
    ],
    ids=["no-free-slot", "not-our-code", "poster", "expired", "wrong-town", "withdrawn", "used-elsewhere", "too-many"],
)
def test_each_refusal_shows_its_reason_and_what_to_do_in_chinese_and_in_english(
    kiosk: Kiosk, code: str, key: str
) -> None:
    shown = kiosk.show(code)
    assert shown["key"] == key
    assert kiosk.page.get_attribute("#moment", "data-tone") == "refused"
    assert kiosk.text("#title") == say(key, "zh-CN").text
    assert kiosk.text("#next") == say(f"{key}.next", "zh-CN").text
    kiosk.language("en")
    assert kiosk.text("#title") == say(key, "en").text
    assert kiosk.text("#next") == say(f"{key}.next", "en").text
    kiosk.language("zh-CN")
    assert [s.state for s in kiosk.rig.service.locker.machines.values()][:2] == ["occupied", "occupied"]
    assert kiosk.rig.physical.released() == []  # a refusal opens nothing


def test_a_valid_pass_makes_the_page_show_the_doors_that_opened(kiosk: Kiosk) -> None:
    kiosk.page.wait_for_function("document.getElementById('moment').hidden", timeout=10_000)
    kiosk.pass_text = a_pass(quantity=2)  # type: ignore[attr-defined]
    shown = kiosk.show(kiosk.pass_text)  # type: ignore[attr-defined]
    assert shown["key"] == "borrow.take"
    released = sorted(s.number for s in kiosk.rig.physical.released())
    assert released == [1, 2]
    tiles = kiosk.page.eval_on_selector_all("#door-tiles .tile", "els => els.map(e => e.textContent)")
    assert tiles == ["1", "2"]  # the doors the locker released, large
    assert kiosk.text("#title") == "请取走 1 号、2 号柜的头盔"
    assert "秒内拉开柜门" in kiosk.text("#countdowns")
    # how soon after the decision the page showed it: measured here, held to 500 ms by bench/face_latency.py
    kiosk.latency_ms = shown["shown_ms"] - shown["at_ms"]  # type: ignore[attr-defined]
    assert kiosk.latency_ms >= 0  # type: ignore[attr-defined]


def test_a_door_held_open_shows_the_reminder_until_it_is_shut(kiosk: Kiosk) -> None:
    one, two = kiosk.rig.physical.slots[1], kiosk.rig.physical.slots[2]
    for slot in (one, two):
        slot.open_door()
    kiosk.page.wait_for_function(
        "document.getElementById('countdowns').textContent.includes('柜门已开')", timeout=30_000
    )
    two.take_helmet()
    one.take_helmet()
    two.close_door()
    kiosk.page.wait_for_selector("#reminder:not([hidden])", timeout=10_000)
    assert kiosk.text("#reminder") == "请关好 1 号柜门"
    assert kiosk.log()[-1]["key"] == "remind.close"
    kiosk.language("en")
    assert kiosk.text("#reminder") == "Please close door 1"
    kiosk.language("zh-CN")
    one.close_door()
    kiosk.page.wait_for_selector("#reminder", state="hidden", timeout=10_000)
    assert kiosk.wait_key("done.borrowed")["title"] == "借用成功，骑行平安"  # noqa: RUF001
    kiosk.page.wait_for_function("document.getElementById('available').textContent === '0'")


def test_the_same_pass_again_is_already_used_and_a_new_one_finds_no_helmet(kiosk: Kiosk) -> None:
    kiosk.page.wait_for_function("document.getElementById('moment').hidden", timeout=10_000)
    assert kiosk.show(kiosk.pass_text)["key"] == "refused.replayed"  # type: ignore[attr-defined]
    assert kiosk.show(a_pass())["key"] == "refused.no_helmets"
    assert kiosk.text("#next") == "借用码仍然有效，请到附近站点借用"  # noqa: RUF001


def test_a_return_names_the_door_and_thanks(kiosk: Kiosk) -> None:
    kiosk.page.wait_for_function("document.getElementById('moment').hidden", timeout=10_000)
    door = kiosk.rig.insert("H-0001")
    assert kiosk.log()[-2]["key"] == "return.put" or kiosk.log()[-1]["key"] == "return.put"
    assert f"{door} 号柜" in [e for e in kiosk.log() if e["key"] == "return.put"][-1]["title"]
    assert kiosk.wait_key("done.returned")["title"] == "归还成功，谢谢"  # noqa: RUF001


def test_with_the_broker_gone_the_banner_shows_and_a_borrow_still_works(kiosk: Kiosk) -> None:
    port = kiosk.broker.port
    kiosk.broker.stop()
    kiosk.page.wait_for_selector("#offline:not([hidden])", timeout=15_000)
    assert kiosk.text("#offline") == "离线也能借还"
    kiosk.page.wait_for_function("document.getElementById('moment').hidden", timeout=10_000)
    assert kiosk.show(a_pass())["key"] == "borrow.take"
    assert len(kiosk.rig.take(1)) == 1
    kiosk.wait_key("done.borrowed")
    kiosk.broker = start_mosquitto(kiosk.workdir / "broker", port)
    kiosk.page.wait_for_selector("#offline", state="hidden", timeout=20_000)


def test_the_technicians_screen_lists_the_slots_and_runs_the_self_test_by_touch(kiosk: Kiosk) -> None:
    kiosk.page.wait_for_function("document.getElementById('moment').hidden", timeout=10_000)
    assert kiosk.show(a_pass(role=Role.TECHNICIAN, holder="T-9"))["key"] == "mode.maintenance"
    kiosk.page.wait_for_selector("#technician:not([hidden])", timeout=10_000)
    rows = kiosk.page.eval_on_selector_all("#slots tr", "rs => rs.map(r => r.dataset.state)")
    assert len(rows) == 6 and rows[:2] == ["empty", "empty"]
    assert "本次开机未运行" in kiosk.text("#selftest")
    kiosk.page.tap("#run-selftest")
    kiosk.page.wait_for_function("document.getElementById('selftest').dataset.ok === 'true'", timeout=15_000)
    assert "6 slots ok" in kiosk.text("#selftest")


def test_the_speakers_record_matches_what_the_screen_showed(kiosk: Kiosk) -> None:
    shown: dict[tuple[str, int], dict[str, Any]] = {}
    for entry in kiosk.log():  # a moment re-shown in the other language is the same moment: its first showing
        shown.setdefault((entry["key"], entry["at_ms"]), entry)
    played = kiosk.rig.speaker.played()
    assert [p.utterance.key for p in played] == [key for key, _ in shown]
    for p, e in zip(played, shown.values(), strict=True):
        assert p.utterance.lang == e["lang"] and p.utterance.text.startswith(e["title"])
        assert p.missing == (), f"{p.utterance.key}: no prompt file for {p.missing}"
