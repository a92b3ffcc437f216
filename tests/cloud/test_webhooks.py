"""Alert webhooks to a real HTTP server on 127.0.0.1: signed, retried with backoff, delivered once."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from support.alerting import Town
from support.cloud_events import at, status

from helmet_cloud.adapters.database import make_engine, migrate
from helmet_cloud.adapters.webhooks import WebhookSender
from helmet_cloud.services.alerts import Notice
from helmet_cloud.settings import CloudSettings

SECRET = "webhook test secret"


@dataclass
class Receiver:
    """Answers each request with the next status in ``answers`` (the last one repeats)."""

    answers: list[int]
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    accepted: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def receiver_factory() -> Iterator[Callable[[list[int]], Receiver]]:
    servers: list[ThreadingHTTPServer] = []

    def start(answers: list[int]) -> Receiver:
        rec = Receiver(answers)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = {k.lower(): v for k, v in self.headers.items()}
                rec.requests.append((headers, body))
                code = rec.answers[min(len(rec.requests), len(rec.answers)) - 1]
                if 200 <= code < 300:
                    rec.accepted.append((headers, body))
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        rec.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/helmets"
        return rec

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


def test_an_alert_is_signed_retried_after_a_failure_and_arrives_once(
    database_url: str, tmp_path: Path, receiver_factory: Callable[[list[int]], Receiver]
) -> None:
    receiver = receiver_factory([503, 204])
    settings = CloudSettings(
        database_url=database_url,
        data_dir=tmp_path / "cloud",
        webhook_urls=[receiver.url],
        webhook_secret=SECRET,
        webhook_backoff_seconds=0.05,
    )
    migrate(database_url)
    engine = make_engine(database_url)
    sender = WebhookSender.from_settings(settings)
    sender.start()
    try:
        town = Town(engine, settings, notify=sender.send)
        town.feed(status("LK-000A", at(1), online=True), status("LK-000A", at(0), online=False))
        assert wait_for(lambda: len(receiver.accepted) == 1), receiver.requests
        time.sleep(0.3)  # room for a stray second delivery, which must not come
    finally:
        sender.stop()
        engine.dispose()
    assert len(receiver.requests) == 2 and len(receiver.accepted) == 1
    (first_headers, first_body), (headers, body) = receiver.requests
    assert first_body == body and first_headers["x-helmet-delivery"] == headers["x-helmet-delivery"]
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["x-helmet-signature"], expected)
    payload = json.loads(body)
    assert headers["x-helmet-timestamp"] == str(payload["sent_at"])
    assert abs(int(headers["x-helmet-timestamp"]) - time.time()) < 60
    assert payload["event"] == headers["x-helmet-event"] == "alert.opened"
    assert payload["alert"]["kind"] == "locker_offline" and payload["alert"]["subject_id"] == "LK-000A"
    assert sender.delivered == 1 and sender.given_up == 0


def test_attempts_are_bounded_and_a_refusal_is_not_retried(receiver_factory: Callable[[list[int]], Receiver]) -> None:
    down, refusing = receiver_factory([500]), receiver_factory([400])
    sender = WebhookSender([down.url, refusing.url], SECRET.encode(), max_attempts=3, backoff=0.01)
    sender.start()
    try:
        sender.send([Notice("alert.opened", {"id": 1, "kind": "station_empty"})])
        assert wait_for(lambda: sender.given_up == 2)
        time.sleep(0.1)
    finally:
        sender.stop()
    assert (len(down.requests), len(refusing.requests), sender.delivered) == (3, 1, 0)


def test_webhook_urls_need_a_secret(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="webhook_secret"):
        CloudSettings(data_dir=tmp_path, webhook_urls=["https://example.org/hook"])
