"""The locker over a real broker: config, commands, store-and-forward, outages.

The test plays the cloud's side of the contract itself (retained config, acks,
commands) so that it can check exactly what the locker sends.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from support.fake_cloud import LOCKER, FakeCloud
from support.waiting import eventually

from helmet_protocol.messages import Ack, Command
from helmet_protocol.passes import Role, decode_pass, issue_pass
from helmet_sim import scenarios
from helmet_sim.broker import Broker, start_mosquitto
from helmet_sim.network import Cable
from helmet_sim.rig import SimLocker

KEY = Ed25519PrivateKey.generate()


@pytest.fixture
def cloud(mosquitto: Broker) -> Iterator[FakeCloud]:
    c = FakeCloud(mosquitto.port)
    c.send_config(KEY)
    yield c
    c.close()


@pytest.fixture
def rig(tmp_path: Path, mosquitto: Broker, cloud: FakeCloud) -> Iterator[SimLocker]:
    r = SimLocker(LOCKER, data_dir=tmp_path / "locker", mqtt_port=mosquitto.port)
    r.start()
    eventually(lambda: r.service.rules.keys)
    yield r
    r.stop()


def a_pass(quantity: int = 1, role: Role = Role.RESIDENT, key: Ed25519PrivateKey = KEY, kid: str = "k1") -> str:
    return issue_pass(
        signing_key=key,
        kid=kid,
        holder_id="R-1",
        quantity=quantity,
        role=role,
        now=datetime.now(UTC),
        ttl=timedelta(minutes=5),
    )


def stock(rig: SimLocker, *helmets: str) -> None:
    rig.show(a_pass(role=Role.TECHNICIAN), seconds=0.6)
    for h in helmets:
        rig.insert(h, pause=0.15)


def test_a_borrow_command_opens_once_however_often_it_is_delivered(rig: SimLocker, cloud: FakeCloud) -> None:
    stock(rig, "H-1", "H-2")
    text = a_pass(quantity=1)
    ack = cloud.command("c-1", "borrow", pass_text=text)
    assert ack["ok"] and ack["data"]["opened"] == [1]
    # The same command again (a QoS 1 redelivery): the same answer, nothing more opens.
    cloud.acks.clear()
    again = cloud.command("c-1", "borrow", pass_text=text)
    assert again == ack
    assert rig.take(2, timeout=2) == ["H-1"]
    # A new command with the same pass is a replay.
    refused = cloud.command("c-2", "borrow", pass_text=text)
    assert not refused["ok"] and "already used" in refused["error"]
    eventually(lambda: cloud.kinds()[-2:] == ["helmet.borrowed", "pass.rejected"])


def test_technician_commands_unlock_disable_and_selftest(rig: SimLocker, cloud: FakeCloud) -> None:
    stock(rig, "H-1")
    assert cloud.command("c-1", "disable_slot", slot=2)["ok"]
    assert cloud.command("c-2", "unlock", slot=1)["ok"]
    assert rig.take(1, timeout=2) == ["H-1"]
    report = cloud.command("c-3", "selftest")
    assert report["ok"] and report["data"]["ok"] is True
    assert len(report["data"]["slots"]) == 6
    bad = cloud.command("c-4", "unlock", slot=9)
    assert not bad["ok"] and "no slot 9" in bad["error"]
    eventually(lambda: {"slot.disabled", "helmet.removed", "locker.selftest"} <= set(cloud.kinds()))


def test_new_keys_and_revocations_apply_as_config_changes(rig: SimLocker, cloud: FakeCloud) -> None:
    stock(rig, "H-1", "H-2")
    new_key = Ed25519PrivateKey.generate()
    rig.show(a_pass(key=new_key, kid="k2"), seconds=0.6)
    eventually(lambda: cloud.kinds()[-1:] == ["pass.rejected"])
    assert cloud.events[-1]["reason"] == "unknown_key"
    cloud.send_config(KEY, new_key)
    eventually(lambda: "k2" in rig.service.rules.keys)
    rig.show(a_pass(key=new_key, kid="k2"), seconds=0.6)
    assert len(rig.take(1, timeout=3)) == 1


def test_passes_the_config_refuses_are_refused_by_scan_and_by_command_each_with_its_reason(
    rig: SimLocker, cloud: FakeCloud
) -> None:
    stock(rig, "H-1", "H-2")
    withdrawn, used, fresh = a_pass(), a_pass(), a_pass()
    cloud.send_config(KEY, revoked=[decode_pass(withdrawn)[0].pass_id], used=[decode_pass(used)[0].pass_id])
    eventually(lambda: rig.service.rules.used)
    rig.show(withdrawn, seconds=0.6)
    refused = cloud.command("c-1", "borrow", pass_text=used)
    assert not refused["ok"] and refused["error"].startswith("used_elsewhere:") and refused["data"]["opened"] == []
    assert rig.physical.released() == []
    eventually(lambda: cloud.kinds()[-2:] == ["pass.rejected", "pass.rejected"])
    assert [e["reason"] for e in sorted(cloud.events, key=lambda e: e["seq"])[-2:]] == ["revoked", "used_elsewhere"]
    # A pass neither list names still opens; the locker keeps the lists across a restart (stored config).
    assert cloud.command("c-2", "borrow", pass_text=fresh)["ok"]
    assert rig.service.store.get_json("config")["used_pass_ids"] == [decode_pass(used)[0].pass_id]


def test_a_frozen_camera_is_reported_in_the_status(rig: SimLocker, cloud: FakeCloud) -> None:
    eventually(lambda: cloud.status.get("online") is True and cloud.status.get("camera_ok") is True)
    with scenarios.camera_frozen(rig.camera):
        eventually(lambda: cloud.status.get("camera_ok") is False)
    eventually(lambda: cloud.status.get("camera_ok") is True)


def test_an_event_stays_in_the_outbox_until_the_cloud_acknowledges_it(tmp_path: Path, mosquitto: Broker) -> None:
    cloud = FakeCloud(mosquitto.port, ack=False)
    cloud.send_config(KEY)
    rig = SimLocker(LOCKER, data_dir=tmp_path / "locker", mqtt_port=mosquitto.port)
    rig.start()
    try:
        eventually(lambda: rig.service.rules.keys)
        stock(rig, "H-1")
        eventually(lambda: len(cloud.events) == 1)
        assert rig.service.store.outbox_size() == 1
        # Unacknowledged, it is sent again (resend_after is 5 s in the rig); the cloud de-duplicates by id.
        cloud.publish("ack", Ack(locker_id=LOCKER, seq=1).to_json(), retain=True)
        eventually(lambda: rig.service.store.outbox_size() == 0)
    finally:
        rig.stop()
        cloud.close()


@pytest.mark.slow
def test_offline_for_longer_than_the_reconnect_backoff_loses_nothing(tmp_path: Path) -> None:
    broker = start_mosquitto(tmp_path / "broker")
    port = broker.port
    cloud = FakeCloud(port)
    cloud.send_config(KEY)
    # paho's reconnect waits double up to reconnect_max_s (30 s on a Pi); 4 s here keeps the test short.
    rig = SimLocker(LOCKER, data_dir=tmp_path / "locker", mqtt_port=port, reconnect_max_s=4)
    rig.start()
    try:
        eventually(lambda: rig.service.rules.keys)
        stock(rig, "H-1", "H-2", "H-3")
        eventually(lambda: len(cloud.events) == 3)
        broker.process.kill()  # type: ignore[attr-defined]  (down until broker_restart below)
        eventually(lambda: not rig.service.link.connected)
        # Offline: passes still verify, slots still open, events queue in order.
        rig.show(a_pass(quantity=2), seconds=0.6)
        assert sorted(rig.take(2, timeout=3)) == ["H-1", "H-2"]
        time.sleep(rig.settings.timing.repeat_window_s)  # H-2's sticker was in view moments ago, at stocking
        rig.insert("H-2", pause=0.15)
        assert rig.service.store.outbox_size() >= 3
        # Down for longer than the longest reconnect delay, so paho is at its slowest, then back on the same port.
        broker = scenarios.broker_restart(broker, tmp_path / "broker", down_for=8)
        eventually(lambda: rig.service.link.connected, timeout=15)
        eventually(lambda: len(cloud.events) == 6, timeout=30)
        seqs = [e["seq"] for e in cloud.events]
        assert seqs == sorted(seqs) == list(range(1, 7))
        assert cloud.kinds()[3:] == ["helmet.borrowed", "helmet.borrowed", "helmet.returned"]
        eventually(lambda: rig.service.store.outbox_size() == 0)
    finally:
        rig.stop()
        cloud.close()
        broker.stop()


def test_a_command_queued_while_offline_is_refused_when_stale(rig: SimLocker, cloud: FakeCloud) -> None:
    stock(rig, "H-1")
    old = Command(cmd_id="c-old", op="unlock", slot=1, ts=datetime.now(UTC) - timedelta(hours=2))
    cloud.publish("cmd", old.to_json())
    ack = eventually(lambda: cloud.acks.get("c-old"))
    assert not ack["ok"] and "old" in ack["error"]
    assert rig.physical.released() == []


def test_the_link_runs_with_nagle_off(rig: SimLocker) -> None:
    import socket

    sock = rig.service.link.client.socket()
    assert sock is not None
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_a_locker_cut_off_keeps_serving_and_its_events_arrive_in_order(tmp_path: Path, mosquitto: Broker) -> None:
    cloud = FakeCloud(mosquitto.port)
    cloud.send_config(KEY)
    cable = Cable(mosquitto.port)
    rig = SimLocker(LOCKER, data_dir=tmp_path / "locker", mqtt_port=cable.port)
    rig.start()
    try:
        eventually(lambda: rig.service.rules.keys)
        stock(rig, "H-1", "H-2")
        eventually(lambda: len(cloud.events) == 2 and cloud.status.get("online"))
        with scenarios.locker_offline(cable):
            # The broker notices the dead connection and publishes the Last Will.
            eventually(lambda: cloud.status.get("online") is False)
            rig.show(a_pass(quantity=2), seconds=0.6)
            assert sorted(rig.take(2, timeout=3)) == ["H-1", "H-2"]
            assert rig.service.store.outbox_size() == 2
        eventually(lambda: cloud.status.get("online") is True, timeout=40)
        eventually(lambda: len(cloud.events) == 4, timeout=20)
        assert [e["seq"] for e in sorted(cloud.events, key=lambda e: e["seq"])] == [1, 2, 3, 4]
        assert cloud.kinds()[2:] == ["helmet.borrowed", "helmet.borrowed"]
    finally:
        rig.stop()
        cable.close()
        cloud.close()


@pytest.mark.parametrize(("skew_s", "opens"), [(120, False), (900, True)])
def test_a_locker_clock_ten_minutes_fast(tmp_path: Path, mosquitto: Broker, skew_s: float, opens: bool) -> None:
    cloud = FakeCloud(mosquitto.port)
    cloud.send_config(KEY)
    rig = SimLocker(
        LOCKER,
        data_dir=tmp_path / "locker",
        mqtt_port=mosquitto.port,
        clock=scenarios.SkewedClock(timedelta(minutes=10)),
        skew_s=skew_s,
    )
    rig.start()
    try:
        eventually(lambda: rig.service.rules.keys)
        stock(rig, "H-1")
        rig.show(a_pass(), seconds=0.6)
        if opens:  # a tolerance wider than the clock error: the 5-minute pass still opens
            assert rig.take(1, timeout=3) == ["H-1"]
        else:  # the default tolerance: the locker thinks the pass expired, and says so
            assert rig.take(1, timeout=1) == []
            eventually(lambda: cloud.kinds()[-1:] == ["pass.rejected"])
            assert cloud.events[-1]["reason"] == "expired"
    finally:
        rig.stop()
        cloud.close()


def test_the_status_is_republished_so_silence_means_trouble(rig: SimLocker, cloud: FakeCloud) -> None:
    rig.service.settings.mqtt.status_interval_s = 0.3
    seen: list[str] = []
    eventually(lambda: seen.append(cloud.status.get("ts", "")) or len(set(seen)) >= 3, timeout=10)
    assert cloud.status["online"] is True


def test_a_clock_step_is_announced_at_once_so_the_cloud_can_correct_event_times(
    tmp_path: Path, mosquitto: Broker
) -> None:
    cloud = FakeCloud(mosquitto.port)
    cloud.send_config(KEY)
    clock = scenarios.SkewedClock(timedelta(minutes=-10))  # booted with a stale clock
    rig = SimLocker(LOCKER, data_dir=tmp_path / "locker", mqtt_port=mosquitto.port, clock=clock)
    rig.start()
    try:
        eventually(lambda: cloud.status.get("online") is True)
        before = datetime.fromisoformat(cloud.status["ts"])
        assert abs((datetime.now(UTC) - before) - timedelta(minutes=10)) < timedelta(seconds=5)
        clock.offset = timedelta(0)  # NTP answers: the clock steps forward
        # Long before the next minutely status, the locker tells the cloud its corrected time.
        eventually(
            lambda: abs(datetime.fromisoformat(cloud.status["ts"]) - datetime.now(UTC)) < timedelta(seconds=5),
            timeout=5,
        )
    finally:
        rig.stop()
        cloud.close()
