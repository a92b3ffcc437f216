"""A simulated locker's speaker: it records what it would have played, so tests and the demo can hear it."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from helmet_edge.face import Utterance
from helmet_edge.speaker_alsa import prompts_dir


@dataclass(frozen=True, slots=True)
class Played:
    at: float  # time.time() when the locker asked for it
    utterance: Utterance
    missing: tuple[str, ...]  # clips with no prompt file: a real speaker would skip them


class RecordingSpeaker:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._played: list[Played] = []
        self._folder = prompts_dir()

    def play(self, utterance: Utterance) -> None:
        missing = tuple(c for c in utterance.clips if not (self._folder / utterance.lang / f"{c}.wav").is_file())
        with self._lock:
            self._played.append(Played(time.time(), utterance, missing))

    def played(self) -> list[Played]:
        with self._lock:
            return list(self._played)

    def close(self) -> None:
        pass
