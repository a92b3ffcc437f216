"""The cloud's public HTTP API as the simulator's people use it (phone page, technician, staff)."""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path
from typing import Any

import httpx


class CloudError(RuntimeError):
    pass


class CloudClient:
    def __init__(
        self, base_url: str, *, token: str | None = None, timeout: float = 10.0, http: httpx.Client | None = None
    ) -> None:
        """With ``http``, share one connection pool (a town of thousands of residents); it is not closed here."""
        self.base_url = base_url.rstrip("/")
        self._owns_http = http is None
        self.http = http or httpx.Client(base_url=self.base_url, timeout=timeout)
        self.token = token
        self.subject: str | None = None  # the signed-in account's id (a resident's R-...)

    def close(self) -> None:
        if self._owns_http:
            self.http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        resp = self.http.request(method, path, headers=headers, **kwargs)
        if resp.status_code >= 400:
            raise CloudError(f"{method} {path}: {resp.status_code} {resp.text}")
        return resp.json()

    def is_ready(self) -> bool:
        try:
            return self.http.get("/ready").status_code == 200
        except httpx.TransportError:
            return False

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.is_ready():
                return
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

    def set_town_zone(self, town_id: str, zone: str) -> Any:
        """The clock the town's pages show times on (an IANA zone)."""
        return self._call("PATCH", f"/api/towns/{town_id}", json={"timezone": zone})

    def register_locker(
        self, locker_id: str, station_id: str, slot_count: int = 6, pin_profile: str = "pi-gpio-6"
    ) -> Any:
        body = {"id": locker_id, "station_id": station_id, "slot_count": slot_count, "pin_profile": pin_profile}
        return self._call("POST", "/api/lockers", json=body)

    def alerts(self, **filters: str) -> list[Any]:
        """Every alert matching ``filters`` (staff), all pages."""
        return self._pages("/api/alerts", filters)

    def all_loans(self, status: str | None = None) -> list[Any]:
        """Every loan in town (staff), all pages."""
        return self._pages("/api/loans", {"status": status} if status else {})

    def _pages(self, path: str, params: dict[str, str], size: int = 1000) -> list[Any]:
        rows: list[Any] = []
        while True:
            page = self._call("GET", path, params={**params, "limit": size, "offset": len(rows)})
            rows.extend(page)
            if len(page) < size:
                return rows

    def events(self, **filters: str) -> list[Any]:
        """Every stored event matching ``filters`` (staff), following the cursor."""
        rows: list[Any] = []
        cursor = None
        while True:
            params = {**filters, "limit": "1000", **({"cursor": cursor} if cursor else {})}
            page = self._call("GET", "/api/events", params=params)
            rows.extend(page["events"])
            cursor = page["next_cursor"]
            if not cursor:
                return rows

    def locker(self, locker_id: str) -> Any:
        return self._call("GET", f"/api/lockers/{locker_id}")

    def technician_pass(self) -> str:
        return str(self._call("POST", "/api/passes/technician")["text"])

    # -- residents -----------------------------------------------------------------

    def sign_in_resident(self, phone: str, sms: Path | SmsInbox, timeout: float = 10.0) -> CloudClient:
        """Ask for a code, read it from the simulated phone's inbox, sign in."""
        inbox = sms if isinstance(sms, SmsInbox) else SmsInbox(sms)
        self._call("POST", "/api/auth/code", json={"phone": phone})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = inbox.code(phone)
            if code:
                out = self._call("POST", "/api/auth/verify", json={"phone": phone, "code": code})
                self.token, self.subject = out["token"], out["subject"]
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


class SmsInbox:
    """Every simulated phone's text messages: the cloud's ``file:`` SMS backend, read as it grows.

    Thread-safe; reads only the new part of the file, so thousands of residents signing in
    cost one pass over it. A code is handed out once (the cloud deletes it when used).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._codes: dict[str, str] = {}
        self._lock = threading.Lock()

    def skip_existing(self) -> None:
        """Read only messages sent from now on (a kept town's phones hold the old ones, all used or stale)."""
        with self._lock:
            self._offset = self.path.stat().st_size if self.path.exists() else 0
            self._codes.clear()

    def code(self, phone: str) -> str | None:
        with self._lock:
            if self.path.exists():
                with self.path.open("rb") as f:
                    f.seek(self._offset)
                    data = f.read()
                complete = data[: data.rfind(b"\n") + 1]  # a line still being written waits for the next call
                self._offset += len(complete)
                for line in complete.decode().splitlines():
                    msg = json.loads(line)
                    found = re.search(r"\b(\d{6})\b", msg["text"])
                    if found:
                        self._codes[msg["phone"]] = found.group(1)
            return self._codes.pop(phone, None)
