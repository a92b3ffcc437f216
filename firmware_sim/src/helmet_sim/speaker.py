"""A simulated locker's speaker: it records what it would have played, so tests and the demo can hear it."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

from helmet_edge.face import Utterance
from helmet_edge.speaker_alsa import prompts_dir


@dataclass(frozen=True, slots=True)
class Played:
    at: float  # time.time() when the locker asked for it
    utterance: Utterance
    missing: tuple[str, ...]  # clips with no prompt file: a real speaker would skip them


class RecordingSpeaker:
    """Keeps the latest ``keep`` utterances (a town simulation runs for hours)."""

    def __init__(self, keep: int = 10_000) -> None:
        self._lock = threading.Lock()
        self._played: deque[Played] = deque(maxlen=keep)
        # The prompt files there are, read once: play() runs on the locker's loop thread.
        self._clips = {(p.parent.name, p.stem) for p in prompts_dir().glob("*/*.wav")}

    def play(self, utterance: Utterance) -> None:
        missing = tuple(c for c in utterance.clips if (utterance.lang, c) not in self._clips)
        with self._lock:
            self._played.append(Played(time.time(), utterance, missing))

    def played(self) -> list[Played]:
        with self._lock:
            return list(self._played)

    def close(self) -> None:
        pass
