"""Every benchmark script still runs, with tiny sizes, and reports the figures it promises.

These check the scripts cannot rot; they never assert a speed (figures are in bench/RESULTS.md).
Results go to a temporary directory (BENCH_RESULTS_DIR), never over the committed ones.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
needs_mosquitto = pytest.mark.skipif(
    shutil.which("mosquitto") is None and not Path("/usr/sbin/mosquitto").exists(), reason="mosquitto not installed"
)


def run(tmp_path: Path, script: str, *args: str, timeout: float = 240) -> dict[str, Any]:
    out = tmp_path / f"{script}.json"
    proc = subprocess.run(
        [sys.executable, f"bench/{script}.py", *args, "--json", str(out)],
        cwd=ROOT,
        env={**os.environ, "BENCH_RESULTS_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary: dict[str, Any] = json.loads(out.read_text())
    assert summary["command"].startswith(f".venv/bin/python bench/{script}.py")
    assert summary["goals"], "every figure states its goals"
    return summary


def finite(x: object) -> bool:
    return isinstance(x, int | float) and math.isfinite(x) and x >= 0


def test_decode_reports_read_rates_and_the_ratio_to_raw_zxing(tmp_path: Path) -> None:
    s = run(tmp_path, "decode", "--per-category", "1", "--no-code", "2")
    assert {"zxing-cpp (raw)", "cascade (ours)", "OpenCV QRCodeDetector"} <= set(s["data"]["read"])
    assert finite(s["data"]["median_ratio"])
    assert "| median, no code |" in s["report"]


@needs_mosquitto
@pytest.mark.slow
def test_scan_to_unlock_times_frame_to_pin_against_raw_decoding(tmp_path: Path) -> None:
    s = run(tmp_path, "scan_unlock", "--trials", "2")
    for setup in ("in-process", "supervised", "raw_zxing"):
        assert finite(s["data"][setup]["p50"]) and finite(s["data"][setup]["p99"])
    assert "Pi 4" in s["report"]


@needs_mosquitto
@pytest.mark.postgres
@pytest.mark.slow
def test_ingest_end_to_end_compares_with_a_bare_subscriber(tmp_path: Path) -> None:
    s = run(tmp_path, "ingest_e2e", "--events", "200")
    assert set(s["data"]) == {
        f"{db}, {feed}" for db in ("PostgreSQL", "SQLite") for feed in ("queued stream", "live publisher")
    }
    assert all(finite(v["ours"]) and finite(v["bare"]) and finite(v["ratio"]) for v in s["data"].values())


@pytest.mark.postgres
def test_ingest_database_step_compares_with_a_raw_insert(tmp_path: Path) -> None:
    s = run(tmp_path, "ingest", "--events", "200")
    assert set(s["data"]) == {"PostgreSQL", "SQLite"}
    assert all(finite(v["ours"]) and finite(v["raw"]) for v in s["data"].values())


@needs_mosquitto
@pytest.mark.postgres
@pytest.mark.slow
def test_town_reports_rate_latency_and_broker_and_cloud_cost_per_size(tmp_path: Path) -> None:
    s = run(tmp_path, "town", "--sizes", "2,3", "--seconds", "2", "--burst", "2", timeout=280)
    sizes = s["data"]["sizes"]
    assert [r["lockers"] for r in sizes] == [2, 3]
    for r in sizes:
        assert r["burst_events"] == 2 * r["lockers"]
        assert all(finite(r[k]) for k in ("burst_rate", "broker_cpu", "cloud_cpu", "broker_mb", "cloud_mb"))
        assert r["lost_probes"] == 0


@needs_mosquitto
@pytest.mark.postgres
@pytest.mark.slow
def test_api_compares_each_endpoint_with_static_json_of_its_size(tmp_path: Path) -> None:
    s = run(tmp_path, "api", "--stations", "20", "--clients", "4", "--seconds", "0.5")
    assert len(s["data"]) == 4
    assert all(r["requests"] > 0 and r["errors"] == 0 for r in s["data"].values())
    assert [g["goal"] for g in s["goals"]] == [
        "`GET /api/stations/{id}` (random of all): at least 0.3 of the static-JSON rate",
        "`GET /gbfs/station_status.json`: at least 0.3 of the static-JSON rate",
    ]


@needs_mosquitto
@pytest.mark.slow
def test_edge_footprint_reports_memory_and_cpu(tmp_path: Path) -> None:
    s = run(tmp_path, "edge_footprint", "--seconds", "1")
    idle_peak, _, idle_cpu = s["data"]["idle"]
    assert idle_peak > 10 and finite(idle_cpu)


@needs_mosquitto
@pytest.mark.postgres
@pytest.mark.slow
def test_catchup_drains_the_outbox_and_compares_with_a_plain_publisher(tmp_path: Path) -> None:
    s = run(tmp_path, "catchup", "--events", "200")
    assert finite(s["data"]["rate"]) and finite(s["data"]["baseline_rate"])
    assert "Outbox after the drain: 0 events" in s["report"]


def test_suite_runner_lists_figures_and_refuses_unknown_ones(tmp_path: Path) -> None:
    listed = subprocess.run(
        [sys.executable, "bench/run.py", "--list"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    for key in ("decode", "scan_unlock", "ingest_e2e", "ingest", "town", "api", "edge_footprint", "catchup"):
        assert f"\n{key} " in f"\n{listed}"
    bad = subprocess.run([sys.executable, "bench/run.py", "--only", "nope"], cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode != 0 and "unknown figure(s): nope" in bad.stderr


def test_suite_runner_writes_results_with_machine_command_and_goals(tmp_path: Path) -> None:
    out = tmp_path / "RESULTS.md"
    subprocess.run(
        [sys.executable, "bench/run.py", "--quick", "--only", "decode", "--out", str(out)],
        cwd=ROOT,
        env={**os.environ, "BENCH_RESULTS_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        check=True,
        timeout=240,
    )
    text = out.read_text()
    assert "Machine: " in text and " cores" in text and "Mosquitto " in text
    assert "| 1. Decode | at least 99% of codes read |" in text
    assert "Command: `.venv/bin/python bench/decode.py" in text
