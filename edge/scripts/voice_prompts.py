"""Make the locker's voice prompts again from face_text.toml: one WAV clip per piece of every sentence.

    .venv/bin/python edge/scripts/voice_prompts.py            # every clip, stale ones removed
    .venv/bin/python edge/scripts/voice_prompts.py --missing  # only clips that have no file yet

Synthesised offline with espeak-ng (``apt install espeak-ng``): Mandarin (cmn) and English (en-gb), at
8 kHz 16-bit mono (telephone quality: enough for a small kiosk speaker, and the files stay small). A town
that records a person's voice instead puts WAV files of the same names and format in their place
(any one sample rate for all clips); `tests/edge/test_face.py` checks that every clip exists.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np

from helmet_edge.face_text import every_clip

ROOT = Path(__file__).resolve().parents[1] / "src" / "helmet_edge" / "prompts"
VOICES = {"zh-CN": ("cmn", "230"), "en": ("en-gb", "170")}  # espeak-ng voice, words per minute
RATE = 8000
SILENCE = 300  # a sample below this (of 32767) at either end is trimmed


def synthesise(espeak: str, text: str, lang: str, out: Path) -> None:
    voice, speed = VOICES[lang]
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"
        subprocess.run([espeak, "-v", voice, "-s", speed, "-w", str(raw), text], check=True)  # noqa: S603
        with wave.open(str(raw), "rb") as w:
            rate = w.getframerate()
            samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32)
    loud = np.nonzero(np.abs(samples) > SILENCE)[0]
    if loud.size:
        samples = samples[max(0, loud[0] - 200) : loud[-1] + 200]
    if rate != RATE:  # espeak-ng speaks at 22050 Hz: average pairs (a low-pass) and keep every other
        n = int(len(samples) * RATE / rate)
        kernel = np.ones(max(1, round(rate / RATE))) / max(1, round(rate / RATE))
        smooth = np.convolve(samples, kernel, mode="same")
        samples = np.interp(np.linspace(0, len(smooth) - 1, n), np.arange(len(smooth)), smooth)
    out.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(out), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(np.clip(samples, -32768, 32767).astype("<i2").tobytes())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--missing", action="store_true", help="only make clips that have no file yet")
    args = parser.parse_args()
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        print("espeak-ng is not installed: apt install espeak-ng", file=sys.stderr)
        return 2
    made = removed = 0
    for lang, clips in every_clip().items():
        folder = ROOT / lang
        for clip, words in clips.items():
            out = folder / f"{clip}.wav"
            if args.missing and out.is_file():
                continue
            synthesise(espeak, words, lang, out)
            made += 1
        for stale in folder.glob("*.wav"):
            if stale.stem not in clips:
                stale.unlink()
                removed += 1
    size = sum(f.stat().st_size for f in ROOT.rglob("*.wav"))
    print(f"made {made} clips, removed {removed} stale ones; {size / 1e6:.1f} MB in {ROOT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
