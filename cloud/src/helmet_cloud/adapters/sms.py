"""Sending one-time codes. Real deployments plug in their SMS gateway here."""

from __future__ import annotations

import json
import logging
import re
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


class E164Only:
    """Hands a gateway only numbers in E.164 (``+41780000005``), the form accounts keep (domain/phones): a number
    without its country code would reach someone else, or no one."""

    E164 = re.compile(r"\+[1-9][0-9]{6,14}")

    def __init__(self, sender: SmsSender) -> None:
        self.sender = sender

    def send(self, phone: str, text: str) -> None:
        if not self.E164.fullmatch(phone):
            raise ValueError(f"not an E.164 number: {phone[:-4]}XXXX")
        self.sender.send(phone, text)


def make_sender(spec: str) -> SmsSender:
    if spec == "log":
        return E164Only(LogSms())
    if spec.startswith("file:"):
        return E164Only(FileSms(Path(spec[5:])))
    raise ValueError(f"unknown sms_backend {spec!r}: use 'log' or 'file:PATH'")
