"""Enrolment on the Pi: a bundle is installed privately, read by the config, and moves the seq past the cloud's.

The exchange against a running cloud is in ``tests/cloud/test_enrolment.py``.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from helmet_edge import enroll
from helmet_edge.config import load_settings
from helmet_edge.decoder_cascade import CascadeDecoder
from helmet_edge.kiosk import ForeignScan, classify
from helmet_edge.slot_machine import EventDraft
from helmet_edge.store import Store
from helmet_edge.watchdog import Notifier
from helmet_protocol.enrolment import BrokerAccess, EnrolmentBundle, bundle_file, qr_text
from helmet_protocol.events import EventKind
from helmet_sim.broker import Broker
from helmet_sim.camera import VirtualCamera
from helmet_sim.rig import SimLocker

BIN = Path(sys.executable).parent / "helmet-edge"
KEY = "ICi5fFUGhBmuih4eBgyH1cAP7Necsfy+/rPsKKW2Gos="


def a_bundle(**changes: object) -> EnrolmentBundle:
    values: dict[str, object] = {
        "locker_id": "LK-0007",
        "station_id": "ST-HALL",
        "slot_count": 6,
        "pin_profile": "pi-gpio-6",
        "mqtt": BrokerAccess(host="mqtt.town.example", port=8883, tls=True, username="LK-0007", password="pw-1"),
        "pass_keys": {"k1": KEY},
        "max_quantity": 3,
        "helmet_url_host": "helmets.town.example",
        "last_seq": 41,
        "issued_at": datetime(2026, 11, 28, 9, tzinfo=UTC),
        **changes,
    }
    return EnrolmentBundle.model_validate(values)


def test_an_installed_bundle_is_private_and_becomes_the_config(tmp_path: Path) -> None:
    data = tmp_path / "data"
    path = enroll.install(data, a_bundle(mqtt=a_bundle().mqtt.model_copy(update={"ca_pem": "-----BEGIN CERT"})))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((path.parent / enroll.CA_NAME).stat().st_mode) == 0o600
    # A config file with only local settings: the bundle supplies identity, broker and keys.
    cfg = tmp_path / "edge.toml"
    cfg.write_text(f'data_dir = "{data}"\n[camera]\nfps = 5\n')
    s = load_settings(cfg)
    assert (s.locker_id, s.pin_profile, s.camera.fps) == ("LK-0007", "pi-gpio-6", 5)
    assert (s.mqtt.host, s.mqtt.port, s.mqtt.tls, s.mqtt.username, s.mqtt.password) == (
        "mqtt.town.example",
        8883,
        True,
        "LK-0007",
        "pw-1",
    )
    assert s.mqtt.ca_file == path.parent / enroll.CA_NAME
    assert (s.passes.keys, s.passes.max_quantity, s.passes.helmet_url_host) == ({"k1": KEY}, 3, "helmets.town.example")


def test_the_bundle_wins_over_the_file_and_the_environment_wins_over_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    enroll.install(data, a_bundle())
    cfg = tmp_path / "edge.toml"
    cfg.write_text(f'locker_id = "LK-0001"\ndata_dir = "{data}"\n[mqtt]\npassword = "change-me"\nkeepalive = 45\n')
    s = load_settings(cfg)
    assert (s.locker_id, s.mqtt.password, s.mqtt.keepalive) == ("LK-0007", "pw-1", 45)
    monkeypatch.setenv("HELMET_EDGE_MQTT__PASSWORD", "from-env")
    assert load_settings(cfg).mqtt.password == "from-env"


def test_a_fresh_store_numbers_events_after_the_clouds_last_seq(tmp_path: Path) -> None:
    data = tmp_path / "data"
    enroll.install(data, a_bundle(last_seq=41))
    store = Store(data / "locker.db", "LK-0007")
    try:
        made = store.commit(events=[EventDraft(EventKind.LOCKER_SELFTEST, reason="ok")], now=datetime.now(UTC))
        assert [e.seq for e in made] == [42]
        assert store.acked_seq() == 41
    finally:
        store.close()
    # Enrolling again with an older seq never lowers it.
    enroll.install(data, a_bundle(last_seq=10))
    store = Store(data / "locker.db", "LK-0007")
    try:
        assert store.last_seq() == 42
    finally:
        store.close()


def test_a_damaged_bundle_file_is_refused_and_nothing_is_installed(tmp_path: Path) -> None:
    good = bundle_file(a_bundle())
    edited = json.loads(json.dumps(good))
    edited["bundle"]["mqtt"]["host"] = "evil.example"
    f = tmp_path / "LK-0007.enrolment.json"
    f.write_text(json.dumps(edited))
    result = subprocess.run(
        [BIN, "enroll", "--bundle", str(f), "--data-dir", str(tmp_path / "data")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "checksum does not match" in result.stderr
    assert not (tmp_path / "data" / "enrolment").exists()
    # The untouched file installs.
    f.write_text(json.dumps(good))
    result = subprocess.run(
        [BIN, "enroll", "--bundle", str(f), "--data-dir", str(tmp_path / "data")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["locker_id"], report["events_continue_after_seq"]) == ("LK-0007", 41)
    assert report["broker"] == "mqtts://mqtt.town.example:8883"


def test_plain_http_needs_the_explicit_flag(tmp_path: Path) -> None:
    result = subprocess.run(
        [BIN, "enroll", "7KQ2-M9XD-4TWA", "--cloud-url", "http://cloud.example", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "plain http" in result.stderr
    with pytest.raises(enroll.EnrolError, match="not an enrolment code"):
        enroll.fetch("https://cloud.example", "not-a-code")


def test_first_boot_enrols_from_the_qr_held_to_the_camera(tmp_path: Path) -> None:
    camera = VirtualCamera(seed=3)
    camera.show("https://helmets.town.example/h/H-00001")  # a sticker first: ignored, not enrolled
    seen: list[tuple[str, str]] = []
    calls = 0

    def enrol(url: str, code: str) -> EnrolmentBundle:
        seen.append((url, code))
        return a_bundle()

    def stop() -> bool:
        nonlocal calls
        calls += 1
        if calls == 3:
            camera.show(qr_text("https://cloud.town.example", "7kq2 m9xd 4twa"))
        return calls > 50

    got = enroll.wait_for_qr(camera, CascadeDecoder(), enrol, should_stop=stop, fps=100)
    assert got is not None and got.locker_id == "LK-0007"
    assert seen == [("https://cloud.town.example", "7KQ2-M9XD-4TWA")]


def test_an_enrolled_kiosk_ignores_enrolment_qr_codes() -> None:
    scan = classify(qr_text("https://cloud.town.example", "7KQ2-M9XD-4TWA").encode(), helmet_host=None)
    assert isinstance(scan, ForeignScan)


def test_sd_notify_sends_ready_and_paced_watchdog_pings(tmp_path: Path) -> None:
    sock_path = tmp_path / "notify.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(sock_path))
    server.settimeout(2)
    try:
        n = Notifier({"NOTIFY_SOCKET": str(sock_path), "WATCHDOG_USEC": "10000000", "WATCHDOG_PID": str(os.getpid())})
        n.ready("6 slots")
        assert server.recv(256) == b"READY=1\nSTATUS=6 slots"
        n.ping(100.0)
        n.ping(101.0)  # within half the 10 s period: not sent
        n.ping(105.0)
        assert [server.recv(64), server.recv(64)] == [b"WATCHDOG=1", b"WATCHDOG=1"]
        server.settimeout(0.2)
        with pytest.raises(TimeoutError):
            server.recv(64)
    finally:
        server.close()
    # Not under systemd: nothing is sent and nothing fails.
    quiet = Notifier({})
    assert not quiet.enabled and not quiet.send("READY=1")


def test_the_locker_service_reports_ready_and_keeps_the_watchdog_fed(
    tmp_path: Path, mosquitto: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    sock_path = tmp_path / "notify.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(sock_path))
    server.settimeout(5)
    monkeypatch.setenv("NOTIFY_SOCKET", str(sock_path))
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # a ping every 0.1 s
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    locker = SimLocker("LK-0001", data_dir=tmp_path / "lk", mqtt_port=mosquitto.port)
    try:
        locker.start()
        assert server.recv(256).startswith(b"READY=1\nSTATUS=locker LK-0001: 6 slots")
        assert [server.recv(64) for _ in range(3)] == [b"WATCHDOG=1"] * 3
    finally:
        locker.stop()
    messages = []
    server.settimeout(0.5)
    try:
        while True:
            messages.append(server.recv(64))
    except TimeoutError:
        pass
    server.close()
    assert messages[-1] == b"STOPPING=1"
