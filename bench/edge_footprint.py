"""Edge footprint: memory and CPU of one locker scanning 15 fps, idle and during a borrow, without its screen and
with the screen open in Chromium; and how soon the page shows a decision.

Runs the real edge code as its own process (``helmet-sim locker``: the locker
service on mock pins, with the simulator's virtual camera rendering frames) on a
private Mosquitto, samples its RSS and CPU time from /proc, and writes
bench/results/edge_footprint.md.

    .venv/bin/python bench/edge_footprint.py [--seconds 20]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, Goal, Summary, publish_locker_config
from support.processes import LockerProcess

from helmet_protocol.passes import Role, issue_pass
from helmet_sim.broker import start_mosquitto

TICK = os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def sample(pid: int, seconds: float) -> tuple[float, float, float]:
    """Peak RSS (MB), mean RSS (MB), CPU (% of one core) over ``seconds``."""
    c0, t0, rss = cpu_s(pid), time.monotonic(), []
    while time.monotonic() - t0 < seconds:
        rss.append(rss_mb(pid))
        time.sleep(0.25)
    cpu = (cpu_s(pid) - c0) / (time.monotonic() - t0) * 100
    return max(rss), sum(rss) / len(rss), cpu


Phase = tuple[float, float, float]  # peak RSS MB, mean RSS MB, CPU % of one core


def measure(key: Ed25519PrivateKey, seconds: float, *, page: bool) -> tuple[Phase, Phase, list[float]]:
    """One locker process: idle, then borrows back to back; with ``page``, its screen open in Chromium.

    Returns the two phases and, with the page, how long after each borrow's decision the page showed it (ms).
    """
    latencies: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        broker = start_mosquitto(Path(tmp) / "broker")
        publish_locker_config(broker.port, key)
        extra = ["--fps", "15", "--no-cable", *(["--face-port", "0"] if page else [])]
        locker = LockerProcess("LK-0001", Path(tmp) / "lockers", broker.port, extra_args=extra)
        kiosk = Kiosk(locker.face_url) if page and locker.face_url else None
        try:
            locker.wait_for_keys()
            pid = locker.proc.pid

            def a_pass(role: Role = Role.RESIDENT) -> str:
                return issue_pass(
                    signing_key=key,
                    kid="k1",
                    holder_id="R-1",
                    quantity=1,
                    role=role,
                    now=datetime.now(UTC),
                    ttl=timedelta(minutes=5),
                )

            locker.ask(op="show", text=a_pass(Role.TECHNICIAN), seconds=0.6)
            for h in ("H-1", "H-2", "H-3", "H-4"):
                locker.ask(op="insert", helmet_id=h)
            time.sleep(2)
            idle = sample(pid, seconds)
            t0, busy = time.monotonic(), []
            while time.monotonic() - t0 < seconds:
                locker.send(op="show", text=a_pass(), seconds=1.0)
                locker.send(op="take", count=1, timeout=3)
                busy.append(sample(pid, 3.0))
                locker._read(), locker._read()
                state = locker.ask(op="state")
                back = [h for h in ("H-1", "H-2", "H-3", "H-4") if h not in state["helmets"].values()]
                time.sleep(4.1)
                if back:
                    locker.ask(op="insert", helmet_id=back[0])
            during = (max(b[0] for b in busy), sum(b[1] for b in busy) / len(busy), sum(b[2] for b in busy) / len(busy))
            if kiosk is not None:
                latencies = kiosk.borrow_latencies()
        finally:
            if kiosk is not None:
                kiosk.close()
            locker.stop()
            broker.stop()
    return idle, during, latencies


class Kiosk:
    """The locker's screen in Debian's headless Chromium, as the kiosk shows it (800x480)."""

    def __init__(self, url: str) -> None:
        from playwright.sync_api import sync_playwright

        self._pw = sync_playwright().start()
        self._browser = self._pw.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"]
        )
        self.page = self._browser.new_page(viewport={"width": 800, "height": 480})
        self.page.goto(url)
        self.page.wait_for_function("document.body.dataset.version !== undefined")

    def borrow_latencies(self) -> list[float]:
        log = self.page.evaluate("window.faceLog")
        return [e["shown_ms"] - e["at_ms"] for e in log if e["key"] in ("borrow.take", "return.put")]

    def close(self) -> None:
        self._browser.close()
        self._pw.stop()


def row(name: str, phase: Phase) -> str:
    return f"| {name} | {phase[0]:.0f} MB | {phase[1]:.0f} MB | {phase[2]:.0f} % |"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--json", type=Path, default=None, help="also write a summary for bench/run.py")
    args = ap.parse_args()
    key = Ed25519PrivateKey.generate()
    base_idle, base_during, _ = measure(key, args.seconds, page=False)  # today's locker: no screen
    idle, during, latencies = measure(key, args.seconds, page=True)
    cpu_model = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        platform.processor(),
    )
    peak, base_peak = max(idle[0], during[0]), max(base_idle[0], base_during[0])
    lat = f"p50 {pct(latencies, 0.5):.0f} ms, p99 {pct(latencies, 0.99):.0f} ms, max {max(latencies, default=0):.0f} ms"
    report = f"""# Edge footprint

Machine: {os.cpu_count()} cores, {cpu_model}, Python {platform.python_version()}.
Command: `.venv/bin/python bench/edge_footprint.py --seconds {args.seconds:g}` ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC).

One locker process (`helmet-sim locker --fps 15`: the real locker service on mock
pins; the simulator's virtual camera renders each 640x480 frame in the same
process, so these figures include that rendering), measured twice in this run:
without its screen (the locker before issue 18: the baseline) and with its screen
served (`--face-port`) and open in a headless Chromium at 800x480 (the browser's own
memory is not the locker's and is not counted). Goal: under 150 MB RSS while scanning
15 fps with the page open.

| phase | peak RSS | mean RSS | CPU (% of one core) |
|---|---|---|---|
{row("no screen: scanning, nothing in front of the camera", base_idle)}
{row("no screen: borrows and returns, back to back", base_during)}
{row("screen open: scanning, nothing in front of the camera", idle)}
{row("screen open: borrows and returns, back to back", during)}

Goal under 150 MB with the page open: {"met" if peak < 150 else "MISSED"} (peak {peak:.0f} MB, {peak / 150:.2f} of the
budget; {peak / base_peak:.2f}x the locker without a screen, {base_peak:.0f} MB).

From a decision to the page showing its doors ({len(latencies)} borrows and returns, the page's clock
against the locker's, one machine): {lat}. Goal: within 500 ms.
"""
    if args.json is not None:
        Summary(
            "Edge footprint",
            f".venv/bin/python bench/edge_footprint.py --seconds {args.seconds:g}",
            "\n".join(ln for ln in report.split("\n")[2:] if not ln.startswith("Command: `")),
            [
                Goal(
                    "under 150 MB RSS while scanning 15 fps, the screen open",
                    f"peak {peak:.0f} MB ({peak / 150:.2f} of it; {peak / base_peak:.2f}x without a screen)",
                    peak < 150,
                ),
                Goal("decision to door numbers on the page within 500 ms (p99)", lat, pct(latencies, 0.99) < 500),
                Goal(
                    "CPU at 15 fps (no goal set; reported)",
                    f"idle {idle[2]:.0f} %, during borrows {during[2]:.0f} % of one core (no screen: "
                    f"{base_idle[2]:.0f} %, {base_during[2]:.0f} %)",
                    None,
                ),
            ],
            {
                "idle": idle,
                "during": during,
                "base_idle": base_idle,
                "base_during": base_during,
                "latencies_ms": latencies,
            },
        ).write(args.json)
    out = RESULTS / "edge_footprint.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(report)
    print(report)


if __name__ == "__main__":
    main()
