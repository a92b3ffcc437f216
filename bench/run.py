"""The benchmark suite: runs every figure of issue 8 and writes ``bench/RESULTS.md``.

    .venv/bin/python bench/run.py            # everything, full sizes (make bench)
    .venv/bin/python bench/run.py --quick    # small sizes, for iterating (minutes, not half an hour)
    .venv/bin/python bench/run.py --only decode,api
    .venv/bin/python bench/run.py --list

Each figure is one script in ``bench/``, run as its own process with the exact
command shown in the results; each leaves a JSON summary that this file
gathers. A figure that fails is reported as failed, and the others still run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BENCH, RESULTS, Summary, goals_table, machine


@dataclass(frozen=True)
class Figure:
    key: str
    title: str
    script: str
    full: tuple[str, ...]
    quick: tuple[str, ...]


FIGURES = [
    Figure("decode", "1. Decode", "decode.py", ("--severity", "kiosk"), ("--per-category", "8", "--no-code", "8")),
    Figure("scan_unlock", "2. Scan to unlock", "scan_unlock.py", ("--trials", "100"), ("--trials", "10")),
    Figure("ingest_e2e", "3. Ingest end to end", "ingest_e2e.py", ("--events", "20000"), ("--events", "2000")),
    Figure("ingest", "3b. Ingest: the database step", "ingest.py", ("--events", "10000"), ("--events", "2000")),
    Figure(
        "town",
        "4. Town scale",
        "town.py",
        ("--sizes", "10,100,1000", "--seconds", "60", "--burst", "20"),
        ("--sizes", "10,100", "--seconds", "8", "--burst", "5"),
    ),
    Figure(
        "api", "5. API", "api.py", ("--stations", "1000", "--seconds", "10"), ("--stations", "1000", "--seconds", "2")
    ),
    Figure("edge_footprint", "6. Edge footprint", "edge_footprint.py", ("--seconds", "20"), ("--seconds", "4")),
    Figure("catchup", "7. Offline catch-up", "catchup.py", ("--events", "10000"), ("--events", "1000")),
]


def demote(markdown: str) -> str:
    """Headings inside a figure's report go under the figure's own heading."""
    return "\n".join("###" + ln[1:] if ln.startswith("## ") else ln for ln in markdown.splitlines())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes: checks the suite, figures are rough")
    ap.add_argument("--only", default="", help="comma-separated figure keys (see --list)")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--out", type=Path, default=BENCH / "RESULTS.md")
    args = ap.parse_args()
    if args.list:
        for f in FIGURES:
            print(f"{f.key:16} {f.title}: bench/{f.script} {' '.join(f.full)}")
        return
    keys = [k for k in args.only.split(",") if k]
    unknown = set(keys) - {f.key for f in FIGURES}
    if unknown:
        ap.error(f"unknown figure(s): {', '.join(sorted(unknown))}; see --list")
    chosen = [f for f in FIGURES if not keys or f.key in keys]
    started = datetime.now(UTC)
    before = machine()
    sections, summary_rows = [], []
    for f in chosen:
        json_path = RESULTS / f"{f.key}.json"
        json_path.unlink(missing_ok=True)
        argv = ["bench/" + f.script, *(f.quick if args.quick else f.full), "--json", f"bench/results/{f.key}.json"]
        if RESULTS != BENCH / "results":
            argv[-1] = str(json_path)
        shown = ".venv/bin/python " + " ".join(argv)
        print(f"== {f.title}: {shown}", file=sys.stderr, flush=True)
        t0 = time.monotonic()
        proc = subprocess.run([sys.executable, *argv], cwd=BENCH.parent, capture_output=True, text=True)
        took = time.monotonic() - t0
        if proc.returncode != 0 or not json_path.exists():
            tail = (proc.stderr or proc.stdout)[-3000:]
            sections.append(
                f"## {f.title}\n\nCommand: `{shown}`\n\n**Failed** (exit {proc.returncode}):\n\n```\n{tail}\n```\n"
            )
            summary_rows.append(f"| {f.title} | failed | | |")
            print(tail, file=sys.stderr)
            continue
        s = Summary.read(json_path)
        body = demote(s.report)
        if s.goals and "## Goals" not in s.report:
            body += "\n\n" + goals_table(s.goals)
        elif any(g.why for g in s.goals):  # the report has its own goals table: add only the reasons
            body += "\n\nGoals missed:\n\n" + "\n".join(f"- {g.goal}: {g.why}" for g in s.goals if g.why)
        sections.append(f"## {f.title}\n\nCommand: `{shown}` ({took:.0f} s)\n\n{body.strip()}\n")
        for g in s.goals:
            met = "—" if g.met is None else ("yes" if g.met else "**no**")
            summary_rows.append(f"| {f.title} | {g.goal} | {g.measured} | {met} |")
    after = machine()
    head = [
        "# Benchmark results",
        "",
        f"One run of `{'make bench' if not args.quick and not keys else '.venv/bin/python ' + ' '.join(sys.argv)}`, "
        f"{started:%Y-%m-%d %H:%M} UTC, {(datetime.now(UTC) - started).total_seconds() / 60:.0f} minutes"
        + (" (**--quick**: small sizes, rough figures)" if args.quick else "")
        + ".",
        "",
        "Machine: "
        f"{before['cpu']}, {before['cores']} cores (shared with other work: see the load averages), {before['ram']} "
        f"RAM, {before['os']}; Python {before['python']}; Mosquitto {before['mosquitto']}; {before['postgresql']}. "
        f"Load average at the start {before['load']}, at the end {after['load']}.",
        "",
        "Every figure is measured against a baseline in the same run (its ratio is in the table); the goals come "
        "from issues 4 and 8. How each is measured is under its heading, with the exact command (run from the "
        "repository root). No figure here is asserted in a test.",
        "",
        "## Summary",
        "",
        "| figure | goal | measured | met |",
        "|---|---|---|---|",
        *summary_rows,
        "",
    ]
    text = "\n".join(head) + "\n" + "\n".join(sections)
    # A before/after comparison of two commits (bench/ingest_ab.py) is kept with every later run.
    compared = RESULTS / "ingest_ab.md"
    if compared.exists() and args.out == BENCH / "RESULTS.md":
        text += "\n" + compared.read_text().replace("# ", "## ", 1)
    args.out.write_text(text)
    print(f"written to {args.out}", file=sys.stderr)
    if os.environ.get("BENCH_PRINT"):
        print(text)


if __name__ == "__main__":
    main()
