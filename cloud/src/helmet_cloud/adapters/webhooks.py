"""Alert webhooks: signed JSON POSTs, delivered on a background thread with bounded retries.

Each delivery is one JSON body, sent unchanged on every attempt, with
``X-Helmet-Signature: sha256=<hex HMAC-SHA256 of the body>`` keyed by
``webhook_secret``, ``X-Helmet-Timestamp`` (Unix seconds, also in the body as
``sent_at``, so it is signed) and ``X-Helmet-Delivery`` (the same id on every
retry, for de-duplication). A 2xx is success; a transport error, 408, 429
or 5xx is retried after ``backoff * 2**(attempt - 1)`` seconds, up to
``max_attempts`` in all; any other status is final. :meth:`WebhookSender.send`
only queues, so ingest never waits for a receiver.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import itertools
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import httpx

from helmet_cloud.services.alerts import Notice
from helmet_cloud.settings import CloudSettings

log = logging.getLogger(__name__)

MAX_PENDING = 10_000
MAX_BACKOFF = 600.0
RETRY_STATUSES = frozenset({408, 429})


def sign(secret: bytes, body: bytes) -> str:
    """The ``X-Helmet-Signature`` value for ``body``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


@dataclass(slots=True)
class _Delivery:
    url: str
    body: bytes
    headers: dict[str, str]
    attempt: int = 0


class WebhookSender:
    def __init__(
        self,
        urls: list[str],
        secret: bytes,
        *,
        max_attempts: int = 6,
        backoff: float = 2.0,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.urls = list(urls)
        self._secret = secret
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.timeout = timeout
        self._clock = clock
        self._heap: list[tuple[float, int, _Delivery]] = []
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="webhooks", daemon=True)
        self.delivered = 0
        self.given_up = 0

    @classmethod
    def from_settings(cls, settings: CloudSettings) -> WebhookSender:
        if settings.webhook_secret is None:
            raise ValueError("webhook_urls need a webhook_secret")
        return cls(
            settings.webhook_urls,
            settings.webhook_secret.get_secret_value().encode(),
            max_attempts=settings.webhook_max_attempts,
            backoff=settings.webhook_backoff_seconds,
            timeout=settings.webhook_timeout_seconds,
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout=self.timeout + 5)
        if self._heap:
            log.warning("webhooks: %d deliveries still pending at shutdown were dropped", len(self._heap))

    def send(self, notices: Iterable[Notice]) -> None:
        """Queue one delivery per notice and URL; never blocks on the network."""
        now = time.time()
        with self._cond:
            for notice in notices:
                delivery_id = str(uuid.uuid4())
                body = json.dumps(
                    {"delivery_id": delivery_id, "event": notice.event, "sent_at": int(now), "alert": notice.alert},
                    separators=(",", ":"),
                ).encode()
                headers = {
                    "Content-Type": "application/json",
                    "X-Helmet-Event": notice.event,
                    "X-Helmet-Delivery": delivery_id,
                    "X-Helmet-Timestamp": str(int(now)),
                    "X-Helmet-Signature": sign(self._secret, body),
                }
                for url in self.urls:
                    if len(self._heap) >= MAX_PENDING:
                        log.error("webhooks: %d deliveries pending; dropping %s to %s", MAX_PENDING, notice.event, url)
                        continue
                    heapq.heappush(self._heap, (self._clock(), next(self._order), _Delivery(url, body, headers)))
            self._cond.notify_all()

    def _next(self) -> _Delivery | None:
        """The next delivery that is due, waiting for it; None when stopping."""
        with self._cond:
            while not self._stopping:
                if self._heap:
                    due = self._heap[0][0] - self._clock()
                    if due <= 0:
                        return heapq.heappop(self._heap)[2]
                    self._cond.wait(due)
                else:
                    self._cond.wait()
            return None

    def _run(self) -> None:
        with httpx.Client(timeout=self.timeout, follow_redirects=False) as client:
            while (item := self._next()) is not None:
                self._attempt(client, item)

    def _attempt(self, client: httpx.Client, item: _Delivery) -> None:
        item.attempt += 1
        try:
            status = client.post(item.url, content=item.body, headers=item.headers).status_code
            error = f"HTTP {status}"
            retry = status >= 500 or status in RETRY_STATUSES
        except httpx.HTTPError as exc:
            status, error, retry = 0, f"{exc.__class__.__name__}: {exc}", True
        if 200 <= status < 300:
            self.delivered += 1
            return
        if retry and item.attempt < self.max_attempts:
            delay = min(self.backoff * 2 ** (item.attempt - 1), MAX_BACKOFF)
            log.warning("webhook to %s failed (%s), attempt %d; retry in %.1f s", item.url, error, item.attempt, delay)
            with self._cond:
                heapq.heappush(self._heap, (self._clock() + delay, next(self._order), item))
            return
        self.given_up += 1
        log.error("webhook to %s failed (%s) after %d attempt(s); giving up", item.url, error, item.attempt)
