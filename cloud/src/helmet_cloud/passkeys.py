"""Pass signing keys: a key file with an active key id, generated on first start."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from helmet_protocol.keys import load_private_key, private_key_b64, public_key_b64

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PassKeys:
    active: str
    private: dict[str, Ed25519PrivateKey]

    @property
    def signing_key(self) -> Ed25519PrivateKey:
        return self.private[self.active]

    def public(self) -> dict[str, str]:
        """``{kid: base64}`` of every key lockers should trust (old ones keep working until removed)."""
        return {kid: public_key_b64(k) for kid, k in self.private.items()}


def load_or_create(path: Path) -> PassKeys:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        kid = "k1"
        data = {"active": kid, "keys": {kid: private_key_b64(Ed25519PrivateKey.generate())}}
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2)
        log.warning("generated a new pass signing key in %s (development only: keep it secret)", path)
    data = json.loads(path.read_text())
    keys = {kid: load_private_key(b64) for kid, b64 in data["keys"].items()}
    if data["active"] not in keys:
        raise ValueError(f"{path}: active key {data['active']!r} is not among the keys")
    return PassKeys(active=data["active"], private=keys)
