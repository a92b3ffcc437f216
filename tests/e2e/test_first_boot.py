"""First boot: a Pi with no identity reads the enrolment QR with its camera, enrols over HTTPS, and then runs
as the locker, ignoring the same QR.

Real processes: the cloud under uvicorn with TLS (a throwaway CA the Pi trusts through ``SSL_CERT_FILE``),
Mosquitto, and ``helmet-edge run`` itself. The camera is OpenCV reading an image file (a frame with the QR
shown on a screen); the pins are gpiozero's mock pins.
"""

from __future__ import annotations

import os
import signal
import ssl
import stat
import subprocess
import sys
import time
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from support.certs import certificates
from support.processes import CloudProcess
from support.waiting import eventually

from helmet_edge import enroll
from helmet_protocol.enrolment import read_bundle_file
from helmet_sim.broker import Broker, free_port
from helmet_sim.camera import render_qr

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


def test_an_unenrolled_pi_enrols_from_the_qr_at_its_camera(tmp_path: Path, mosquitto: Broker) -> None:
    certificates(tmp_path)
    port = free_port()
    cloud = CloudProcess(
        tmp_path / "cloud", mosquitto.port, f"sqlite:///{tmp_path}/cloud.db", HELMET_PUBLIC_HOST=f"127.0.0.1:{port}"
    )
    cloud.add_user("tom", "admin", "correct horse")
    base = f"https://127.0.0.1:{port}"
    trust = ssl.create_default_context(cafile=str(tmp_path / "ca.crt"))
    http = httpx.Client(base_url=base, verify=trust, timeout=10)  # before the server: nothing to leak if it fails
    tls = ["--ssl-keyfile", str(tmp_path / "broker.key"), "--ssl-certfile", str(tmp_path / "broker.crt")]
    server = subprocess.Popen(
        [BIN / "uvicorn", "helmet_cloud.app:create_app", "--factory", "--host", "127.0.0.1", "--port", str(port), *tls],
        env=cloud.env,
        stdout=cloud.log,
        stderr=subprocess.STDOUT,
    )
    pi: subprocess.Popen[str] | None = None
    try:
        eventually(lambda: _ready(http), timeout=30)
        token = http.post("/api/auth/login", json={"username": "tom", "password": "correct horse"}).json()["token"]
        auth = {"Authorization": f"Bearer {token}"}
        assert http.post("/api/stations", headers=auth, json={"id": "ST-1", "name": "Hall", "lat": 47, "lon": 8})
        assert http.post("/api/lockers", headers=auth, json={"id": "LK-0001", "station_id": "ST-1", "slot_count": 6})
        issued = http.post("/api/lockers/LK-0001/enrolment", headers=auth).json()
        assert issued["qr_text"] == f"HSE1:{base}#{issued['code']}"
        # What the camera sees: the technician's phone showing the enrolment QR.
        frame = np.full((480, 640), 170, dtype=np.uint8)
        code = render_qr(issued["qr_text"], module_px=5)
        frame[40 : 40 + code.shape[0], 60 : 60 + code.shape[1]] = code
        cv2.imwrite(str(tmp_path / "camera.png"), frame)
        data = tmp_path / "pi"
        config = tmp_path / "config.toml"
        config.write_text(f'data_dir = "{data}"\n[camera]\ndevice = "{tmp_path / "camera.png"}"\nfps = 5\n')
        env = {**os.environ, "SSL_CERT_FILE": str(tmp_path / "ca.crt"), "GPIOZERO_PIN_FACTORY": "mock"}
        first = subprocess.run(
            [BIN / "helmet-edge", "run", "--config", str(config)], env=env, capture_output=True, text=True, timeout=90
        )
        assert first.returncode == 0, first.stderr
        assert "not enrolled: hold the enrolment QR code to the camera" in first.stderr
        assert "enrolled as LK-0001; restarting as the locker" in first.stderr
        path = enroll.bundle_path(data)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert read_bundle_file(path.read_bytes()).locker_id == "LK-0001"
        again = http.post("/api/enrolment", json={"code": issued["code"]})
        assert again.status_code == 410  # the code was spent by the Pi
        # Started again (systemd would), it is the locker: online in the cloud, and it ignores the same QR.
        pi = subprocess.Popen(
            [BIN / "helmet-edge", "run", "--config", str(config)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        eventually(lambda: http.get("/api/lockers/LK-0001", headers=auth).json()["online"], timeout=30)
        time.sleep(1.5)  # a few camera frames with the enrolment QR in them
        pi.send_signal(signal.SIGTERM)
        _, log = pi.communicate(timeout=30)
        assert pi.returncode == 0, log
        assert "ignored a QR code: unrecognised text" in log
        assert "not enrolled" not in log
    finally:
        if pi is not None and pi.poll() is None:
            pi.kill()
            pi.communicate()
        http.close()
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        cloud.log.close()


def _ready(http: httpx.Client) -> bool:
    try:
        return http.get("/ready").status_code == 200
    except httpx.TransportError:
        return False
