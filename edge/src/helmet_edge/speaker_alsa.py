"""The locker's voice through ALSA: the prompt clips of an :class:`~helmet_edge.face.Utterance`, joined and
played by ``aplay`` (alsa-utils) on the configured PCM device, at the utterance's volume.

The clips are ``prompts/{language}/{clip}.wav`` in this package (16-bit mono, one sample rate:
``edge/scripts/voice_prompts.py`` makes them). Playing never blocks the locker's loop: a worker thread
plays the newest utterance and cuts short one still playing, as a person would stop mid-sentence
to answer the next question. Without ``aplay`` the locker says so once and stays silent.
"""

from __future__ import annotations

import logging
import queue
import shutil
import subprocess
import threading
import wave
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np

from helmet_edge.config import VoiceSettings
from helmet_edge.face import Utterance

log = logging.getLogger(__name__)

GAP_S = 0.06  # silence between two clips of one sentence


def prompts_dir() -> Path:
    return Path(str(resources.files("helmet_edge").joinpath("prompts")))


@cache
def _clip(path: Path) -> tuple[int, bytes] | None:
    try:
        with wave.open(str(path), "rb") as w:
            if w.getsampwidth() != 2 or w.getnchannels() != 1:
                log.warning("voice: %s is not 16-bit mono; skipped", path)
                return None
            return w.getframerate(), w.readframes(w.getnframes())
    except (OSError, wave.Error, EOFError) as exc:
        log.warning("voice: cannot read %s: %s", path, exc)
        return None


def render(utterance: Utterance, folder: Path) -> tuple[int, bytes] | None:
    """The utterance as one stretch of 16-bit samples at its clips' rate, scaled to its volume."""
    rate: int | None = None
    parts: list[np.ndarray] = []
    for clip in utterance.clips:
        found = _clip(folder / utterance.lang / f"{clip}.wav")
        if found is None:
            continue
        clip_rate, frames = found
        if rate is not None and clip_rate != rate:
            log.warning("voice: %s is at %d Hz, the sentence at %d Hz; skipped", clip, clip_rate, rate)
            continue
        rate = clip_rate
        parts.extend([np.frombuffer(frames, dtype="<i2"), np.zeros(int(rate * GAP_S), dtype="<i2")])
    if rate is None:
        return None
    samples = np.concatenate(parts).astype(np.float32) * utterance.volume
    return rate, np.clip(samples, -32768, 32767).astype("<i2").tobytes()


class AlsaSpeaker:
    def __init__(self, settings: VoiceSettings, *, folder: Path | None = None, aplay: str | None = None) -> None:
        self.settings = settings
        self.folder = folder or prompts_dir()
        self.aplay = aplay or shutil.which("aplay")
        self._queue: queue.Queue[Utterance | None] = queue.Queue()
        self._playing: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        if self.aplay is None and settings.enabled:
            log.warning("voice: aplay is not installed (apt install alsa-utils); the locker stays silent")
        self._thread = threading.Thread(target=self._run, name="voice", daemon=True)
        self._thread.start()

    def play(self, utterance: Utterance) -> None:
        if self.aplay is None or utterance.volume <= 0:
            return
        self._queue.put(utterance)
        with self._lock:  # cut the current sentence short: the newest one matters
            if self._playing is not None and self._playing.poll() is None:
                self._playing.terminate()

    def close(self) -> None:
        self._queue.put(None)
        with self._lock:
            if self._playing is not None and self._playing.poll() is None:
                self._playing.terminate()
        self._thread.join(timeout=2)

    def _run(self) -> None:
        while True:
            utterance = self._queue.get()
            while not self._queue.empty():  # only the newest of those that piled up
                utterance = self._queue.get()
            if utterance is None:
                return
            sound = render(utterance, self.folder)
            if sound is None or self.aplay is None:
                continue
            rate, pcm = sound
            cmd = [self.aplay, "-q", "-D", self.settings.device, "-t", "raw", "-f", "S16_LE", "-c", "1"]
            try:
                with self._lock:
                    self._playing = proc = subprocess.Popen(  # noqa: S603 (a fixed program and our own arguments)
                        [*cmd, "-r", str(rate)], stdin=subprocess.PIPE, stderr=subprocess.PIPE
                    )
                _, err = proc.communicate(pcm, timeout=60)
                if proc.returncode not in (0, -15):  # -15: cut short by a newer sentence
                    log.warning(
                        "voice: aplay on %s failed: %s", self.settings.device, err.decode(errors="replace")[:200]
                    )
            except (OSError, subprocess.SubprocessError) as exc:
                log.warning("voice: cannot play on %s: %s", self.settings.device, exc)
