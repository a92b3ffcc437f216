"""Sending one-time codes. Real deployments plug in their SMS gateway here."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Protocol

from helmet_cloud.timeutil import utcnow

log = logging.getLogger(__name__)


class SmsSender(Protocol):
    def send(self, phone: str, text: str) -> None: ...


class LogSms:
    def send(self, phone: str, text: str) -> None:
        log.info("SMS to %s: %s", phone, text)


class FileSms:
    """Appends each message as a JSON line: the simulator's residents read their codes here."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def send(self, phone: str, text: str) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps({"phone": phone, "text": text, "at": utcnow().isoformat()}) + "\n")


def make_sender(spec: str) -> SmsSender:
    if spec == "log":
        return LogSms()
    if spec.startswith("file:"):
        return FileSms(Path(spec[5:]))
    raise ValueError(f"unknown sms_backend {spec!r}: use 'log' or 'file:PATH'")
