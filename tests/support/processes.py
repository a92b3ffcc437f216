"""Run the cloud and simulated lockers as separate processes, the way they run for real."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from helmet_sim.broker import free_port
from helmet_sim.cloud_client import CloudClient

BIN = Path(sys.executable).parent


class CloudProcess:
    def __init__(self, workdir: Path, mqtt_port: int, database_url: str, **env: str) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.sms_file = workdir / "sms.jsonl"
        self.env = {
            **os.environ,
            "HELMET_DATABASE_URL": database_url,
            "HELMET_DATA_DIR": str(workdir),
            "HELMET_MQTT_PORT": str(mqtt_port),
            "HELMET_SMS_BACKEND": f"file:{self.sms_file}",
            **env,
        }
        self.log = (workdir / "cloud.log").open("w")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add_user(self, username: str, role: str, password: str) -> None:
        subprocess.run(
            [BIN / "helmet-cloud", "add-user", username, "--role", role, "--password", password],
            env=self.env,
            check=True,
            capture_output=True,
            timeout=60,
        )

    def start(self, *options: str) -> CloudClient:
        """``helmet-cloud serve`` with ``options`` (``--proxy-headers``), once it answers ``/ready``."""
        self.proc = subprocess.Popen(
            [BIN / "helmet-cloud", "serve", "--port", str(self.port), *options],
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        client = CloudClient(self.url)
        client.wait_ready(30)
        return client

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()  # reaped: a killed process not waited for is still "running" to Popen
        self.log.close()


class LockerProcess:
    """``helmet-sim locker``: the real edge code on simulated pins and camera, in its own process."""

    def __init__(self, locker_id: str, workdir: Path, mqtt_port: int, extra_args: list[str] | None = None) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.log = (workdir / f"{locker_id}.log").open("a")
        self.proc = subprocess.Popen(
            [
                BIN / "helmet-sim",
                "locker",
                "--locker-id",
                locker_id,
                "--data-dir",
                str(workdir / locker_id),
                "--mqtt-port",
                str(mqtt_port),
                *(extra_args or []),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            bufsize=1,
        )
        hello = self._read()
        assert hello.get("ready"), hello
        self.face_url: str | None = hello.get("face_url")  # with --face-port: the locker's screen

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"locker process ended (exit {self.proc.poll()}); see {self.log.name}")
        result: dict[str, Any] = json.loads(line)
        return result

    def send(self, **request: Any) -> None:
        """Start a request without waiting for its answer (to pull the plug in the middle of it)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()

    def ask(self, **request: Any) -> dict[str, Any]:
        self.send(**request)
        return self._read()

    def ask_line(self, line: str) -> dict[str, Any]:
        """Send one raw line (a malformed request, say) and read its answer."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self._read()

    def kill(self) -> None:
        """A power cut: SIGKILL, no chance to clean up."""
        self.proc.kill()
        self._reap()

    def wait_for_keys(self, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ask(op="state").get("pass_keys"):
                return
            time.sleep(0.2)
        raise TimeoutError("locker never received its config with pass keys")

    def stop(self) -> None:
        try:
            self.ask(op="quit")
            self.proc.wait(timeout=10)
        except (RuntimeError, BrokenPipeError, subprocess.TimeoutExpired):
            self.proc.kill()
        self._reap()

    def _reap(self) -> None:
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()
        self.log.close()
