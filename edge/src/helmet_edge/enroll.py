"""Enrolment on the Pi: fetch the locker's bundle with a one-time code (or read a bundle file) and install it.

The bundle is stored in ``{data_dir}/enrolment/bundle.json`` (directory 0700,
file 0600, owned by the service user), where :func:`helmet_edge.config.load_settings`
finds it: it supplies the locker id, the broker and its credentials, the pass
keys and the pin profile. The store is moved past the bundle's ``last_seq`` so
that a replacement Pi never reuses a sequence number the cloud already holds.

HTTP uses the standard library (``urllib``): the Pi needs no extra package,
and TLS certificates are verified against the system's CA store.
"""

from __future__ import annotations

import json
import logging
import os
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from helmet_edge.errors import EdgeError
from helmet_edge.ports import Camera, Decoder
from helmet_edge.store import DB_FILE, Store
from helmet_protocol.enrolment import (
    MAX_BUNDLE_BYTES,
    EnrolmentBundle,
    EnrolmentError,
    bundle_file,
    normalise_code,
    parse_qr_text,
    read_bundle_file,
)

log = logging.getLogger(__name__)

BUNDLE_DIR = "enrolment"
BUNDLE_NAME = "bundle.json"
CA_NAME = "broker-ca.crt"


class EnrolError(EdgeError):
    """Enrolment failed; the message says why and what to do."""


def bundle_path(data_dir: Path) -> Path:
    return data_dir / BUNDLE_DIR / BUNDLE_NAME


def installed(data_dir: Path) -> EnrolmentBundle | None:
    """The installed bundle, checked; ``None`` when the Pi is not enrolled yet."""
    path = bundle_path(data_dir)
    if not path.exists():
        return None
    try:
        return read_bundle_file(path.read_bytes())
    except EnrolmentError as exc:
        raise EnrolError(f"{path}: {exc}; enrol again") from None


def check_url(cloud_url: str, *, insecure_http: bool) -> str:
    parts = urlsplit(cloud_url)
    if parts.scheme == "http" and not insecure_http:
        raise EnrolError(
            f"{cloud_url} is plain http: the bundle holds the broker password (use --insecure-http only in tests)"
        )
    if parts.scheme not in ("https", "http") or not parts.netloc or parts.query or parts.fragment:
        raise EnrolError(f"not a cloud URL: {cloud_url!r} (expected https://host[:port])")
    return cloud_url.rstrip("/")


def fetch(cloud_url: str, code: str, *, insecure_http: bool = False, timeout: float = 20.0) -> EnrolmentBundle:
    """Exchange ``code`` at the cloud for the bundle (the code is spent by this)."""
    url = check_url(cloud_url, insecure_http=insecure_http) + "/api/enrolment"
    try:
        body = json.dumps({"code": normalise_code(code)}).encode()
    except EnrolmentError as exc:
        raise EnrolError(str(exc)) from None
    request = urllib.request.Request(  # noqa: S310 (the scheme is checked above)
        url, data=body, method="POST", headers={"content-type": "application/json", "accept": "application/json"}
    )
    context = ssl.create_default_context()
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as resp:  # noqa: S310
            raw = resp.read(MAX_BUNDLE_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise EnrolError(f"the cloud refused the code ({exc.code}): {_detail(exc)}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise EnrolError(f"cannot reach {cloud_url}: {reason}") from None
    try:
        return read_bundle_file(raw)
    except EnrolmentError as exc:
        raise EnrolError(f"the cloud's answer is not a usable bundle: {exc}") from None


def _detail(exc: urllib.error.HTTPError) -> str:
    try:
        detail = json.loads(exc.read(4096)).get("detail")
    except (ValueError, AttributeError, OSError):
        detail = None
    return str(detail) if detail else str(exc.reason)


def read_file(path: Path) -> EnrolmentBundle:
    """An offline bundle file (exported by the cloud)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise EnrolError(f"cannot read {path}: {exc.strerror}") from None
    try:
        return read_bundle_file(raw)
    except EnrolmentError as exc:
        raise EnrolError(f"{path}: {exc}") from None


def install(data_dir: Path, bundle: EnrolmentBundle) -> Path:
    """Store the bundle (0600 in a 0700 directory) and move the store's seq past the cloud's.

    Run as root (``sudo helmet-edge enroll``), the files are given to the owner
    of ``data_dir`` (the service user), since only it may read them.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    folder = data_dir / BUNDLE_DIR
    folder.mkdir(mode=0o700, exist_ok=True)
    os.chmod(folder, 0o700)
    data = bundle_file(bundle)
    ca_pem = bundle.mqtt.ca_pem
    if ca_pem:
        _write_private(folder / CA_NAME, ca_pem.encode())
    path = folder / BUNDLE_NAME
    _write_private(path, json.dumps(data, indent=2).encode())
    store = Store.in_data_dir(data_dir, bundle.locker_id)
    try:
        before = store.last_seq()
        store.start_after(bundle.last_seq)
    finally:
        store.close()
    _give_to_owner(data_dir, [folder, path, folder / CA_NAME, data_dir / DB_FILE])
    log.info(
        "enrolled as %s at %s; events continue after seq %d (store had %d)",
        bundle.locker_id,
        bundle.station_id,
        max(before, bundle.last_seq),
        before,
    )
    return path


def _write_private(path: Path, content: bytes) -> None:
    """Atomically, never readable by others even for a moment."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, content)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _give_to_owner(data_dir: Path, paths: list[Path]) -> None:
    if os.geteuid() != 0:
        return
    st = data_dir.stat()
    if st.st_uid == 0:
        return
    for p in paths:
        for q in (p, *(p.parent / f"{p.name}{suffix}" for suffix in ("-wal", "-shm"))):
            if q.exists():
                os.chown(q, st.st_uid, st.st_gid)


def settings_from(bundle: EnrolmentBundle, data_dir: Path) -> dict[str, object]:
    """What the bundle says in :class:`helmet_edge.config.EdgeSettings` terms."""
    mqtt: dict[str, object] = {
        "host": bundle.mqtt.host,
        "port": bundle.mqtt.port,
        "tls": bundle.mqtt.tls,
        "username": bundle.mqtt.username,
    }
    if bundle.mqtt.password is not None:
        mqtt["password"] = bundle.mqtt.password
    if bundle.mqtt.ca_pem:
        mqtt["ca_file"] = data_dir / BUNDLE_DIR / CA_NAME
    passes: dict[str, object] = {"keys": dict(bundle.pass_keys), "max_quantity": bundle.max_quantity}
    if bundle.helmet_url_host:
        passes["helmet_url_host"] = bundle.helmet_url_host
    return {"locker_id": bundle.locker_id, "pin_profile": bundle.pin_profile, "mqtt": mqtt, "passes": passes}


def wait_for_qr(
    camera: Camera,
    decoder: Decoder,
    enrol: Callable[[str, str], EnrolmentBundle],
    *,
    should_stop: Callable[[], bool],
    fps: float = 5.0,
) -> EnrolmentBundle | None:
    """First boot, not enrolled: read frames until an enrolment QR (``HSE1:...``) enrols this Pi.

    ``enrol(cloud_url, code)`` fetches the bundle; a refused code is logged and the
    next QR is waited for. Anything else in front of the camera is ignored.
    """
    tried: set[str] = set()
    while not should_stop():
        frame = camera.read()
        for data in decoder.decode(frame) if frame is not None else []:
            try:
                cloud_url, code = parse_qr_text(data.decode("utf-8", errors="replace"))
            except EnrolmentError:
                continue
            if code in tried:
                continue
            tried.add(code)
            log.info("enrolment QR for %s seen; asking the cloud", cloud_url)
            try:
                return enrol(cloud_url, code)
            except EnrolError as exc:
                log.warning("enrolment failed: %s", exc)
        time.sleep(1.0 / fps)
    return None
