"""Scan to unlock: from the frame holding a pass entering the pipeline to the lock pin going high.

The real locker service (``helmet_sim.rig.SimLocker``: the edge code on
gpiozero mock pins with the simulator's virtual camera, 15 fps) with its pass
keys from a retained config on a private Mosquitto. Each trial holds a fresh
signed resident pass (quantity 1) to the camera. Timestamps:

- frame in: the camera's ``read()`` returns the first frame with the code
  (the service's loop then decodes, verifies the signature, commits the event
  and slot change to its SQLite outbox with synchronous FULL, and energises the lock);
- pin high: gpiozero's ``MockPin`` records the monotonic time of each change
  (``_last_change``, set with the state; its ``states`` history keeps the deltas).

The slot relocks by itself after a short unlock timeout (the door is never
opened), so trials repeat on the same helmets. Two decoder set-ups: the
cascade in-process (the simulator's) and the cascade in a supervised child
process (what ``helmet-edge run`` uses on a Pi). Baseline, same frames, same
run: raw zxing-cpp decoding the captured frame.

    .venv/bin/python bench/scan_unlock.py [--trials 100]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Goal, Summary, command_line, finish, pct, publish_locker_config

from helmet_edge.config import TimingSettings
from helmet_edge.decoder_cascade import CascadeDecoder
from helmet_edge.decoder_process import SupervisedDecoder
from helmet_edge.decoder_zxing import ZxingDecoder
from helmet_protocol.passes import Role, issue_pass
from helmet_sim.broker import start_mosquitto
from helmet_sim.rig import SimLocker

FPS = 15
# Single-core speed of this machine's server cores against a Raspberry Pi (Cortex-A72 at 1.8 GHz, Pi 4;
# Cortex-A76 at 2.4 GHz, Pi 5), from public single-thread benchmark results (Geekbench 6 single-core:
# Pi 4 ~ 250-300, Pi 5 ~ 750-850, a server x86 core ~ 1,300-2,000): roughly 4-6x and 1.5-2.5x.
PI4, PI5 = 5.0, 2.0


class Trial:
    def __init__(self) -> None:
        self.shown = 0.0
        self.frame_in = 0.0
        self.frame: Any = None


def a_pass(key: Ed25519PrivateKey, role: Role) -> str:
    return issue_pass(
        signing_key=key,
        kid="k1",
        holder_id="R-1",
        quantity=1,
        role=role,
        now=datetime.now(UTC),
        ttl=timedelta(minutes=5),
    )


def run_rig(decoder_name: str, trials: int, tmp: Path, port: int, key: Ed25519PrivateKey) -> list[dict[str, Any]]:
    rig = SimLocker(
        "LK-0001", data_dir=tmp / decoder_name, mqtt_port=port, fps=FPS, timing=TimingSettings(unlock_timeout_s=0.3)
    )
    if decoder_name == "supervised":
        rig.service.decoder = SupervisedDecoder()
    current = Trial()
    read = rig.camera.read

    def timed_read() -> Any:
        frame = read()
        if current.shown and not current.frame_in and frame is not None and frame is not rig.camera._blank:
            current.frame_in = time.monotonic()
            current.frame = frame
        return frame

    rig.camera.read = timed_read  # type: ignore[method-assign]
    rig.start()
    out: list[dict[str, Any]] = []
    try:
        deadline = time.monotonic() + 20
        while not rig.service.rules.keys:
            if time.monotonic() > deadline:
                raise TimeoutError("the locker never got its pass keys")
            time.sleep(0.05)
        # A technician stocks two helmets: maintenance pass, then each helmet's sticker.
        rig.show(a_pass(key, Role.TECHNICIAN), seconds=0.6)
        for helmet in ("H-1", "H-2"):
            rig.insert(helmet, pause=0.1)
        time.sleep(0.5)
        for i in range(trials + 3):  # the first 3 warm up
            text = a_pass(key, Role.RESIDENT)
            current.__init__()  # type: ignore[misc]
            rig.camera.show(text)  # renders the frame, then puts it in front of the camera
            current.shown = time.monotonic()
            opened = None
            deadline = time.monotonic() + 5
            while opened is None and time.monotonic() < deadline:
                opened = next((s for s in rig.physical.slots.values() if s.released), None)
                time.sleep(0.0005)
            rig.camera.clear()
            if opened is None:
                raise RuntimeError(f"trial {i}: no slot opened")
            pin_high = rig.physical.factory.pin(opened.pins.lock)._last_change  # monotonic, set with the state
            if i >= 3:
                out.append(
                    {
                        "frame_to_pin_ms": (pin_high - current.frame_in) * 1000,
                        "show_to_pin_ms": (pin_high - current.shown) * 1000,
                        "frame": current.frame,
                    }
                )
            while any(s.released for s in rig.physical.slots.values()):  # relocks after the unlock timeout
                time.sleep(0.01)
            time.sleep(0.05)
    finally:
        rig.stop()
    return out


def decode_times(frames: list[Any]) -> tuple[list[float], list[float]]:
    raw, cascade = ZxingDecoder(), CascadeDecoder()
    raw_ms, cascade_ms = [], []
    for frame in frames:
        for dec, into in ((raw, raw_ms), (cascade, cascade_ms)):
            t0 = time.perf_counter()
            assert dec.decode(frame), "the captured frame did not decode"
            into.append((time.perf_counter() - t0) * 1000)
    return raw_ms, cascade_ms


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    key = Ed25519PrivateKey.generate()
    results: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        broker = start_mosquitto(tmp / "broker")
        try:
            publish_locker_config(broker.port, key)
            for name in ("in-process", "supervised"):
                print(f"scan to unlock: {name}", file=sys.stderr)
                results[name] = run_rig(name, args.trials, tmp, broker.port, key)
        finally:
            broker.stop()
    frames = [t["frame"] for t in results["in-process"]]
    raw_ms, cascade_ms = decode_times(frames)
    lines = [
        f"{args.trials} trials per set-up after 3 warm-up ones; a fresh signed pass each (version-8-size QR on "
        f"a phone screen in a 640x480 frame), camera at {FPS} fps, service loop at 50 Hz. *frame -> pin*: the "
        "frame holding the code is read -> the lock pin goes high (the figure asked for); *shown -> pin* adds "
        f"the wait for the next frame (up to 1/{FPS} s).",
        "",
        "| | p50 (ms) | p99 (ms) | max (ms) |",
        "|---|---:|---:|---:|",
    ]
    for name, rows in results.items():
        f2p = [r["frame_to_pin_ms"] for r in rows]
        s2p = [r["show_to_pin_ms"] for r in rows]
        lines.append(
            f"| frame -> pin, cascade {name} | {statistics.median(f2p):.1f} | {pct(f2p, 99):.1f} | {max(f2p):.1f} |"
        )
        lines.append(
            f"| shown -> pin, cascade {name} | {statistics.median(s2p):.1f} | {pct(s2p, 99):.1f} | {max(s2p):.1f} |"
        )
    lines.append(
        f"| baseline: raw zxing-cpp on the same frames | {statistics.median(raw_ms):.1f} | {pct(raw_ms, 99):.1f} | "
        f"{max(raw_ms):.1f} |"
    )
    lines.append(
        f"| the cascade alone on the same frames | {statistics.median(cascade_ms):.1f} | {pct(cascade_ms, 99):.1f} | "
        f"{max(cascade_ms):.1f} |"
    )
    sup = [r["frame_to_pin_ms"] for r in results["supervised"]]
    inp = [r["frame_to_pin_ms"] for r in results["in-process"]]
    p99 = max(pct(sup, 99), pct(inp, 99))
    raw_p50 = statistics.median(raw_ms)
    lines += [
        "",
        f"Ratio to the baseline: frame -> pin p50 is {statistics.median(inp) / raw_p50:.1f}x (in-process) and "
        f"{statistics.median(sup) / raw_p50:.1f}x (supervised) a raw zxing-cpp decode of the same frame; the rest is "
        "the pass check (Ed25519), the durable commit (SQLite, synchronous FULL) and the loop's turn.",
        "",
        f"On a Pi: nearly all of this is CPU work in one thread, so it scales with single-core speed. Public "
        f"single-thread results put a Pi 4 (Cortex-A72, 1.8 GHz) at roughly 1/4-1/6 of a server x86 core and a "
        f"Pi 5 (Cortex-A76, 2.4 GHz) at roughly 1/1.5-1/2.5, and a microSD fsync is slower than this disk. "
        f"Scaling the worse p99 here ({p99:.0f} ms) by {PI4:g}x and {PI5:g}x: about {p99 * PI4:.0f} ms on a Pi 4 and "
        f"{p99 * PI5:.0f} ms on a Pi 5 (an estimate, not a measurement).",
    ]
    goals = [
        Goal("frame -> pin p99 under 150 ms on this machine", f"{p99:.1f} ms (worse of the two set-ups)", p99 < 150),
        Goal(
            "the same on a Pi (estimated, not measured)",
            f"Pi 4 ~{p99 * PI4:.0f} ms, Pi 5 ~{p99 * PI5:.0f} ms",
            None,
        ),
    ]
    data = {
        name: {
            "p50": statistics.median([r["frame_to_pin_ms"] for r in rows]),
            "p99": pct([r["frame_to_pin_ms"] for r in rows], 99),
        }
        for name, rows in results.items()
    }
    data["raw_zxing"] = {"p50": raw_p50, "p99": pct(raw_ms, 99)}
    finish(Summary("Scan to unlock", command_line(), "\n".join(lines) + "\n", goals, data), "scan_unlock", args.json)


if __name__ == "__main__":
    main()
