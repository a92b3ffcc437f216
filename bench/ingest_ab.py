"""The ingest database step on two commits, in one run: did a change make it slower?

Checks both commits out into temporary worktrees and runs *this* checkout's
``bench/ingest.py`` against each one's ``cloud/src`` and ``protocol/src`` in
turn (before, after, before, after, ...), so both see the same machine, load
and script. Reports each commit's median events/s per database and the ratio
after / before. Writes bench/results/ingest_ab.md.

    .venv/bin/python bench/ingest_ab.py --before 466a5fd --after HEAD [--events 10000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
ROW = re.compile(r"^\| (SQLite|PostgreSQL) \| ([\d,]+) \| ([\d,]+) \| ([\d.]+) \|$", re.M)


GIT = shutil.which("git") or "git"


def rev(name: str) -> str:
    done = subprocess.run([GIT, "rev-parse", "--short", name], cwd=ROOT, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def run_once(tree: Path, events: int) -> dict[str, tuple[float, float]]:
    """{database: (ours events/s, raw insert events/s)} for one run against ``tree``'s sources."""
    env = os.environ | {"PYTHONPATH": f"{tree / 'cloud' / 'src'}:{tree / 'protocol' / 'src'}"}
    out = subprocess.run(
        [sys.executable, str(BENCH / "ingest.py"), "--events", str(events), "--no-report"],
        env=env,
        cwd=tree,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    found = {m[1]: (float(m[2].replace(",", "")), float(m[3].replace(",", ""))) for m in ROW.finditer(out)}
    if set(found) != {"SQLite", "PostgreSQL"}:
        raise RuntimeError(f"no figures in the output of bench/ingest.py on {tree}:\n{out}")
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", required=True)
    ap.add_argument("--after", default="HEAD")
    ap.add_argument("--events", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--note", default="", help="what changed between the commits, for the report")
    args = ap.parse_args()
    commits = {"before": rev(args.before), "after": rev(args.after)}
    runs: dict[str, list[dict[str, tuple[float, float]]]] = {"before": [], "after": []}
    with tempfile.TemporaryDirectory() as tmp:
        trees = {}
        for side, commit in commits.items():
            trees[side] = Path(tmp) / side
            subprocess.run([GIT, "worktree", "add", "--detach", "-q", str(trees[side]), commit], cwd=ROOT, check=True)
        try:
            for n in range(args.rounds):
                for side in ("before", "after"):
                    runs[side].append(run_once(trees[side], args.events))
                    print(f"round {n + 1} {side} ({commits[side]}): {runs[side][-1]}", flush=True)
        finally:
            for tree in trees.values():
                subprocess.run([GIT, "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False)
    lines = [
        "# Ingest database step: before and after a change",
        "",
        f"Command: `.venv/bin/python bench/ingest_ab.py --before {args.before} --after {args.after} "
        f"--events {args.events} --rounds {args.rounds}` ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}). The same `bench/ingest.py` ran on "
        f"{commits['before']} (before) and {commits['after']} (after), alternating, {args.rounds} rounds each; "
        "medians. The raw insert is each run's own baseline (it does not depend on the commit): the last two "
        "columns divide by it, so a machine that slowed down between runs does not show as a slower commit.",
        *(["", args.note] if args.note else []),
        "",
        "| database | before (events/s) | after (events/s) | after / before | ours / raw, before | ours / raw, after |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for db in ("SQLite", "PostgreSQL"):
        b = statistics.median(r[db][0] for r in runs["before"])
        a = statistics.median(r[db][0] for r in runs["after"])
        # Each run against its own raw insert: what the machine's load did to both cancels out.
        nb = statistics.median(r[db][0] / r[db][1] for r in runs["before"])
        na = statistics.median(r[db][0] / r[db][1] for r in runs["after"])
        lines.append(f"| {db} | {b:,.0f} | {a:,.0f} | {a / b:.2f} | {nb:.3f} | {na:.3f} |")
    report = "\n".join(lines) + "\n"
    (BENCH / "results" / "ingest_ab.md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
