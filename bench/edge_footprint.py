"""Edge footprint: memory and CPU of one locker scanning 15 fps, idle and during a borrow.

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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--json", type=Path, default=None, help="also write a summary for bench/run.py")
    args = ap.parse_args()
    key = Ed25519PrivateKey.generate()
    with tempfile.TemporaryDirectory() as tmp:
        broker = start_mosquitto(Path(tmp) / "broker")
        publish_locker_config(broker.port, key)
        locker = LockerProcess("LK-0001", Path(tmp) / "lockers", broker.port, extra_args=["--fps", "15", "--no-cable"])
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
            idle = sample(pid, args.seconds)
            t0, busy = time.monotonic(), []
            while time.monotonic() - t0 < args.seconds:
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
        finally:
            locker.stop()
            broker.stop()
    cpu_model = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        platform.processor(),
    )
    report = f"""# Edge footprint

Machine: {os.cpu_count()} cores, {cpu_model}, Python {platform.python_version()}.
Command: `.venv/bin/python bench/edge_footprint.py --seconds {args.seconds:g}` ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC).

One locker process (`helmet-sim locker --fps 15`: the real locker service on mock
pins; the simulator's virtual camera renders each 640x480 frame in the same
process, so these figures include that rendering). Goal: under 150 MB RSS while
scanning 15 fps.

| phase | peak RSS | mean RSS | CPU (% of one core) |
|---|---|---|---|
| scanning, nothing in front of the camera | {idle[0]:.0f} MB | {idle[1]:.0f} MB | {idle[2]:.0f} % |
| borrows and returns, back to back | {during[0]:.0f} MB | {during[1]:.0f} MB | {during[2]:.0f} % |

Goal under 150 MB: {"met" if max(idle[0], during[0]) < 150 else "MISSED"} (peak {max(idle[0], during[0]):.0f} MB,
{max(idle[0], during[0]) / 150:.2f} of the budget).
"""
    if args.json is not None:
        peak = max(idle[0], during[0])
        Summary(
            "Edge footprint",
            f".venv/bin/python bench/edge_footprint.py --seconds {args.seconds:g}",
            "\n".join(ln for ln in report.split("\n")[2:] if not ln.startswith("Command: `")),
            [
                Goal(
                    "under 150 MB RSS while scanning 15 fps", f"peak {peak:.0f} MB ({peak / 150:.2f} of it)", peak < 150
                ),
                Goal(
                    "CPU at 15 fps (no goal set; reported)",
                    f"idle {idle[2]:.0f} %, during borrows {during[2]:.0f} % of one core",
                    None,
                ),
            ],
            {"idle": idle, "during": during},
        ).write(args.json)
    out = RESULTS / "edge_footprint.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(report)
    print(report)


if __name__ == "__main__":
    main()
