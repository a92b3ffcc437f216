"""The locker's face: what its screen shows and its voice says, from the decisions the LED and buzzer get.

Pure logic. The loop hands every :class:`~helmet_edge.locker.Outcome` it applies to :meth:`Face.decided`
(the same call that drives the LED), and once per turn :meth:`Face.refresh` with what the locker is
(slots, link, camera, maintenance). The face turns those into *moments* ("请取走 3 号、5 号柜的头盔",
a refusal and what to do next, "归还成功") and a *screen*: a JSON-ready dict that the page server
(``face_http.py``) pushes to the kiosk page whenever it changes. Each moment is spoken once through the
:class:`~helmet_edge.ports.Speaker`, with the same words (``face_text.py``).

The screen is built on the loop's thread and published under a condition variable; the page server's
threads only read it, or leave a request (a language touch, a self-test) for the loop to take.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import TYPE_CHECKING, Any

from helmet_edge import face_text
from helmet_edge.config import FaceSettings, VoiceSettings
from helmet_edge.face_text import LANGUAGES, Said, say, state_word
from helmet_edge.locker import Feedback, Locker, Outcome
from helmet_edge.slot_machine import Purpose, SlotMachine
from helmet_protocol.events import EventKind, FaultReason, SlotState
from helmet_protocol.messages import LockerConfig

if TYPE_CHECKING:
    from helmet_edge.ports import Speaker

_BUSY = (SlotState.UNLOCKING, SlotState.OPEN)
_DOOR_MOMENTS = ("borrow.take", "return.put", "stock.put", "service.open")
_OPENED = {Purpose.BORROW: "borrow.take", Purpose.RETURN: "return.put", Purpose.STOCK: "stock.put"}
_DONE = {
    EventKind.HELMET_BORROWED: "done.borrowed",
    EventKind.HELMET_RETURNED: "done.returned",
    EventKind.BORROW_CANCELLED: "done.borrow_cancelled",
    EventKind.RETURN_CANCELLED: "done.return_cancelled",
    EventKind.UNLOCK_TIMEOUT: "done.timeout",
    EventKind.HELMET_STOCKED: "done.stocked",
    EventKind.HELMET_REMOVED: "done.removed",
}
# Each event kind's tone; the page colours a moment by it.
_TONE = {"borrow": "go", "return": "go", "stock": "go", "service": "go", "done": "ok", "refused": "refused"}


@dataclass(frozen=True, slots=True)
class Moment:
    """One thing to tell the person in front of the locker."""

    key: str  # a face_text.CATALOGUE key
    doors: tuple[int, ...] = ()
    n: int | None = None
    also: str | None = None  # a second sentence (a pass that asked for more helmets than were here)

    @property
    def tone(self) -> str:
        if self.key.startswith(("warn.", "remind.")):
            return "warn"
        if self.key.startswith("mode."):
            return "info"
        return _TONE.get(self.key.split(".")[0], "info")

    def title(self, lang: str) -> Said:
        return say(self.key, lang, doors=self.doors, n=self.n)

    def next(self, lang: str) -> Said | None:
        key = f"{self.key}.next"
        return say(key, lang, doors=self.doors) if key in face_text.CATALOGUE else None

    def second(self, lang: str) -> Said | None:
        return say(self.also, lang, n=self.n) if self.also else None


@dataclass(frozen=True, slots=True)
class Utterance:
    """What the speaker plays: the clips that say ``text`` in ``lang``, at ``volume`` (0..1)."""

    key: str
    lang: str
    text: str
    clips: tuple[str, ...]
    volume: float


def moments_for(out: Outcome, machines: Mapping[int, SlotMachine]) -> list[Moment]:
    """What the person is told about one outcome the locker carried out (or refused)."""
    found: list[Moment] = []
    if out.reason == "already_open":
        found.append(Moment("return.put", tuple(out.about)))
    elif out.reason is not None:
        found.append(Moment(f"refused.{out.reason}", tuple(out.about)))
    if out.opened:
        purpose = machines[out.opened[0]].record.purpose if out.opened[0] in machines else None
        key = _OPENED.get(purpose, "service.open") if purpose is not None else "service.open"
        short = out.short if purpose == Purpose.BORROW and out.short else 0
        found.append(
            Moment(key, tuple(out.opened), n=len(out.opened) if short else None, also="borrow.short" if short else None)
        )
    if out.feedback == Feedback.MAINTENANCE:
        found.append(Moment("mode.maintenance"))
    elif out.feedback == Feedback.MAINTENANCE_END:
        found.append(Moment("mode.maintenance_end"))
    done: dict[str, list[int]] = {}
    for e in out.events:
        if e.kind == EventKind.SLOT_FAULT and e.reason in (FaultReason.DOOR_AJAR, FaultReason.LOCK_JAMMED):
            found.append(Moment(f"warn.{e.reason}", (e.slot,) if e.slot else ()))
        elif e.kind == EventKind.LOCKER_SELFTEST:
            found.append(Moment("mode.selftest_ok" if e.reason == "ok" else "mode.selftest_problems"))
        elif e.kind in _DONE and e.slot is not None and e.detail is None:  # not a start-up finding
            done.setdefault(_DONE[e.kind], []).append(e.slot)
    found.extend(Moment(key, tuple(doors)) for key, doors in done.items())
    return found


def voice_volume(settings: VoiceSettings, now: time) -> float:
    """The configured volume, or the quiet one inside the quiet hours (which may run past midnight)."""
    if not settings.enabled:
        return 0.0
    if settings.quiet_hours:
        start, end = (time.fromisoformat(t) for t in settings.quiet_hours.split("-"))
        quiet = start <= now < end if start <= end else (now >= start or now < end)
        if quiet:
            return settings.quiet_volume
    return settings.volume


@dataclass(slots=True)
class _Shown:
    moment: Moment
    wall_ms: int
    since: float
    until: float | None  # None: while its doors are open


@dataclass(slots=True)
class _Requests:
    """What the page's threads ask of the loop; taken on the loop's thread."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    language: str | None = None
    selftest: bool = False


class Face:
    def __init__(
        self,
        settings: FaceSettings,
        voice: VoiceSettings,
        *,
        locker_id: str,
        speaker: Speaker | None = None,
    ) -> None:
        self.settings = settings
        self.voice = voice
        self.locker_id = locker_id
        self.speaker = speaker
        self.station_names: dict[str, str] = {}
        self.poster_url: str | None = None
        self._shown: _Shown | None = None
        self._pending: Moment | None = None  # a result held back while another of the moment's doors is open
        self._lang: str | None = None  # a resident's choice, until _lang_until
        self._lang_until = 0.0
        self._open_since: dict[int, float] = {}
        self._reminded_at: float | None = None
        self._reminder_ms = 0  # when the current reminder began (the page logs each one once)
        self._selftest: dict[str, Any] | None = None
        self._requests = _Requests()
        self._signature: object = None
        self._changed = threading.Condition()
        self._version = 0
        self._screen: dict[str, Any] = {}

    # -- what the loop tells the face -------------------------------------------------------------------

    def configure(self, cfg: LockerConfig | None) -> None:
        """The cloud's config names the station and its poster (older clouds do not: the locker id shows)."""
        if cfg is not None:
            self.station_names = dict(cfg.station_names)
            self.poster_url = cfg.poster_url
            self._signature = None

    @property
    def language(self) -> str:
        return self._lang or self.settings.language

    def decided(self, out: Outcome, machines: Mapping[int, SlotMachine], *, mono: float, wall: datetime) -> None:
        """An outcome the loop has just carried out: show and say what it means."""
        for event in out.events:
            if event.kind == EventKind.LOCKER_SELFTEST:
                self._selftest = {"ok": event.reason == "ok", "summary": event.detail, "at_ms": _ms(wall)}
        for moment in moments_for(out, machines):
            shown = self._shown
            if moment.key.startswith("done.") and shown is not None and shown.until is None:
                still = {n for n in shown.moment.doors if machines[n].state in _BUSY} - set(moment.doors)
                if still:  # one of two doors shut: "take from door 5" stays until the last one does
                    self._pending = moment
                    continue
            self._show(moment, mono, wall)

    def _show(self, moment: Moment, mono: float, wall: datetime) -> None:
        # A door's own moment lasts while the door is open; every other one for result_s.
        hold = None if moment.doors and moment.key in _DOOR_MOMENTS else mono + self.settings.result_s
        self._shown = _Shown(moment, _ms(wall), mono, hold)
        self._pending = None
        self._signature = None
        self._speak(moment, mono, wall)

    def refresh(
        self, machines: Mapping[int, SlotMachine], locker: Locker, *, mono: float, wall: datetime, online: bool,
        camera_ok: bool | None,
    ) -> None:  # fmt: skip
        """Once per loop turn: expire results, remind about open doors, publish the screen if it changed."""
        self._take_language(mono)
        if self._lang is not None and mono >= self._lang_until:
            self._lang = None  # back to the town's default a minute after the last touch
        shown = self._shown
        busy = {n for n, m in machines.items() if m.state in _BUSY}
        if shown is not None:
            if shown.until is None and not busy & set(shown.moment.doors):
                if self._pending is not None:  # the last door shut: what came of them all
                    self._show(self._pending, mono, wall)
                    shown = self._shown
                else:
                    shown.until = mono + self.settings.result_s  # its doors closed with nothing more to say
            if shown is not None and shown.until is not None and mono >= shown.until:
                self._shown = shown = None
        self._open_since = {n: self._open_since.get(n, mono) for n, m in machines.items() if m.state == SlotState.OPEN}
        left_open = sorted(n for n, t in self._open_since.items() if mono - t >= self.settings.door_reminder_s)
        if left_open:
            due = self._reminded_at is None or mono - self._reminded_at >= self.settings.door_reminder_repeat_s
            if due:
                if self._reminded_at is None:
                    self._reminder_ms = _ms(wall)
                self._reminded_at = mono
                self._speak(Moment("remind.close", tuple(left_open)), mono, wall)
        else:
            self._reminded_at = None
        maintenance = locker.in_maintenance(mono)
        usable = any(m.state not in (SlotState.DISABLED, SlotState.FAULT) for m in machines.values())
        mode = "maintenance" if maintenance else ("idle" if usable and camera_ok is not False else "out_of_service")
        signature = (
            self.language, online, mode, id(shown), tuple((n, m.state) for n, m in machines.items()),
            tuple(left_open), self._selftest is not None and self._selftest["at_ms"],
        )  # fmt: skip
        if signature == self._signature:
            return
        self._signature = signature
        screen = self._build(machines, locker, mono=mono, wall=wall, online=online, mode=mode, left_open=left_open)
        with self._changed:
            self._version += 1
            self._screen = {"version": self._version, **screen}
            self._changed.notify_all()

    def take_selftest_request(self, locker: Locker, mono: float) -> bool:
        """The technician touched "run the self-test" (honoured in maintenance mode only)."""
        with self._requests.lock:
            asked, self._requests.selftest = self._requests.selftest, False
        return asked and locker.in_maintenance(mono)

    # -- what the page server asks (any thread) ----------------------------------------------------------

    def screen(self) -> dict[str, Any]:
        with self._changed:
            return self._screen

    def wait_newer(self, version: int, timeout: float) -> dict[str, Any]:
        """The screen once its version is past ``version``, or as it is after ``timeout`` seconds."""
        with self._changed:
            self._changed.wait_for(lambda: self._version > version, timeout=timeout)
            return self._screen

    def ask_language(self, lang: str) -> None:
        if lang not in LANGUAGES:
            raise ValueError(f"language must be one of {', '.join(LANGUAGES)}")
        with self._requests.lock:
            self._requests.language = lang

    def ask_selftest(self) -> None:
        with self._requests.lock:
            self._requests.selftest = True

    # -- inside ------------------------------------------------------------------------------------------

    def _take_language(self, mono: float) -> None:
        with self._requests.lock:
            lang, self._requests.language = self._requests.language, None
        if lang is not None:
            self._lang = None if lang == self.settings.language else lang
            self._lang_until = mono + self.settings.language_reset_s
            self._signature = None

    def _speak(self, moment: Moment, mono: float, wall: datetime) -> None:
        if self.speaker is None:
            return
        lang = self.language
        parts = [s for s in (moment.title(lang), moment.second(lang), moment.next(lang)) if s is not None]
        volume = voice_volume(self.voice, wall.astimezone().time())
        self.speaker.play(
            Utterance(
                key=moment.key,
                lang=lang,
                text=" ".join(p.text for p in parts),
                clips=tuple(c for p in parts for c in p.clips),
                volume=volume,
            )
        )

    def _build(
        self, machines: Mapping[int, SlotMachine], locker: Locker, *, mono: float, wall: datetime, online: bool,
        mode: str, left_open: Sequence[int],
    ) -> dict[str, Any]:  # fmt: skip
        lang = self.language
        now_ms = _ms(wall)
        offered = {n: m for n, m in machines.items() if locker.offered(n)}
        screen: dict[str, Any] = {
            "lang": lang,
            "default_lang": self.settings.language,
            "languages": list(LANGUAGES),
            "labels": face_text.labels(lang),
            "online": online,
            "mode": mode,
            "station": self._station_name(lang),
            "locker_id": self.locker_id,
            "poster": self.poster_url is not None,
            "available": sum(m.state == SlotState.OCCUPIED for m in offered.values()),
            "free": sum(m.state == SlotState.EMPTY for m in offered.values()),
            "now_ms": now_ms,
            "moment": None,
            "doors": [],
            "reminder": None,
            "technician": None,
        }
        shown = self._shown
        if shown is not None:
            m = shown.moment
            nxt, second = m.next(lang), m.second(lang)
            screen["moment"] = {
                "key": m.key,
                "tone": m.tone,
                "title": m.title(lang).text,
                "next": nxt.text if nxt else None,
                "also": second.text if second else None,
                "doors": list(m.doors),
                "at_ms": shown.wall_ms,
            }
        for n, machine in machines.items():
            if machine.state in _BUSY:
                deadline = machine.deadline
                screen["doors"].append(
                    {
                        "slot": n,
                        "state": str(machine.state),
                        # unlocking: pull the door open before this; open: the door counts as left open after it
                        "deadline_ms": None if deadline is None else now_ms + int((deadline - mono) * 1000),
                        "left_open": n in left_open,
                    }
                )
        if left_open:
            screen["reminder"] = {
                "text": say("remind.close", lang, doors=left_open).text,
                "doors": list(left_open),
                "at_ms": self._reminder_ms,
            }
        if mode == "maintenance":
            screen["technician"] = {
                "selftest": self._selftest,
                "slots": [
                    {
                        "slot": n,
                        "state": str(m.state),
                        "state_text": state_word(str(m.state), lang),
                        "helmet": m.record.helmet_id or m.record.incoming_helmet_id,
                        "fault": m.record.fault,
                    }
                    for n, m in machines.items()
                ],
            }
        return screen

    def _station_name(self, lang: str) -> str:
        names = self.station_names
        return names.get(lang.split("-")[0]) or names.get("en") or self.locker_id


def _ms(wall: datetime) -> int:
    return int(wall.timestamp() * 1000)
