"""Ed25519 key encoding shared by the cloud (signing) and lockers (verifying).

Public keys travel in the locker ``config`` as base64 of the raw 32 bytes.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from helmet_protocol.errors import ProtocolError

_RAW = serialization.Encoding.Raw


def public_key_b64(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return base64.b64encode(pub.public_bytes(_RAW, serialization.PublicFormat.Raw)).decode()


def private_key_b64(key: Ed25519PrivateKey) -> str:
    raw = key.private_bytes(_RAW, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    return base64.b64encode(raw).decode()


def load_private_key(b64: str) -> Ed25519PrivateKey:
    try:
        return Ed25519PrivateKey.from_private_bytes(base64.b64decode(b64, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise ProtocolError(f"not a base64 Ed25519 private key: {exc}") from None


def load_public_keys(keys: Mapping[str, str]) -> dict[str, Ed25519PublicKey]:
    """Turn ``{kid: base64}`` from a locker config into verification keys."""
    out: dict[str, Ed25519PublicKey] = {}
    for kid, b64 in keys.items():
        try:
            out[kid] = Ed25519PublicKey.from_public_bytes(base64.b64decode(b64, validate=True))
        except (binascii.Error, ValueError) as exc:
            raise ProtocolError(f"pass key {kid!r} is not a base64 Ed25519 public key: {exc}") from None
    return out
