"""Fixtures for the pages: a cloud app on a real database and broker, a signed-in browser-like client."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from helmet_cloud.adapters.database import make_engine
from helmet_cloud.app import create_app
from helmet_cloud.domain.security import hash_password
from helmet_cloud.models import User
from helmet_cloud.settings import CloudSettings

PASSWORD = "s3cret pass"


def _suite_missing() -> Callable[[str], None]:
    """The suite's ``_missing`` (skip on a laptop, fail in CI), from tests/conftest.py, which this directory's
    conftest shadows as a module name."""
    spec = importlib.util.spec_from_file_location("suite_conftest", Path(__file__).parents[1] / "conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    found: Callable[[str], None] = module._missing
    return found


missing = _suite_missing()

CHROMIUM = Path("/usr/bin/chromium")  # Debian's; Playwright never downloads a browser here
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One Chromium for every browser test a process runs: Playwright's sync API allows one at a time."""
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        missing(f"{CHROMIUM} is not installed (apt-get install chromium)")
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def api(settings: CloudSettings) -> Iterator[TestClient]:
    """The suite's ``api``, but redirects are answers to check, not to follow; over HTTPS, as browsers reach the
    pages in production, so the Secure sign-in cookies are sent back."""
    with TestClient(create_app(settings), base_url="https://testserver", follow_redirects=False) as client:
        yield client


def add_user(settings: CloudSettings, username: str, role: str) -> None:
    engine = make_engine(settings.database_url)
    with Session(engine) as s:
        s.add(User(username=username, password_hash=hash_password(PASSWORD), role=role))
        s.commit()
    engine.dispose()


def web_login(client: TestClient, settings: CloudSettings, role: str) -> str:
    """Sign in through the staff login form; returns the CSRF value the pages' forms carry."""
    add_user(settings, f"{role}-web", role)
    resp = client.post("/staff/login", data={"username": f"{role}-web", "password": PASSWORD, "next": "/staff/"})
    assert resp.status_code == 303, resp.text
    from helmet_cloud.http.web.session import STAFF_COOKIE, csrf_for

    return csrf_for(client.cookies[STAFF_COOKIE])
