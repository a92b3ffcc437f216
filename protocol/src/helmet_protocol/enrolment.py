"""Enrolment: the one-time code a technician gives a Pi, and the config bundle it is exchanged for.

The cloud makes a code (``7KQ2-M9XD-4TWA``) and shows it as a QR code whose
text is ``HSE1:{cloud_url}#{code}``; the Pi exchanges it over HTTPS for a
bundle, or installs a bundle file exported for a site without network. Both
travel in the same checked file format (:func:`bundle_file`): the bundle and
the SHA-256 of its canonical JSON, so a truncated or edited file is refused.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from helmet_protocol.errors import ProtocolError
from helmet_protocol.messages import LockerId, Timestamp

QR_PREFIX = "HSE1:"
FILE_FORMAT = "helmet-enrolment/1"
MAX_BUNDLE_BYTES = 64 * 1024
# Crockford's base32 without I, L, O, U: nothing a technician can misread or mistype.
CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_GROUPS, CODE_GROUP_LEN = 3, 4  # 12 characters, 60 bits


class EnrolmentError(ProtocolError):
    """An enrolment code, QR text or bundle that cannot be used."""


def new_code() -> str:
    """A fresh random code, grouped for reading aloud: ``7KQ2-M9XD-4TWA``."""
    groups = ("".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_GROUP_LEN)) for _ in range(CODE_GROUPS))
    return "-".join(groups)


def normalise_code(text: str) -> str:
    """Accept what a person types (lower case, spaces, missing dashes); return the canonical code or raise."""
    raw = re.sub(r"[\s-]", "", text.upper()) if len(text) <= 64 else ""
    if len(raw) != CODE_GROUPS * CODE_GROUP_LEN or any(c not in CODE_ALPHABET for c in raw):
        raise EnrolmentError("not an enrolment code: expected 12 letters and digits like 7KQ2-M9XD-4TWA")
    return "-".join(raw[i : i + CODE_GROUP_LEN] for i in range(0, len(raw), CODE_GROUP_LEN))


def qr_text(cloud_url: str, code: str) -> str:
    """The enrolment QR's text, ``HSE1:https://cloud.example#CODE``."""
    return f"{QR_PREFIX}{cloud_url.rstrip('/')}#{normalise_code(code)}"


def parse_qr_text(text: str) -> tuple[str, str]:
    """``(cloud_url, code)`` of an enrolment QR, or raise :class:`EnrolmentError`."""
    if len(text) > 600 or not text.startswith(QR_PREFIX):
        raise EnrolmentError("not an enrolment QR code")
    url, sep, code = text[len(QR_PREFIX) :].rpartition("#")
    parts = urlsplit(url)
    if not sep or parts.scheme not in ("https", "http") or not parts.netloc or parts.query or parts.fragment:
        raise EnrolmentError("enrolment QR code without a cloud URL and a code")
    return url.rstrip("/"), normalise_code(code)


class BrokerAccess(BaseModel):
    """Where and how the locker reaches the town's broker."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    host: str = Field(min_length=1, max_length=253)
    port: int = Field(ge=1, le=65535)
    tls: bool
    username: str = Field(min_length=1, max_length=64)
    password: str | None = Field(default=None, max_length=256)
    ca_pem: str | None = Field(default=None, max_length=32 * 1024, description="CA certificate of the broker")


class EnrolmentBundle(BaseModel):
    """Everything a fresh Pi needs to become a given locker."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    v: Literal[1] = 1
    locker_id: LockerId
    station_id: str = Field(max_length=32)
    slot_count: int = Field(ge=1, le=256)
    pin_profile: str = Field(min_length=1, max_length=64)
    mqtt: BrokerAccess
    pass_keys: dict[str, str] = Field(max_length=16)
    max_quantity: int = Field(ge=1, le=16)
    helmet_url_host: str | None = Field(default=None, max_length=253)
    # Every seq up to this one is taken in the cloud: a replacement Pi numbers its events after it.
    last_seq: int = Field(ge=0)
    issued_at: Timestamp


def _digest(bundle: dict[str, Any]) -> str:
    canonical = json.dumps(bundle, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def bundle_file(bundle: EnrolmentBundle) -> dict[str, Any]:
    """The checked file form: ``{format, sha256, bundle}``."""
    body = bundle.model_dump(mode="json")
    return {"format": FILE_FORMAT, "sha256": _digest(body), "bundle": body}


def read_bundle_file(raw: bytes | str | dict[str, Any]) -> EnrolmentBundle:
    """Parse and check a bundle file (or the exchange's answer); raise :class:`EnrolmentError` saying why."""
    if isinstance(raw, dict):
        data: Any = raw
    else:
        if len(raw) > MAX_BUNDLE_BYTES:
            raise EnrolmentError(f"bundle is {len(raw)} bytes; the limit is {MAX_BUNDLE_BYTES}")
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise EnrolmentError(f"bundle is not JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != FILE_FORMAT:
        raise EnrolmentError(f"not a {FILE_FORMAT} bundle file")
    body = data.get("bundle")
    if not isinstance(body, dict) or data.get("sha256") != _digest(body):
        raise EnrolmentError("bundle checksum does not match: the file is damaged or was edited")
    try:
        return EnrolmentBundle.model_validate(body)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise EnrolmentError(f"invalid bundle: {problems}") from None
