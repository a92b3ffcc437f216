"""HTTP at the door (issue 16, findings 5 and 6): whose client address and scheme the cloud believes, Secure
sign-in cookies, the body limit and 422 answers that do not repeat the request.

Where the proxy headers matter the cloud is a real ``helmet-cloud serve`` (uvicorn) on 127.0.0.1, the peer a
local attacker or a proxy on the same host would be; the rest goes through the app in process.
"""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session
from support.processes import CloudProcess

from helmet_cloud.app import create_app
from helmet_cloud.domain.security import hash_password
from helmet_cloud.http.web.session import STAFF_COOKIE
from helmet_cloud.models import User
from helmet_cloud.settings import CloudSettings
from helmet_sim.broker import Broker

UNKNOWN_CODE = {"code": "0000-0000-0000"}
LIMIT = 128 * 1024  # max_body_bytes' default


@pytest.fixture
def cloud_process(tmp_path: Path, mosquitto: Broker) -> Iterator[CloudProcess]:
    """A real cloud process allowing 3 enrolment attempts per client address (started by each test)."""
    cloud = CloudProcess(
        tmp_path / "cloud",
        mosquitto.port,
        f"sqlite:///{tmp_path}/cloud.db",
        HELMET_ENROLMENT_ATTEMPTS_PER_10_MINUTES="3",
    )
    yield cloud
    cloud.stop()


def _enrol_from(url: str, forwarded_for: str) -> int:
    headers = {"X-Forwarded-For": forwarded_for, "X-Forwarded-Proto": "https"}
    return httpx.post(f"{url}/api/enrolment", json=UNKNOWN_CODE, headers=headers, timeout=10).status_code


def test_forwarded_headers_from_loopback_are_not_believed_unless_configured(cloud_process: CloudProcess) -> None:
    """uvicorn believes X-Forwarded-For from 127.0.0.1 by default: a rotating header got a fresh limit each time."""
    cloud_process.start().close()
    answers = [_enrol_from(cloud_process.url, f"203.0.113.{i}") for i in range(1, 6)]
    assert answers == [404, 404, 404, 429, 429]


def test_with_proxy_headers_the_proxys_forwarded_address_is_the_client(cloud_process: CloudProcess) -> None:
    """``--proxy-headers`` (docs/deployment.md): from a peer in forwarded_allow_ips (127.0.0.1 by default) the
    forwarded address is the client's, so each client has its own limit and one client cannot exhaust another's."""
    cloud_process.start("--proxy-headers").close()
    first = [_enrol_from(cloud_process.url, "203.0.113.7") for _ in range(4)]
    other = _enrol_from(cloud_process.url, "198.51.100.9")
    # A proxy appends the peer it saw: the address nearest the proxy that is not a trusted proxy is the client.
    spoofed = _enrol_from(cloud_process.url, "192.0.2.1, 203.0.113.7")
    assert first == [404, 404, 404, 429]
    assert other == 404
    assert spoofed == 429


def test_proxy_headers_from_a_peer_not_listed_are_ignored(cloud_process: CloudProcess) -> None:
    cloud_process.env["HELMET_FORWARDED_ALLOW_IPS"] = "10.9.9.9, 192.168.0.0/16"
    cloud_process.start("--proxy-headers").close()
    answers = [_enrol_from(cloud_process.url, f"203.0.113.{i}") for i in range(1, 5)]
    assert answers == [404, 404, 404, 429]


def test_serve_refuses_a_proxy_address_uvicorn_would_quietly_never_match(tmp_path: Path) -> None:
    import subprocess
    import sys

    env = {"HELMET_DATABASE_URL": f"sqlite:///{tmp_path}/c.db", "HELMET_FORWARDED_ALLOW_IPS": "10.0.0.1/8", "PATH": ""}
    done = subprocess.run(
        [Path(sys.executable).parent / "helmet-cloud", "serve", "--proxy-headers"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "'10.0.0.1/8' is not an IP address or network" in done.stderr


def _raw_post(port: int, head: bytes, chunks: Iterator[bytes]) -> tuple[bytes, int]:
    """Send a request by hand, stop sending once the server has answered; the answer and the bytes sent."""
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head)
        for chunk in chunks:
            if select.select([sock], [], [], 0)[0]:
                break
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        answer = b""
        deadline = time.monotonic() + 10
        while b"\r\n\r\n" not in answer and time.monotonic() < deadline:
            try:
                part = sock.recv(65536)
            except ConnectionResetError:
                break
            if not part:
                break
            answer += part
    return answer, sent


def test_a_big_body_is_refused_by_the_real_server_with_or_without_content_length(
    cloud_process: CloudProcess,
) -> None:
    """A 50 MiB unauthenticated login was read whole. Declared, it is refused before a byte of it is read;
    chunked, reading stops past the limit."""
    cloud_process.start().close()
    size = 50 * 1024 * 1024
    declared = (
        f"POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {size}\r\n\r\n"
    ).encode()
    answer, _ = _raw_post(cloud_process.port, declared, iter([b'{"username": "' + b"a" * 65536]))
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]

    chunked = (
        b"POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    piece = b"a" * 65536
    frames = (b"%x\r\n%s\r\n" % (len(piece), piece) for _ in range(size // len(piece)))
    answer, sent = _raw_post(cloud_process.port, chunked, frames)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert sent < 8 * 1024 * 1024  # answered long before the 50 MiB were sent
    assert cloud_process.proc is not None and cloud_process.proc.poll() is None


def test_every_route_refuses_a_body_over_the_limit(api: TestClient) -> None:
    big = b'{"phone": "' + b"1" * LIMIT + b'"}'
    for path in ("/api/auth/code", "/api/auth/login", "/api/enrolment", "/staff/login", "/api/stations"):
        resp = api.post(path, content=big, headers={"Content-Type": "application/json"})
        assert resp.status_code == 413, (path, resp.status_code)
        assert resp.json() == {"detail": f"the request body is larger than {LIMIT} bytes"}

    def chunks() -> Iterator[bytes]:  # no Content-Length: httpx sends it chunked
        yield b'{"phone": "'
        for _ in range(4):
            yield b"1" * (LIMIT // 2)
        yield b'"}'

    resp = api.post("/api/auth/code", content=chunks(), headers={"Content-Type": "application/json"})
    assert resp.status_code == 413
    assert api.post("/api/auth/login", json={"username": "u" * 60, "password": "p" * 200}).status_code == 401


def test_a_422_does_not_repeat_a_large_input(api: TestClient) -> None:
    """A 5 MiB body gave a 5 MiB answer: FastAPI repeats each invalid input, for a missing field the whole body."""
    long = "x" * 100_000
    for body in ({"username": long, "password": "p"}, {"someone": long}):
        resp = api.post("/api/auth/login", json=body)
        assert resp.status_code == 422
        assert len(resp.content) < 2000 and "xxxxxxxxxx" not in resp.text
        problem = resp.json()["detail"][0]
        assert problem["loc"][0] == "body" and problem["type"] in ("string_too_long", "missing")
        assert "input" not in problem
    # A short value is still repeated, with the limit it broke.
    short = api.post("/api/auth/login", json={"username": "u" * 65, "password": "p"}).json()["detail"][0]
    assert short == {
        "type": "string_too_long",
        "loc": ["body", "username"],
        "msg": "String should have at most 64 characters",
        "input": "u" * 65,
        "ctx": {"max_length": 64},
    }


def _staff_user(engine: Engine) -> None:
    with Session(engine) as s:
        s.add(User(username="ana", password_hash=hash_password("correct horse battery"), role="staff"))
        s.commit()


def _sign_in(client: TestClient) -> httpx.Response:
    form = {"username": "ana", "password": "correct horse battery"}
    return client.post("/staff/login", data=form, follow_redirects=False)


def test_sign_in_cookies_are_secure_even_when_the_request_says_http(settings: CloudSettings, engine: Engine) -> None:
    """Behind a TLS proxy the cloud sees http: the cookie went out without Secure."""
    _staff_user(engine)
    with TestClient(create_app(settings), base_url="http://testserver") as client:
        resp = _sign_in(client)
    assert resp.status_code == 303
    assert "; secure" in resp.headers["set-cookie"].lower() and STAFF_COOKIE in resp.headers["set-cookie"]
    plain = settings.model_copy(update={"secure_cookies": False})
    with TestClient(create_app(plain), base_url="http://testserver") as client:
        assert "secure" not in _sign_in(client).headers["set-cookie"].lower()
    with TestClient(create_app(plain), base_url="https://testserver") as client:
        assert "; secure" in _sign_in(client).headers["set-cookie"].lower()


def test_the_openapi_document_still_describes_a_422(api: TestClient) -> None:
    spec = api.get("/openapi.json").json()
    error = spec["components"]["schemas"]["ValidationError"]
    assert set(error["required"]) == {"loc", "msg", "type"}
    assert json.dumps(spec).count("HTTPValidationError") > 10
