"""The locker's face: what the screen shows and the voice says follows the locker's own decisions.

Pure logic on the real Locker and SlotMachines (no GPIO), the catalogue against the voice clips in the
repository, and the page server over real HTTP on loopback.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
import wave
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from support.lockers import FREE, FULL, NOW, make_locker, make_pass, never, sticker

from helmet_edge.config import FaceSettings, VoiceSettings
from helmet_edge.face import Face, Utterance, moments_for, voice_volume
from helmet_edge.face_http import FaceServer
from helmet_edge.face_text import CATALOGUE, LANGUAGES, every_clip, say
from helmet_edge.locker import Locker, Outcome
from helmet_edge.speaker_alsa import prompts_dir, render
from helmet_protocol.events import RejectReason, SlotState
from helmet_protocol.messages import LockerConfig
from helmet_protocol.passes import Role


class Recorder:
    def __init__(self) -> None:
        self.played: list[Utterance] = []

    def play(self, utterance: Utterance) -> None:
        self.played.append(utterance)

    def close(self) -> None:
        pass


def make_face(**settings: Any) -> tuple[Face, Recorder]:
    speaker = Recorder()
    face = Face(FaceSettings(**settings), VoiceSettings(quiet_hours=""), locker_id="LK-0001", speaker=speaker)
    return face, speaker


def turn(face: Face, locker: Locker, mono: float, *, online: bool = True, camera_ok: bool | None = True) -> None:
    face.refresh(locker.machines, locker, mono=mono, wall=NOW + timedelta(seconds=mono), online=online,
                 camera_ok=camera_ok)  # fmt: skip


def decide(face: Face, locker: Locker, out: Outcome | None, mono: float) -> None:
    assert out is not None
    face.decided(out, locker.machines, mono=mono, wall=NOW + timedelta(seconds=mono))
    turn(face, locker, mono)


def walk(locker: Locker, face: Face, t0: float, seconds: float, reading: dict[int, tuple[bool, bool]]) -> float:
    """Feed the same sensor reading for ``seconds`` at 50 Hz, the face told of every outcome."""
    t = t0
    while t < t0 + seconds:
        t += 0.02
        out = locker.tick(t, reading)
        face.decided(out, locker.machines, mono=t, wall=NOW + timedelta(seconds=t))
        turn(face, locker, t)
    return t


# -- the catalogue and the voice clips -----------------------------------------------------------------


def test_every_refusal_the_locker_can_give_has_a_reason_and_what_to_do_next_in_both_languages() -> None:
    for reason in [*RejectReason, "foreign", "poster"]:
        for lang in LANGUAGES:
            assert say(f"refused.{reason}", lang).text
            assert say(f"refused.{reason}.next", lang).text


def test_door_numbers_read_as_a_person_would_say_them() -> None:
    assert say("borrow.take", "zh-CN", doors=[3, 5]).text == "请取走 3 号、5 号柜的头盔"
    assert say("return.put", "zh-CN", doors=[4]).text == "请把头盔放入 4 号柜"
    assert say("borrow.take", "en", doors=[3, 5]).text == "Take the helmets from doors 3 and 5"
    assert say("borrow.take", "en", doors=[3]).text == "Take the helmet from door 3"
    assert say("remind.close", "en", doors=[2, 4, 6]).text == "Please close doors 2, 4 and 6"


def test_every_clip_a_sentence_can_use_is_in_the_repository_and_none_is_stale() -> None:
    folder = prompts_dir()
    for lang, clips in every_clip().items():
        present = {p.stem for p in (folder / lang).glob("*.wav")}
        assert set(clips) - present == set(), f"run edge/scripts/voice_prompts.py --missing ({lang})"
        assert present - set(clips) == set(), f"stale clips: run edge/scripts/voice_prompts.py ({lang})"
    rates = set()
    for path in folder.rglob("*.wav"):
        with wave.open(str(path)) as w:
            assert (w.getnchannels(), w.getsampwidth()) == (1, 2), path
            assert w.getnframes() > 0, path
            rates.add(w.getframerate())
    assert len(rates) == 1  # the speaker joins clips into one stream


def test_a_sentence_with_door_numbers_is_spoken_from_its_pieces_at_the_utterances_volume() -> None:
    said = say("borrow.take", "zh-CN", doors=[3, 5])
    loud = render(Utterance("borrow.take", "zh-CN", said.text, said.clips, 1.0), prompts_dir())
    quiet = render(Utterance("borrow.take", "zh-CN", said.text, said.clips, 0.25), prompts_dir())
    assert loud is not None and quiet is not None
    assert "num.3" in said.clips and "num.5" in said.clips
    a, b = np.frombuffer(loud[1], "<i2"), np.frombuffer(quiet[1], "<i2")
    assert len(a) == len(b) and np.abs(b).max() <= np.abs(a).max() * 0.26 + 1


def test_quiet_hours_run_past_midnight() -> None:
    v = VoiceSettings(volume=0.8, quiet_hours="22:00-07:00", quiet_volume=0.2)
    assert voice_volume(v, time(23, 30)) == 0.2
    assert voice_volume(v, time(6, 59)) == 0.2
    assert voice_volume(v, time(7, 0)) == 0.8
    assert voice_volume(v, time(12, 0)) == 0.8
    assert voice_volume(VoiceSettings(enabled=False), time(12, 0)) == 0.0


def test_a_mistyped_quiet_hours_or_an_open_listener_is_refused_by_the_config() -> None:
    with pytest.raises(ValueError, match="quiet_hours"):
        VoiceSettings(quiet_hours="10pm-7am")
    with pytest.raises(ValueError, match="loopback"):
        FaceSettings(host="0.0.0.0")  # noqa: S104 (the point of the test)


# -- moments: the same outcome the LED gets ---------------------------------------------------------------


def test_a_borrow_shows_the_doors_it_opened_until_they_shut_then_the_result() -> None:
    locker = make_locker(FREE, FULL, FREE, FULL)
    face, speaker = make_face(result_s=5)
    decide(face, locker, locker.scan(make_pass(quantity=2), wall=NOW, mono=0.0, honoured=never), 0.0)
    screen = face.screen()
    assert screen["moment"]["key"] == "borrow.take"
    assert screen["moment"]["doors"] == [2, 4]
    assert screen["moment"]["title"] == "请取走 2 号、4 号柜的头盔"
    assert [d["slot"] for d in screen["doors"]] == [2, 4] and all(d["deadline_ms"] for d in screen["doors"])
    assert speaker.played[-1].text.startswith("请取走 2 号、4 号柜的头盔")
    # door 2 opened, helmet taken, shut; door 4 still open: the screen keeps saying "take from 2 and 4"
    closed = {1: (True, False), 3: (True, False)}
    t = walk(locker, face, 0.0, 0.3, {**closed, 2: (False, True), 4: (False, True)})
    t = walk(locker, face, t, 0.3, {**closed, 2: (False, False), 4: (False, True)})
    t = walk(locker, face, t, 0.3, {**closed, 2: (True, False), 4: (False, True)})
    assert face.screen()["moment"]["key"] == "borrow.take"
    t = walk(locker, face, t, 0.3, {**closed, 2: (True, False), 4: (False, False)})
    t = walk(locker, face, t, 0.3, {**closed, 2: (True, False), 4: (True, False)})
    assert face.screen()["moment"]["key"] == "done.borrowed"
    assert face.screen()["available"] == 0
    t = walk(locker, face, t, 5.1, {n: (True, False) for n in (1, 2, 3, 4)})
    assert face.screen()["moment"] is None  # back to the idle screen
    assert [u.key for u in speaker.played] == ["borrow.take", "done.borrowed"]


def test_a_pass_that_asked_for_more_helmets_than_were_here_says_so() -> None:
    locker = make_locker(FULL, FREE)
    face, _ = make_face()
    decide(face, locker, locker.scan(make_pass(quantity=3), wall=NOW, mono=0.0, honoured=never), 0.0)
    moment = face.screen()["moment"]
    assert (moment["key"], moment["doors"]) == ("borrow.take", [1])
    assert moment["also"] == say("borrow.short", "zh-CN", n=1).text == "本柜只有 1 个头盔，少于您借的数量"  # noqa: RUF001


@pytest.mark.parametrize(
    ("code", "key"),
    [
        (make_pass(now=NOW - timedelta(hours=2)), "refused.expired"),
        (make_pass(key=Ed25519PrivateKey.generate()), "refused.bad_signature"),
        (make_pass(kid="town2"), "refused.unknown_key"),
        (b"https://www.example.org/menu", "refused.foreign"),
        (b"https://helmets.example.org/s/ST-1", "refused.poster"),
        (sticker("H-0001"), "refused.already_here"),
    ],
    ids=["expired", "forged", "wrong-town", "foreign", "poster", "already-here"],
)
def test_each_refusal_is_shown_with_what_to_do_next_and_spoken_alike(code: bytes, key: str) -> None:
    locker = make_locker(FULL, FREE)
    face, speaker = make_face()
    decide(face, locker, locker.scan(code, wall=NOW, mono=0.0, honoured=never), 0.0)
    moment = face.screen()["moment"]
    assert (moment["key"], moment["tone"]) == (key, "refused")
    assert moment["next"] == say(f"{key}.next", "zh-CN").text if f"{key}.next" in CATALOGUE else True
    assert speaker.played[-1].key == key and speaker.played[-1].text.startswith(moment["title"])
    assert [m.state for m in locker.machines.values()] == [FULL, FREE]


def test_a_full_locker_tells_a_returning_resident_to_go_to_another_station() -> None:
    locker = make_locker(FULL, FULL)
    face, _ = make_face()
    decide(face, locker, locker.scan(sticker("H-0077"), wall=NOW, mono=0.0, honoured=never), 0.0)
    assert face.screen()["moment"]["key"] == "refused.no_free_slot"
    assert face.screen()["moment"]["next"] == "请到附近站点归还"


def test_a_door_left_open_is_reminded_on_the_screen_and_in_the_voice_and_again_later() -> None:
    locker = make_locker(FREE, FREE)
    face, speaker = make_face(door_reminder_s=10, door_reminder_repeat_s=15)
    decide(face, locker, locker.scan(sticker("H-0077"), wall=NOW, mono=0.0, honoured=never), 0.0)
    t = walk(locker, face, 0.0, 9.0, {1: (False, False), 2: (True, False)})
    assert face.screen()["reminder"] is None
    t = walk(locker, face, t, 1.5, {1: (False, False), 2: (True, False)})
    assert face.screen()["reminder"]["doors"] == [1]
    assert face.screen()["reminder"]["text"] == "请关好 1 号柜门"
    t = walk(locker, face, t, 16.0, {1: (False, False), 2: (True, False)})
    assert [u.key for u in speaker.played].count("remind.close") == 2
    walk(locker, face, t, 0.3, {1: (True, False), 2: (True, False)})
    assert face.screen()["reminder"] is None
    assert face.screen()["moment"]["key"] == "done.return_cancelled"


def test_the_language_touch_lasts_a_minute_then_the_towns_default_returns() -> None:
    locker = make_locker(FULL, FREE)
    face, speaker = make_face(language_reset_s=60)
    turn(face, locker, 0.0)
    assert face.screen()["lang"] == "zh-CN"
    face.ask_language("en")
    turn(face, locker, 1.0)
    assert face.screen()["lang"] == "en" and face.screen()["labels"]["available"] == "Helmets to borrow"
    decide(face, locker, locker.scan(make_pass(kid="town2"), wall=NOW, mono=2.0, honoured=never), 2.0)
    assert speaker.played[-1].lang == "en"
    assert face.screen()["moment"]["title"] == "This pass is not from this town's helmet scheme"
    turn(face, locker, 60.5)
    assert face.screen()["lang"] == "en"
    turn(face, locker, 61.5)
    assert face.screen()["lang"] == "zh-CN"
    with pytest.raises(ValueError, match="zh-CN, en"):
        face.ask_language("fr")


def test_offline_maintenance_and_out_of_service_screens() -> None:
    locker = make_locker(FULL, FREE)
    face, _ = make_face()
    turn(face, locker, 0.0, online=False)
    assert (face.screen()["online"], face.screen()["mode"]) == (False, "idle")
    turn(face, locker, 0.1, camera_ok=False)
    assert face.screen()["mode"] == "out_of_service"  # nothing can be scanned
    decide(face, locker, locker.scan(make_pass(role=Role.TECHNICIAN, holder_id="T-1"), wall=NOW, mono=1.0,
                                     honoured=never), 1.0)  # fmt: skip
    screen = face.screen()
    assert screen["mode"] == "maintenance" and screen["moment"]["key"] == "mode.maintenance"
    assert [(s["slot"], s["state"], s["helmet"]) for s in screen["technician"]["slots"]] == [
        (1, "occupied", "H-0001"),
        (2, "empty", None),
    ]
    for n in (1, 2):
        locker.set_disabled(n, True)
    end = locker.scan(make_pass(role=Role.TECHNICIAN, holder_id="T-1", ttl=timedelta(minutes=6)), wall=NOW,
                      mono=2.0, honoured=never)  # fmt: skip
    decide(face, locker, end, 2.0)
    assert face.screen()["mode"] == "out_of_service"  # every slot disabled


def test_moments_come_from_the_outcome_only() -> None:
    """Nothing the locker did not do: an outcome with no opened door never shows a door moment."""
    locker = make_locker(FULL, FREE)
    assert moments_for(Outcome(), locker.machines) == []
    refused = locker.scan(make_pass(now=NOW - timedelta(hours=1)), wall=NOW, mono=0.0, honoured=never)
    assert refused is not None
    assert [m.key for m in moments_for(refused, locker.machines)] == ["refused.expired"]
    assert all(m.state != SlotState.UNLOCKING for m in locker.machines.values())


# -- the page server ----------------------------------------------------------------------------------------


@pytest.fixture
def served() -> Iterator[tuple[Face, Locker, FaceServer]]:
    locker = make_locker(FULL, FREE)
    face, _ = make_face()
    face.configure(
        LockerConfig(
            locker_id="LK-0001",
            slot_count=2,
            pass_keys={},
            station_names={"en": "Town hall", "zh": "市政厅"},
            poster_url="https://helmets.example.org/s/ST-1",
            ts=datetime.now(UTC),
        )
    )
    turn(face, locker, 0.0)
    server = FaceServer(face, FaceSettings(port=0)).start()
    yield face, locker, server
    server.close()


def request(server: FaceServer, path: str, body: bytes | None = None, **headers: str) -> tuple[int, bytes]:
    req = urllib.request.Request(server.url.rstrip("/") + path, data=body, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=5) as r:  # noqa: S310 (loopback)
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_the_page_its_state_and_the_poster_are_served(served: tuple[Face, Locker, FaceServer]) -> None:
    _, _, server = served
    status, page = request(server, "/")
    assert status == 200 and b'src="/face.js"' in page
    status, state = request(server, "/state")
    screen = json.loads(state)
    assert (screen["station"], screen["available"], screen["free"], screen["poster"]) == ("市政厅", 1, 1, True)
    status, svg = request(server, "/poster.svg")
    assert status == 200 and svg.startswith(b"<svg")
    assert request(server, "/etc/passwd")[0] == 404


def test_a_request_from_another_host_name_is_refused(served: tuple[Face, Locker, FaceServer]) -> None:
    _, _, server = served
    status, body = request(server, "/state", Host="evil.example")
    assert status == 421 and b"own screen" in body


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1]", b'{"lang": "fr"}', b'{"lang": 3}', b"x" * 5000],
    ids=["text", "list", "fr", "int", "big"],
)
def test_a_bad_language_request_is_refused_and_changes_nothing(
    served: tuple[Face, Locker, FaceServer], body: bytes
) -> None:
    face, locker, server = served
    status, _ = request(server, "/language", body, **{"Content-Type": "application/json"})
    assert status == 400
    turn(face, locker, 1.0)
    assert face.screen()["lang"] == "zh-CN"


def test_the_self_test_button_works_in_maintenance_mode_only(served: tuple[Face, Locker, FaceServer]) -> None:
    face, locker, server = served
    assert request(server, "/selftest", b"{}")[0] == 409
    decide(face, locker, locker.scan(make_pass(role=Role.TECHNICIAN), wall=NOW, mono=1.0, honoured=never), 1.0)
    assert request(server, "/selftest", b"{}")[0] == 202
    assert face.take_selftest_request(locker, 1.1) is True
    assert face.take_selftest_request(locker, 1.2) is False  # taken once


def test_the_event_stream_pushes_each_change(served: tuple[Face, Locker, FaceServer]) -> None:
    face, locker, server = served
    got: list[dict[str, Any]] = []
    done = threading.Event()

    def listen() -> None:
        with urllib.request.urlopen(server.url + "events", timeout=10) as stream:  # noqa: S310
            for line in stream:
                if line.startswith(b"data: "):
                    got.append(json.loads(line[6:]))
                    if len(got) == 2:
                        done.set()
                        return

    threading.Thread(target=listen, daemon=True).start()
    for _ in range(100):
        if got:
            break
        threading.Event().wait(0.02)
    decide(face, locker, locker.scan(make_pass(), wall=NOW, mono=1.0, honoured=never), 1.0)
    assert done.wait(5)
    assert got[0]["moment"] is None and got[1]["moment"]["key"] == "borrow.take"
    assert got[1]["version"] > got[0]["version"]


def test_stored_config_without_station_fields_still_shows_the_locker(tmp_path: Path) -> None:
    """An older cloud's config has no station: the screen names the locker instead."""
    face, _ = make_face()
    face.configure(LockerConfig(locker_id="LK-0001", slot_count=2, pass_keys={}, ts=datetime.now(UTC)))
    locker = make_locker(FULL, FREE)
    turn(face, locker, 0.0)
    assert face.screen()["station"] == "LK-0001" and face.screen()["poster"] is False
