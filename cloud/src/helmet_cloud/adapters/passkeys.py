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


def _write(path: Path, keys: PassKeys) -> None:
    """Replace the key file atomically, readable by its owner only."""
    data = {"active": keys.active, "keys": {kid: private_key_b64(k) for kid, k in keys.private.items()}}
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
    os.replace(tmp, path)


def load_or_create(path: Path) -> PassKeys:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        _write(path, PassKeys(active="k1", private={"k1": Ed25519PrivateKey.generate()}))
        log.warning("generated a new pass signing key in %s (development only: keep it secret)", path)
    data = json.loads(path.read_text())
    keys = {kid: load_private_key(b64) for kid, b64 in data["keys"].items()}
    if data["active"] not in keys:
        raise ValueError(f"{path}: active key {data['active']!r} is not among the keys")
    return PassKeys(active=data["active"], private=keys)


def rotate(path: Path) -> str:
    """A new signing key becomes active; the old ones stay trusted so passes already issued still open."""
    keys = load_or_create(path)
    n = 1 + max((int(k[1:]) for k in keys.private if k[1:].isdigit()), default=0)
    kid = f"k{n}"
    _write(path, PassKeys(active=kid, private={**keys.private, kid: Ed25519PrivateKey.generate()}))
    return kid


def retire(path: Path, kid: str) -> None:
    """Stop trusting an old key (after its last passes expired, minutes after rotation)."""
    keys = load_or_create(path)
    if kid == keys.active:
        raise ValueError(f"{kid} is the active key: rotate first")
    if kid not in keys.private:
        raise ValueError(f"no key {kid}; keys: {', '.join(sorted(keys.private))}")
    _write(path, PassKeys(active=keys.active, private={k: v for k, v in keys.private.items() if k != kid}))
