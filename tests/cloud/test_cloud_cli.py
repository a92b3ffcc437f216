"""``helmet-cloud`` on the command line: structured logs and clear errors for bad settings."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.processes import BIN
from support.waiting import eventually

from helmet_sim.broker import free_port


def run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "HELMET_DATABASE_URL": f"sqlite:///{tmp_path}/cloud.db", **env}
    return subprocess.run([BIN / "helmet-cloud", *args], env=full, capture_output=True, text=True, timeout=60)


def test_json_logs_are_one_object_per_line(tmp_path: Path) -> None:
    done = run(tmp_path, "migrate", HELMET_LOG_FORMAT="json")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.strip()]
    assert lines and all({"ts", "level", "logger", "msg"} <= set(line) for line in lines)


def test_a_bad_setting_stops_the_command_with_a_clear_message(tmp_path: Path) -> None:
    done = run(tmp_path, "migrate", HELMET_LOG_FORMAT="xml")
    assert done.returncode == 2
    assert "log_format" in done.stderr and "bad setting" in done.stderr
    assert not (tmp_path / "cloud.db").exists()  # nothing was done


# -- the first hour: one line for what a new user gets wrong ----------------------------------------------


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    """The command's whole error output, which must be a single ``error: ...`` line."""
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr[-3000:]
    return lines[0]


@pytest.mark.postgres
def test_a_database_that_refuses_the_login_is_one_line_naming_the_setting(tmp_path: Path) -> None:
    url = "postgresql+psycopg://nosuchrole:hunter2@127.0.0.1:5432/test"
    for args in (["add-user", "bob", "--role", "staff", "--password", "correct horse battery"], ["migrate"]):
        done = run(tmp_path, *args, HELMET_DATABASE_URL=url)
        line = one_line(done)
        assert done.returncode == 2
        assert 'role "nosuchrole" does not exist' in line and "HELMET_DATABASE_URL" in line, line
        assert "hunter2" not in line  # the password is never printed


def test_serve_on_a_database_it_cannot_reach_stops_with_one_line(tmp_path: Path) -> None:
    port = free_port()
    done = run(
        tmp_path, "serve", "--port", str(free_port()), HELMET_DATABASE_URL=f"postgresql+psycopg://u@127.0.0.1:{port}/x"
    )
    assert done.returncode == 2
    line = one_line(done)
    assert f"127.0.0.1:{port}" in line and "Connection refused" in line and "HELMET_DATABASE_URL" in line


def test_a_database_url_of_an_unknown_kind_is_one_line(tmp_path: Path) -> None:
    done = run(tmp_path, "add-user", "bob", "--role", "staff", "--password", "correct horse battery",
               HELMET_DATABASE_URL="postgress://db/helmets")  # fmt: skip
    assert done.returncode == 2
    assert one_line(done) == (
        "error: HELMET_DATABASE_URL=postgress://db/helmets: unknown database kind "
        "(Can't load plugin: sqlalchemy.dialects:postgress)"
    )


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("x", "at least 12 characters"),
        ("password1234", "very common password"),
        ("bobbobbobbob", "too weak"),
    ],
)
def test_a_weak_staff_password_is_refused_and_no_account_is_made(tmp_path: Path, password: str, why: str) -> None:
    done = run(tmp_path, "add-user", "bob", "--role", "staff", "--password", password)
    assert done.returncode == 2
    assert why in one_line(done)
    assert not (tmp_path / "cloud.db").exists()  # refused before anything was touched


def test_a_strong_password_makes_the_account_and_the_prompt_asks_twice(tmp_path: Path) -> None:
    done = subprocess.run(
        [BIN / "helmet-cloud", "add-user", "ana", "--role", "admin"],
        env={**os.environ, "HELMET_DATABASE_URL": f"sqlite:///{tmp_path}/cloud.db"},
        input="tram stop lantern 7\ntram stop lantern 7\n",
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "user ana (admin) saved" in done.stdout
    asked = done.stdout + done.stderr  # getpass may write its prompt to either
    assert asked.count("Password:") == 1 and "Repeat for confirmation" in asked


def test_help_texts_show_plain_metavars() -> None:
    """typer 0.26-0.29 printed ``--help <bool>``, ``{username}`` and ``--password <str> [required]``."""
    for cli, args in (("helmet-cloud", ["add-user", "--help"]), ("helmet-edge", ["scan", "--help"])):
        done = subprocess.run([BIN / cli, *args], capture_output=True, text=True, timeout=60,
                              env={**os.environ, "COLUMNS": "100"})  # fmt: skip
        assert done.returncode == 0
        text = done.stdout
        assert "<bool>" not in text and "<str>" not in text and "{" not in text, text
    assert re.search(r"--password\s+PASSWORD\s+for scripts", run_help("helmet-cloud", "add-user")), "password"
    assert "FILES..." in run_help("helmet-edge", "scan")


def run_help(cli: str, command: str) -> str:
    done = subprocess.run([BIN / cli, command, "--help"], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "COLUMNS": "100"})  # fmt: skip
    return done.stdout


def test_an_ingest_worker_that_cannot_reach_the_broker_says_so_and_shows_it_in_health(tmp_path: Path) -> None:
    broker_port, http_port = free_port(), free_port()
    env = {**os.environ, "HELMET_DATABASE_URL": f"sqlite:///{tmp_path}/cloud.db", "HELMET_MQTT_PORT": str(broker_port)}
    proc = subprocess.Popen(
        [BIN / "helmet-cloud", "ingest", "--metrics-port", str(http_port)],
        env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        health = eventually(lambda: _get_json(f"http://127.0.0.1:{http_port}/health"), timeout=30)
        mqtt = eventually(
            lambda: (
                (h := _get_json(f"http://127.0.0.1:{http_port}/health"))
                and h["ingest_mqtt"].get("problem")
                and h["ingest_mqtt"]
            ),
            timeout=30,
        )
        assert health["status"] == "ok"
        assert mqtt["connected"] is False and mqtt["problem"] == "Connection refused"
        time.sleep(4)  # paho retries every second or two meanwhile
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    said = [line for line in err.splitlines() if "MQTT broker" in line]
    # Said once at once (and again only at widening intervals: the first repeat is after 10 s).
    assert len(said) == 1, err
    assert f"cannot reach the MQTT broker at 127.0.0.1:{broker_port}: Connection refused; retrying" in said[0]


def _get_json(url: str) -> dict[str, Any] | None:
    try:
        resp = httpx.get(url, timeout=2)
    except httpx.TransportError:
        return None
    return resp.json() if resp.status_code == 200 else None


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("postgresql://u@db:fivefourthreetwo/x", "not a database URL"),
        ("mysql://u@db/helmets", "its database driver is not installed"),
    ],
)
def test_other_unusable_database_urls_are_one_line_too(tmp_path: Path, url: str, said: str) -> None:
    done = run(tmp_path, "migrate", HELMET_DATABASE_URL=url)
    assert done.returncode == 2
    assert said in one_line(done)
