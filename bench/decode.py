"""Decoder benchmark: the kiosk's cascade against the raw libraries, on the same frames, in the same run.

    .venv/bin/python bench/decode.py [--severity kiosk|harsh] [--seed 0] [--per-category 60] [--no-code 60]

Frames come from ``bench/frames.py`` (seeded, so every run sees the same set).
Each frame goes to every decoder in turn, so machine noise hits them alike.
Prints the table and writes it to ``bench/results/decode-<severity>.md``. The
cascade was tuned on ``--seed 1`` of the harsh set; the default seed 0 is a set
it was never tuned on. ``kiosk`` severity is calibrated so that raw zxing-cpp
reads about what the issue measured (~97%); ``harsh`` is the far end.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
from common import Goal, Summary
from frames import CATEGORIES, SEVERITIES, Sample, frame_set

from helmet_edge import decoder_pyzbar
from helmet_edge.decoder_cascade import CascadeDecoder
from helmet_edge.decoder_process import SupervisedDecoder
from helmet_edge.decoder_zxing import ZxingDecoder
from helmet_edge.ports import Frame

RESULTS = common.RESULTS / "decode.md"


def opencv(detector: cv2.QRCodeDetector | cv2.QRCodeDetectorAruco) -> Callable[[Frame], list[bytes]]:
    def decode(frame: Frame) -> list[bytes]:
        text, _, _ = detector.detectAndDecode(frame)
        return [text.encode("utf-8")] if text else []

    return decode


@dataclass
class Tally:
    read: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    wrong: int = 0
    ms: list[float] = field(default_factory=list)
    none_ms: list[float] = field(default_factory=list)
    misses: list[Sample] = field(default_factory=list)


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def machine() -> str:
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"nproc {len(os.sched_getaffinity(0))}, {model}, {platform.platform()}, load average {load}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-category", type=int, default=60)
    parser.add_argument("--no-code", type=int, default=60)
    parser.add_argument("--severity", choices=sorted(SEVERITIES), default="kiosk")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write a summary for bench/run.py")
    args = parser.parse_args()
    args.out = args.out or RESULTS.with_name(f"decode-{args.severity}.md")

    t0 = time.perf_counter()
    samples = frame_set(args.seed, args.per_category, args.no_code, args.severity)
    print(f"{len(samples)} frames generated in {time.perf_counter() - t0:.0f} s", file=sys.stderr)

    decoders: dict[str, Callable[[Frame], list[bytes]]] = {"zxing-cpp (raw)": ZxingDecoder().decode}
    if decoder_pyzbar.available():
        decoders["pyzbar, QR only (raw)"] = decoder_pyzbar.PyzbarDecoder().decode
    decoders["OpenCV QRCodeDetector"] = opencv(cv2.QRCodeDetector())
    decoders["OpenCV QRCodeDetectorAruco"] = opencv(cv2.QRCodeDetectorAruco())
    cascade = CascadeDecoder()
    decoders["cascade (ours)"] = cascade.decode
    supervised = SupervisedDecoder()
    decoders["cascade in SupervisedDecoder"] = supervised.decode

    # Warm up (imports, allocations, the cascade's learned step costs) on frames of another seed.
    for sample in frame_set(args.seed + 1000, 2, 10, args.severity):
        for decode in decoders.values():
            decode(sample.frame)

    tallies = {name: Tally() for name in decoders}
    for sample in samples:
        want = sample.text.encode() if sample.text is not None else None
        for name, decode in decoders.items():
            began = time.perf_counter()
            found = decode(sample.frame)
            ms = (time.perf_counter() - began) * 1000
            t = tallies[name]
            t.wrong += any(f != want for f in found)
            if want is None:
                t.none_ms.append(ms)
            else:
                t.ms.append(ms)
                if want in found:
                    t.read[sample.category] += 1
                else:
                    t.misses.append(sample)
    supervised.close()

    report = render(args, samples, tallies, cascade)
    if args.json is not None:
        summarise(report, tallies, samples, cascade).write(args.json)
    print(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    print(f"written to {args.out}", file=sys.stderr)


def render(args: argparse.Namespace, samples: list[Sample], tallies: dict[str, Tally], cascade: CascadeDecoder) -> str:
    totals: dict[str, int] = defaultdict(int)
    for s in samples:
        if s.text is not None:
            totals[s.category] += 1
    n_code = sum(totals.values())
    names = list(tallies)
    lines = [
        "# QR decoding on degraded kiosk frames",
        "",
        f"Command: `{Path(sys.executable).name} {' '.join(sys.argv)}` (from the repository root)",
        "",
        f"Machine: {machine()}; Python {platform.python_version()}; zxing-cpp {version('zxing-cpp')}, "
        f"opencv-python-headless {version('opencv-python-headless')}, pyzbar {version('pyzbar')}"
        + ("" if decoder_pyzbar.available() else " (zbar library missing: pyzbar not run)"),
        "",
        f"Frames: seed {args.seed}; {args.per_category} per category (640x480 grayscale, half signed `HP1:` passes "
        f"of ~180 characters on phones, half helmet sticker URLs; inverted: passes only) and {args.no_code} "
        "frames with no code. How they are made: `bench/frames.py`.",
        "",
        "The cascade's steps and their order were chosen on seed 1; the default seed 0 is a set it was not tuned "
        "on. Timings are wall-clock on a shared machine: the load average above is the one at the end of the run.",
        "",
        "## Read rate",
        "",
        "| category | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for c in CATEGORIES:
        cells = [f"{tallies[n].read[c] / totals[c]:.1%}" for n in names]
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    overall = [f"**{sum(tallies[n].read.values()) / n_code:.2%}**" for n in names]
    lines.append(f"| **all {n_code} codes** | " + " | ".join(overall) + " |")
    lines.append("| wrong payloads | " + " | ".join(str(tallies[n].wrong) for n in names) + " |")
    lines += ["", "## Time per frame (ms)", "", "| | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    rows = {
        "median, frames with a code": lambda t: statistics.median(t.ms),
        "p95, frames with a code": lambda t: pct(t.ms, 95),
        "max, frames with a code": lambda t: max(t.ms),
        "median, no code": lambda t: statistics.median(t.none_ms),
        "p95, no code": lambda t: pct(t.none_ms, 95),
        "max, no code": lambda t: max(t.none_ms),
    }
    for label, fn in rows.items():
        lines.append(f"| {label} | " + " | ".join(f"{fn(tallies[n]):.2f}" for n in names) + " |")

    ours, raw = tallies["cascade (ours)"], tallies["zxing-cpp (raw)"]
    rate = sum(ours.read.values()) / n_code
    ratio = statistics.median(ours.ms) / statistics.median(raw.ms)
    none_median, none_p95 = statistics.median(ours.none_ms), pct(ours.none_ms, 95)
    lines += [
        "",
        "## Goals",
        "",
        "| goal | measured | met |",
        "|---|---|---|",
        f"| at least 99% of codes read | {rate:.2%} | {'yes' if rate >= 0.99 else 'no'} |",
        f"| median at most 1.5x raw zxing-cpp's (same run) | {ratio:.2f}x ({statistics.median(ours.ms):.2f} / "
        f"{statistics.median(raw.ms):.2f} ms) | {'yes' if ratio <= 1.5 else 'no'} |",
        f"| a frame with no code under 5 ms | median {none_median:.2f} ms, p95 {none_p95:.2f} ms, "
        f"max {max(ours.none_ms):.2f} ms | {'yes' if none_p95 < 5 else 'no'} (p95) |",
        "",
        "## Which step read the frames the cascade read",
        "",
        "| step | frames | learned cost (ms) |",
        "|---|---:|---:|",
    ]
    for step, wins in cascade.wins.items():
        lines.append(f"| {step} | {wins} | {cascade.cost_ms[step]:.2f} |")
    lines += ["", f"## Codes the cascade missed ({len(ours.misses)})", ""]
    lines += [f"- {s.category}: {s.detail}" for s in ours.misses] or ["none"]
    return "\n".join(lines) + "\n"


def summarise(report: str, tallies: dict[str, Tally], samples: list[Sample], cascade: CascadeDecoder) -> Summary:
    n_code = sum(1 for s in samples if s.text is not None)
    ours, raw = tallies["cascade (ours)"], tallies["zxing-cpp (raw)"]
    rate = sum(ours.read.values()) / n_code
    ratio = statistics.median(ours.ms) / statistics.median(raw.ms)
    rates = {name: sum(t.read.values()) / n_code for name, t in tallies.items()}
    why = ""
    if rate < 0.99:
        missed: dict[str, int] = defaultdict(int)
        for sample in ours.misses:
            missed[sample.category] += 1
        why = (
            f"{0.99 - rate:.2%} short: {len(ours.misses)} of {n_code} codes missed ("
            + ", ".join(f"{c} {k}" for c, k in sorted(missed.items(), key=lambda x: -x[1]))
            + ")"
        )
        never = [step for step, took in cascade.cost_ms.items() if took == 0.0]
        if never:
            why += (
                f". Steps that never ran: {', '.join(never)}. The cascade skips a step that would overrun its "
                f"{cascade.budget_ms:.0f} ms budget, measured in wall-clock time with costs learned from recent "
                f"runs, so on this loaded machine (load average {os.getloadavg()[0]:.1f} on "
                f"{len(os.sched_getaffinity(0))} cores) the first steps use it up"
            )
    goals = [
        Goal(
            "at least 99% of codes read",
            f"{rate:.2%} (raw zxing-cpp {rates['zxing-cpp (raw)']:.2%})",
            rate >= 0.99,
            why,
        ),
        Goal("median at most 1.5x raw zxing-cpp's", f"{ratio:.2f}x", ratio <= 1.5),
    ]
    body = report.split("\n", 2)[2]  # without the heading and the command: run.py adds its own
    body = "\n".join(ln for ln in body.splitlines() if not ln.startswith("Command: `"))
    return Summary(
        "Decode", f".venv/bin/python {' '.join(sys.argv)}", body, goals, {"read": rates, "median_ratio": ratio}
    )


if __name__ == "__main__":
    main()
