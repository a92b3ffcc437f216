"""Rotating the pass signing key: new passes use the new key, passes already issued still open."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from helmet_cloud.adapters.passkeys import load_or_create
from helmet_protocol.keys import load_public_keys
from helmet_protocol.passes import issue_pass, verify_pass

BIN = Path(sys.executable).parent / "helmet-cloud"


def cli(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HELMET_DATA_DIR": str(data_dir), "HELMET_DATABASE_URL": f"sqlite:///{data_dir}/db/cloud.db"}
    return subprocess.run([BIN, "keys", *args], env=env, capture_output=True, text=True, timeout=60)


def test_rotate_then_retire(tmp_path: Path) -> None:
    path = tmp_path / "pass-keys.json"
    old = load_or_create(path)
    assert path.stat().st_mode & 0o777 == 0o600
    now = datetime.now(UTC)
    old_pass = issue_pass(
        signing_key=old.signing_key, kid=old.active, holder_id="R-1", quantity=1, now=now, ttl=timedelta(minutes=5)
    )
    assert cli("rotate", data_dir=tmp_path).stdout.strip() == "new active key: k2"
    keys = load_or_create(path)
    assert keys.active == "k2" and sorted(keys.public()) == ["k1", "k2"]
    trusted = load_public_keys(keys.public())
    # What lockers get in their config still verifies the pass signed before the rotation.
    assert verify_pass(old_pass, keys=trusted, now=now, max_quantity=4).kid == "k1"
    refused = cli("retire", "k2", data_dir=tmp_path)
    assert refused.returncode == 2 and "active key" in refused.stderr
    assert cli("retire", "k1", data_dir=tmp_path).returncode == 0
    assert sorted(load_or_create(path).public()) == ["k2"]
    assert "k2  (active" in cli("list", data_dir=tmp_path).stdout
