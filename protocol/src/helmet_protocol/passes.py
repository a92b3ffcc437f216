"""Borrow passes: issued and signed by the cloud, verified by a locker offline.

Wire form: ``HP1:`` followed by unpadded RFC 4648 base32 of a compact binary
body and its Ed25519 signature. Every character is in the QR alphanumeric set,
so the largest legal pass fits a version 8 QR code at level M (tested).

Body layout (big-endian)::

    u8   format (1)
    u8   role (1 resident, 2 technician)
    u8   quantity
    16B  pass id (a UUID)
    u32  issued at, Unix seconds (also "not before")
    u32  expires at, Unix seconds
    u8+  key id (length-prefixed ASCII, at most 8)
    u8+  holder id (length-prefixed ASCII, at most 16)
    64B  Ed25519 signature over DOMAIN + body
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import IntEnum

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from helmet_protocol.errors import PassRejectedError
from helmet_protocol.events import RejectReason

PREFIX = "HP1:"
DOMAIN = b"helmet-station pass v1\x00"
FORMAT = 1
MAX_KID_LEN = 8
MAX_HOLDER_LEN = 16
MAX_QUANTITY = 16
MAX_TTL = timedelta(minutes=60)
DEFAULT_SKEW = timedelta(minutes=2)
_HEAD = struct.Struct(">BBB16sII")
_SIG_LEN = 64
_MIN_BODY = _HEAD.size + 1 + 1 + 1 + 1
_MAX_BODY = _HEAD.size + 1 + MAX_KID_LEN + 1 + MAX_HOLDER_LEN
# Longest legal pass text; anything longer is refused before any parsing.
MAX_PASS_CHARS = len(PREFIX) + -(-(_MAX_BODY + _SIG_LEN) * 8 // 5)
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_.-]+$")


class Role(IntEnum):
    RESIDENT = 1
    TECHNICIAN = 2


@dataclass(frozen=True, slots=True)
class Pass:
    """The verified content of a pass."""

    pass_id: str
    holder_id: str
    role: Role
    quantity: int
    issued_at: datetime
    expires_at: datetime
    kid: str


def _check_token(name: str, value: str, max_len: int) -> bytes:
    raw = value.encode("ascii", errors="strict") if value.isascii() else b""
    if not raw or len(raw) > max_len or not _TOKEN_RE.fullmatch(value):
        raise ValueError(f"{name} must be 1..{max_len} characters of A-Z a-z 0-9 _ . -, got {value!r}")
    return raw


def issue_pass(
    *,
    signing_key: Ed25519PrivateKey,
    kid: str,
    holder_id: str,
    quantity: int,
    now: datetime,
    ttl: timedelta,
    role: Role = Role.RESIDENT,
    pass_id: str | None = None,
) -> str:
    """Sign a pass and return its QR text."""
    if not 1 <= quantity <= MAX_QUANTITY:
        raise ValueError(f"quantity must be 1..{MAX_QUANTITY}, got {quantity}")
    if not timedelta(seconds=1) <= ttl <= MAX_TTL:
        raise ValueError(f"ttl must be between 1 s and {MAX_TTL}, got {ttl}")
    kid_raw = _check_token("kid", kid, MAX_KID_LEN)
    holder_raw = _check_token("holder_id", holder_id, MAX_HOLDER_LEN)
    pid = uuid.UUID(pass_id) if pass_id else uuid.uuid4()
    issued = int(now.timestamp())
    body = _HEAD.pack(FORMAT, role, quantity, pid.bytes, issued, issued + int(ttl.total_seconds()))
    body += bytes([len(kid_raw)]) + kid_raw + bytes([len(holder_raw)]) + holder_raw
    sig = signing_key.sign(DOMAIN + body)
    return PREFIX + base64.b32encode(body + sig).decode("ascii").rstrip("=")


def _malformed(detail: str) -> PassRejectedError:
    return PassRejectedError(RejectReason.MALFORMED, detail)


def decode_pass(data: str | bytes) -> tuple[Pass, bytes, bytes]:
    """Parse a pass without checking it: ``(pass, signed_body, signature)``.

    Raises :class:`PassRejectedError` with reason ``malformed`` for anything
    that is not a well-formed pass.
    """
    if isinstance(data, bytes):
        if len(data) > MAX_PASS_CHARS:
            raise _malformed(f"{len(data)} bytes is longer than any pass ({MAX_PASS_CHARS})")
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise _malformed("not UTF-8 text") from None
    if not data:
        raise _malformed("empty")
    if len(data) > MAX_PASS_CHARS:
        raise _malformed(f"{len(data)} characters is longer than any pass ({MAX_PASS_CHARS})")
    if not data.startswith(PREFIX):
        raise _malformed(f"not a helmet pass (no {PREFIX} prefix)")
    b32 = data[len(PREFIX) :]
    try:
        raw = base64.b32decode(b32 + "=" * (-len(b32) % 8), casefold=False)
    except (binascii.Error, ValueError):
        raise _malformed("not valid base32") from None
    if len(raw) < _MIN_BODY + _SIG_LEN:
        raise _malformed(f"truncated: {len(raw)} bytes")
    body, sig = raw[:-_SIG_LEN], raw[-_SIG_LEN:]
    fmt, role, quantity, pid, issued, expires = _HEAD.unpack_from(body)
    if fmt != FORMAT:
        raise _malformed(f"unknown pass format {fmt}")
    pos = _HEAD.size
    fields: list[str] = []
    for name, limit in (("kid", MAX_KID_LEN), ("holder id", MAX_HOLDER_LEN)):
        n = body[pos] if pos < len(body) else 0
        chunk = body[pos + 1 : pos + 1 + n]
        if not 1 <= n <= limit or len(chunk) != n:
            raise _malformed(f"bad {name} length")
        text = chunk.decode("ascii", errors="replace")
        if not _TOKEN_RE.fullmatch(text):
            raise _malformed(f"bad {name}")
        fields.append(text)
        pos += 1 + n
    if pos != len(body):
        raise _malformed("trailing bytes")
    try:
        role_ = Role(role)
    except ValueError:
        raise _malformed(f"unknown role {role}") from None
    if expires <= issued:
        raise _malformed("expires before it is issued")
    parsed = Pass(
        pass_id=str(uuid.UUID(bytes=pid)),
        holder_id=fields[1],
        role=role_,
        quantity=quantity,
        issued_at=datetime.fromtimestamp(issued, UTC),
        expires_at=datetime.fromtimestamp(expires, UTC),
        kid=fields[0],
    )
    return parsed, body, sig


def verify_pass(
    data: str | bytes,
    *,
    keys: Mapping[str, Ed25519PublicKey],
    now: datetime,
    max_quantity: int,
    skew: timedelta = DEFAULT_SKEW,
) -> Pass:
    """Check a pass completely, offline. Returns it, or raises :class:`PassRejectedError`.

    ``skew`` tolerates a locker clock that is off by that much in either
    direction. Replay protection is the caller's: a locker remembers the ids it
    has honoured until they expire.
    """
    parsed, body, sig = decode_pass(data)
    key = keys.get(parsed.kid)
    if key is None:
        raise PassRejectedError(RejectReason.UNKNOWN_KEY, f"key id {parsed.kid!r} is not trusted here")
    try:
        key.verify(sig, DOMAIN + body)
    except InvalidSignature:
        raise PassRejectedError(RejectReason.BAD_SIGNATURE, "signature does not match") from None
    if parsed.expires_at - parsed.issued_at > MAX_TTL:
        raise _malformed("validity longer than any pass may have")
    if now + skew < parsed.issued_at:
        raise PassRejectedError(RejectReason.NOT_YET_VALID, f"valid from {parsed.issued_at.isoformat()}")
    if now - skew >= parsed.expires_at:
        raise PassRejectedError(RejectReason.EXPIRED, f"expired at {parsed.expires_at.isoformat()}")
    if not 1 <= parsed.quantity <= max_quantity:
        raise PassRejectedError(RejectReason.OVER_QUANTITY, f"quantity {parsed.quantity} outside 1..{max_quantity}")
    return parsed
