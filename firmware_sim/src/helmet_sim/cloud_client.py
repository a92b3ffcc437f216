"""The cloud's public HTTP API as the simulator's people use it (phone page, technician, staff)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import httpx


class CloudError(RuntimeError):
    pass


class CloudClient:
    def __init__(self, base_url: str, *, token: str | None = None, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = httpx.Client(base_url=self.base_url, timeout=timeout)
        self.token = token

    def close(self) -> None:
        self.http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        resp = self.http.request(method, path, headers=headers, **kwargs)
        if resp.status_code >= 400:
            raise CloudError(f"{method} {path}: {resp.status_code} {resp.text}")
        return resp.json()

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.http.get("/ready").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise CloudError(f"cloud at {self.base_url} not ready after {timeout} s")

    # -- staff and technicians ---------------------------------------------------

    def login(self, username: str, password: str) -> CloudClient:
        self.token = self._call("POST", "/api/auth/login", json={"username": username, "password": password})["token"]
        return self

    def create_station(self, station_id: str, name: str, lat: float, lon: float, **extra: Any) -> Any:
        return self._call(
            "POST", "/api/stations", json={"id": station_id, "name": name, "lat": lat, "lon": lon, **extra}
        )

    def register_locker(self, locker_id: str, station_id: str, slot_count: int = 6) -> Any:
        return self._call(
            "POST", "/api/lockers", json={"id": locker_id, "station_id": station_id, "slot_count": slot_count}
        )

    def locker(self, locker_id: str) -> Any:
        return self._call("GET", f"/api/lockers/{locker_id}")

    def technician_pass(self) -> str:
        return str(self._call("POST", "/api/passes/technician")["text"])

    # -- residents -----------------------------------------------------------------

    def sign_in_resident(self, phone: str, sms_file: Path, timeout: float = 10.0) -> CloudClient:
        """Ask for a code, read it from the simulated phone's inbox, sign in."""
        self._call("POST", "/api/auth/code", json={"phone": phone})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = _latest_code(sms_file, phone)
            if code:
                self.token = self._call("POST", "/api/auth/verify", json={"phone": phone, "code": code})["token"]
                return self
            time.sleep(0.05)
        raise CloudError(f"no code arrived for {phone}")

    def request_pass(self, quantity: int, station_id: str | None = None) -> Any:
        return self._call("POST", "/api/passes", json={"quantity": quantity, "station_id": station_id})

    def loans(self, status: str | None = None) -> Any:
        return self._call("GET", "/api/loans", params={"status": status} if status else None)

    # -- everyone ------------------------------------------------------------------

    def stations(self) -> Any:
        return self._call("GET", "/api/stations")

    def station(self, station_id: str) -> Any:
        return self._call("GET", f"/api/stations/{station_id}")


def _latest_code(sms_file: Path, phone: str) -> str | None:
    if not sms_file.exists():
        return None
    code = None
    for line in sms_file.read_text().splitlines():
        msg = json.loads(line)
        if msg["phone"] == phone:
            found = re.search(r"\b(\d{6})\b", msg["text"])
            code = found.group(1) if found else code
    return code
