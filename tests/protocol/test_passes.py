"""Borrow passes: what opens a locker and everything that must not."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
import segno
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from helmet_protocol.errors import PassRejectedError
from helmet_protocol.passes import (
    MAX_HOLDER_LEN,
    MAX_KID_LEN,
    MAX_PASS_CHARS,
    MAX_QUANTITY,
    MAX_TTL,
    PREFIX,
    Role,
    issue_pass,
    verify_pass,
)

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
KEY = Ed25519PrivateKey.generate()
KEYS = {"k1": KEY.public_key()}


def make(**overrides: object) -> str:
    args: dict[str, object] = {
        "signing_key": KEY,
        "kid": "k1",
        "holder_id": "R-42",
        "quantity": 2,
        "now": NOW,
        "ttl": timedelta(minutes=5),
    }
    args.update(overrides)
    return issue_pass(**args)  # type: ignore[arg-type]


def rejected(text: str | bytes, **kwargs: object) -> str:
    opts: dict[str, object] = {"keys": KEYS, "now": NOW, "max_quantity": 4}
    opts.update(kwargs)
    with pytest.raises(PassRejectedError) as info:
        verify_pass(text, **opts)  # type: ignore[arg-type]
    return info.value.reason


def test_valid_pass_round_trips() -> None:
    text = make(role=Role.TECHNICIAN, quantity=3)
    p = verify_pass(text, keys=KEYS, now=NOW + timedelta(minutes=1), max_quantity=4)
    assert (p.holder_id, p.role, p.quantity, p.kid) == ("R-42", Role.TECHNICIAN, 3, "k1")
    assert p.expires_at - p.issued_at == timedelta(minutes=5)


def test_largest_legal_pass_fits_qr_version_8_at_level_m() -> None:
    text = issue_pass(
        signing_key=KEY,
        kid="K" * MAX_KID_LEN,
        holder_id="R" * MAX_HOLDER_LEN,
        quantity=MAX_QUANTITY,
        now=NOW,
        ttl=MAX_TTL,
    )
    assert len(text) == MAX_PASS_CHARS
    qr = segno.make(text, error="m", boost_error=False)
    assert qr.error == "M"
    assert qr.version <= 8


def test_flipped_byte_is_bad_signature() -> None:
    text = make()
    raw = bytearray(base64.b32decode(text[len(PREFIX) :] + "=" * (-len(text[len(PREFIX) :]) % 8)))
    raw[4] ^= 0x01  # inside the pass id: still well-formed, no longer signed
    forged = PREFIX + base64.b32encode(bytes(raw)).decode().rstrip("=")
    assert rejected(forged) == "bad_signature"


def test_raised_quantity_is_bad_signature() -> None:
    text = make(quantity=1)
    body = bytearray(base64.b32decode(text[len(PREFIX) :] + "=" * (-len(text[len(PREFIX) :]) % 8)))
    body[2] = 4
    assert rejected(PREFIX + base64.b32encode(bytes(body)).decode().rstrip("=")) == "bad_signature"


def test_other_key_is_unknown_key_and_wrong_key_is_bad_signature() -> None:
    other = Ed25519PrivateKey.generate()
    assert rejected(make(signing_key=other, kid="k9")) == "unknown_key"
    assert rejected(make(signing_key=other)) == "bad_signature"


def test_expired_and_not_yet_valid_respect_clock_skew() -> None:
    text = make(ttl=timedelta(minutes=5))
    skew = timedelta(minutes=2)
    assert rejected(text, now=NOW + timedelta(minutes=7), skew=skew) == "expired"
    assert verify_pass(text, keys=KEYS, now=NOW + timedelta(minutes=6), max_quantity=4, skew=skew)
    assert rejected(text, now=NOW - timedelta(minutes=3), skew=skew) == "not_yet_valid"
    assert verify_pass(text, keys=KEYS, now=NOW - timedelta(minutes=1), max_quantity=4, skew=skew)


def test_quantity_above_locker_limit_is_over_quantity() -> None:
    assert rejected(make(quantity=5), max_quantity=4) == "over_quantity"


@pytest.mark.parametrize(
    "text",
    [
        "",
        b"",
        "https://helmets.example.org/h/H-0001",
        "WIFI:S:TownHall;T:WPA;P:hunter2;;",
        b"\xff\xfe\x00binary",
        PREFIX,
        PREFIX + "!!!!",
        PREFIX + "A" * (MAX_PASS_CHARS + 10),
        "X" * 100_000,
    ],
    ids=["empty", "empty-bytes", "url", "wifi", "non-utf8", "prefix-only", "not-base32", "oversized", "huge"],
)
def test_non_passes_are_malformed(text: str | bytes) -> None:
    assert rejected(text) == "malformed"


def test_truncated_pass_is_malformed() -> None:
    text = make()
    for cut in (8, 40, len(text) - 20, len(text) - 1):
        assert rejected(text[:cut]) in {"malformed", "bad_signature"}
    assert rejected(text[:40]) == "malformed"


def test_issuing_refuses_illegal_fields() -> None:
    with pytest.raises(ValueError):
        make(quantity=0)
    with pytest.raises(ValueError):
        make(holder_id="R" * (MAX_HOLDER_LEN + 1))
    with pytest.raises(ValueError):
        make(ttl=timedelta(hours=3))
