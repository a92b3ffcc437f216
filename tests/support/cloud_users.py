"""Signed-in callers for cloud API tests: a staff-side user by password, a resident by SMS code."""

from __future__ import annotations

import json
import re
from pathlib import Path

from fastapi.testclient import TestClient
from sqlmodel import Session

from helmet_cloud.adapters.database import make_engine
from helmet_cloud.domain.phones import phone_number
from helmet_cloud.domain.security import hash_password
from helmet_cloud.models import User
from helmet_cloud.settings import CloudSettings


def user_headers(api: TestClient, settings: CloudSettings, *, role: str, username: str = "") -> dict[str, str]:
    """Create a user with ``role`` (technician, staff, admin) and sign them in."""
    username = username or f"{role}-user"
    engine = make_engine(settings.database_url)
    with Session(engine) as s:
        s.add(User(username=username, password_hash=hash_password("s3cret pass"), role=role))
        s.commit()
    engine.dispose()
    resp = api.post("/api/auth/login", json={"username": username, "password": "s3cret pass"})
    assert resp.status_code == 200, resp.text
    return {"Authorization": f"Bearer {resp.json()['token']}"}


def resident_headers(api: TestClient, settings: CloudSettings, phone: str) -> dict[str, str]:
    """Sign a resident in with the one-time code the SMS file backend received."""
    assert api.post("/api/auth/code", json={"phone": phone}).status_code == 202
    sms = [json.loads(m) for m in Path(settings.sms_backend.removeprefix("file:")).read_text().splitlines()]
    normalised = phone_number(phone, settings.default_phone_region)  # the number as the cloud stores it: E.164
    code = re.search(r"\d{6}", [m for m in sms if m["phone"] == normalised][-1]["text"])
    assert code is not None
    resp = api.post("/api/auth/verify", json={"phone": phone, "code": code.group(0)})
    assert resp.status_code == 200, resp.text
    return {"Authorization": f"Bearer {resp.json()['token']}"}
