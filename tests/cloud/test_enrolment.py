"""Enrolment codes and bundles: the technician's path from a registered locker to a Pi that knows who it is."""

from __future__ import annotations

import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlmodel import Session, select
from support.cloud_users import user_headers
from support.processes import CloudProcess
from support.secure_broker import Peer, cloud_env, cloud_settings
from support.waiting import eventually

from helmet_cloud.adapters.database import make_engine
from helmet_cloud.adapters.dynsec import DynsecAdmin
from helmet_cloud.app import create_app
from helmet_cloud.context import Limits
from helmet_cloud.models import AuditEntry, EnrolmentCode, Locker
from helmet_cloud.settings import CloudSettings
from helmet_edge import enroll
from helmet_edge.slot_machine import EventDraft
from helmet_edge.store import Store
from helmet_protocol.enrolment import parse_qr_text, read_bundle_file
from helmet_protocol.events import EventKind
from helmet_protocol.messages import Event, new_event_id
from helmet_sim.broker import Broker

EDGE = Path(sys.executable).parent / "helmet-edge"


def setup_locker(api: TestClient, settings: CloudSettings) -> dict[str, str]:
    tech = user_headers(api, settings, role="technician")
    staff = user_headers(api, settings, role="staff", username="staff-user")
    assert api.post("/api/stations", headers=staff, json={"id": "ST-1", "name": "Hall", "lat": 47, "lon": 8}).is_success
    body = {"id": "LK-0001", "station_id": "ST-1", "slot_count": 6}
    assert api.post("/api/lockers", headers=tech, json=body).status_code == 201
    return tech


def new_code(api: TestClient, tech: dict[str, str], **body: object) -> dict[str, str]:
    resp = api.post("/api/lockers/LK-0001/enrolment", headers=tech, json=body or None)
    assert resp.status_code == 201, resp.text
    answer: dict[str, str] = resp.json()
    return answer


def test_a_code_is_shown_as_a_qr_and_exchanged_once(api: TestClient, settings: CloudSettings) -> None:
    tech = setup_locker(api, settings)
    assert api.post("/api/lockers/LK-0001/enrolment").status_code == 401
    issued = new_code(api, tech)
    assert parse_qr_text(issued["qr_text"]) == ("https://helmets.example.org", issued["code"])
    assert issued["qr_svg"].startswith("<svg")
    svg = api.get(issued["svg_url"], headers=tech)
    assert svg.status_code == 200 and svg.headers["content-type"] == "image/svg+xml"
    assert b"<svg" in svg.content
    # The Pi's side needs no sign-in: the code is the credential. Lower case and spaces are forgiven.
    resp = api.post("/api/enrolment", json={"code": issued["code"].lower().replace("-", " ")})
    assert resp.status_code == 200, resp.text
    bundle = read_bundle_file(resp.content)
    assert (bundle.locker_id, bundle.station_id, bundle.slot_count, bundle.pin_profile) == (
        "LK-0001",
        "ST-1",
        6,
        "pi-gpio-6",
    )
    assert (bundle.mqtt.host, bundle.mqtt.port, bundle.mqtt.username) == ("127.0.0.1", settings.mqtt_port, "LK-0001")
    assert bundle.mqtt.password is None  # this cloud does not manage broker users
    assert bundle.pass_keys and bundle.last_seq == 0
    again = api.post("/api/enrolment", json={"code": issued["code"]})
    assert again.status_code == 410 and "was used at" in again.json()["detail"]
    assert api.get(issued["svg_url"], headers=tech).status_code == 404
    engine = make_engine(settings.database_url)
    with Session(engine) as s:
        actions = [a.action for a in s.exec(select(AuditEntry).order_by(AuditEntry.id)).all()]
        stored = s.exec(select(EnrolmentCode)).one()
    engine.dispose()
    assert actions[-2:] == ["locker.enrolment_code", "locker.enrol"]
    assert issued["code"] not in stored.code_hash  # only its hash is kept


def test_expired_replaced_unknown_and_malformed_codes_are_refused_and_change_nothing(
    api: TestClient, settings: CloudSettings
) -> None:
    tech = setup_locker(api, settings)
    old = new_code(api, tech)
    fresh = new_code(api, tech, minutes=5)
    replaced = api.post("/api/enrolment", json={"code": old["code"]})
    assert replaced.status_code == 410 and "replaced by a newer one" in replaced.json()["detail"]
    engine = make_engine(settings.database_url)
    with Session(engine) as s:
        for row in s.exec(select(EnrolmentCode)).all():
            row.expires_at = datetime.now(UTC) - timedelta(minutes=1)
            s.add(row)
        s.commit()
    expired = api.post("/api/enrolment", json={"code": fresh["code"]})
    assert expired.status_code == 410 and "expired at" in expired.json()["detail"]
    unknown = api.post("/api/enrolment", json={"code": "0000-0000-0000"})
    assert unknown.status_code == 404 and "unknown enrolment code" in unknown.json()["detail"]
    bad = api.post("/api/enrolment", json={"code": "ILOU-0000-0000"})
    assert bad.status_code == 422 and "not an enrolment code" in bad.json()["detail"]
    with Session(engine) as s:
        assert all(r.used_at is None for r in s.exec(select(EnrolmentCode)).all())
    engine.dispose()


def test_exchanges_are_limited_per_client_address(tmp_path: Path, database_url: str, mosquitto: Broker) -> None:
    settings = CloudSettings(
        database_url=database_url,
        data_dir=tmp_path / "cloud",
        mqtt_port=mosquitto.port,
        enrolment_attempts_per_10_minutes=3,
    )
    with TestClient(create_app(settings)) as api:
        tech = setup_locker(api, settings)
        code = new_code(api, tech)["code"]
        for _ in range(3):
            assert api.post("/api/enrolment", json={"code": "0000-0000-0000"}).status_code == 404
        limited = api.post("/api/enrolment", json={"code": code})
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
        assert "too many enrolment attempts" in limited.json()["detail"]
        # The right code, sent too often, was not spent: it still works once the client is let in again.
        ctx = api.app.state.ctx  # type: ignore[attr-defined]
        ctx.limits = Limits.from_settings(ctx.settings)
        assert api.post("/api/enrolment", json={"code": code}).status_code == 200


def test_an_offline_bundle_kills_open_codes(api: TestClient, settings: CloudSettings) -> None:
    tech = setup_locker(api, settings)
    code = new_code(api, tech)["code"]
    resp = api.post("/api/lockers/LK-0001/bundle", headers=tech)
    assert resp.status_code == 200
    assert resp.headers["content-disposition"] == 'attachment; filename="LK-0001.enrolment.json"'
    assert read_bundle_file(resp.content).locker_id == "LK-0001"
    assert api.post("/api/enrolment", json={"code": code}).status_code == 410


def test_technician_path_enrols_a_pi_against_a_running_cloud(
    tmp_path: Path, secure_broker: tuple[Broker, DynsecAdmin], database_url: str
) -> None:
    """Register a locker, get a code, `helmet-edge enroll` it on the "Pi", connect with what it got, reuse refused."""
    secure, _ = secure_broker
    cloud = CloudProcess(tmp_path / "cloud", secure.port, database_url, **cloud_env(secure))
    cloud.add_user("tech", "technician", "correct horse")
    cloud.add_user("boss", "staff", "correct horse")
    client = cloud.start()
    try:
        client.login("boss", "correct horse")
        client.create_station("ST-1", "Town hall", 47.37, 8.54)
        client.login("tech", "correct horse")
        client.register_locker("LK-0001", "ST-1", slot_count=6)
        code = client._call("POST", "/api/lockers/LK-0001/enrolment")["code"]
        data = tmp_path / "pi" / "data"
        cmd = [EDGE, "enroll", code, "--cloud-url", cloud.url, "--insecure-http", "--data-dir", str(data)]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        path = enroll.bundle_path(data)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        bundle = read_bundle_file(path.read_bytes())
        assert (bundle.locker_id, bundle.mqtt.username, bundle.mqtt.port) == ("LK-0001", "LK-0001", secure.port)
        assert bundle.mqtt.password and bundle.pass_keys
        pi = Peer(secure.port, "LK-0001", bundle.mqtt.password)
        eventually(lambda: pi.connect_rc is not None)
        assert pi.accepted
        pi.close()
        again = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert again.returncode == 1
        assert "the cloud refused the code (410)" in again.stderr and "ask for a new one" in again.stderr
        assert read_bundle_file(path.read_bytes()) == bundle  # the refused attempt changed nothing
    finally:
        client.close()
        cloud.stop()


def _publish_events(peer: Peer, seqs: list[int]) -> None:
    for seq in seqs:
        ev = Event(
            event_id=new_event_id(),
            locker_id="LK-0001",
            seq=seq,
            ts=datetime.now(UTC),
            kind=EventKind.LOCKER_SELFTEST,
            reason="ok",
        )
        peer.client.publish("helmet/v1/LK-0001/events", ev.to_json(), qos=1).wait_for_publish(5)


def test_a_replacement_pi_numbers_its_events_after_what_the_cloud_holds(
    tmp_path: Path, secure_broker: tuple[Broker, DynsecAdmin], database_url: str
) -> None:
    secure, _ = secure_broker
    settings = cloud_settings(secure, database_url=database_url, data_dir=tmp_path / "cloud")
    engine = make_engine(database_url)

    def acked() -> int:
        with Session(engine) as s:
            locker = s.get(Locker, "LK-0001")
            assert locker is not None
            return locker.acked_seq

    with TestClient(create_app(settings)) as api:
        tech = setup_locker(api, settings)
        first = read_bundle_file(api.post("/api/enrolment", json={"code": new_code(api, tech)["code"]}).content)
        old_pi = Peer(secure.port, "LK-0001", first.mqtt.password, client_id="LK-0001")
        eventually(lambda: old_pi.accepted)
        # The old Pi's events 1-3 and 5 arrive; 4 never does (the Pi dies with it in its outbox).
        _publish_events(old_pi, [1, 2, 3, 5])
        eventually(lambda: acked() == 3)
        second = read_bundle_file(api.post("/api/enrolment", json={"code": new_code(api, tech)["code"]}).content)
        assert second.last_seq == 5 and second.mqtt.password != first.mqtt.password
        assert old_pi.disconnected.wait(5), "the replaced Pi must be cut off at once"
        old_pi.close()
        # The new Pi: a fresh database, enrolled with the new bundle, numbers its next event 6.
        data = tmp_path / "new-pi"
        enroll.install(data, second)
        store = Store(data / "locker.db", "LK-0001")
        made = store.commit(events=[EventDraft(EventKind.LOCKER_SELFTEST, reason="ok")], now=datetime.now(UTC))
        store.close()
        assert [e.seq for e in made] == [6]
        new_pi = Peer(secure.port, "LK-0001", second.mqtt.password, client_id="LK-0001")
        eventually(lambda: new_pi.accepted)
        new_pi.client.publish("helmet/v1/LK-0001/events", made[0].to_json(), qos=1).wait_for_publish(5)
        eventually(lambda: acked() == 6)  # the cloud gave up seq 4 and acknowledges the new Pi's events
        new_pi.close()
    engine.dispose()


def test_the_bundle_names_the_brokers_street_address_and_its_ca(
    tmp_path: Path, database_url: str, mosquitto: Broker
) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    settings = CloudSettings(
        database_url=database_url,
        data_dir=tmp_path / "cloud",
        mqtt_port=mosquitto.port,
        locker_mqtt_host="mqtt.town.example",
        locker_mqtt_port=8883,
        locker_mqtt_tls=True,
        locker_mqtt_ca_file=ca,
    )
    with TestClient(create_app(settings)) as api:
        tech = setup_locker(api, settings)
        code = new_code(api, tech)["code"]
        ca.unlink()  # a broken deployment: the request fails and the code is not spent
        broken = api.post("/api/enrolment", json={"code": code})
        assert broken.status_code == 500 and "locker_mqtt_ca_file" in broken.json()["detail"]
        ca.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
        bundle = read_bundle_file(api.post("/api/enrolment", json={"code": code}).content)
    m = bundle.mqtt
    assert (m.host, m.port, m.tls, m.ca_pem) == ("mqtt.town.example", 8883, True, ca.read_text())
    # On the Pi the CA becomes a private file that the broker connection uses.
    data = tmp_path / "pi"
    enroll.install(data, bundle)
    cfg = tmp_path / "edge.toml"
    cfg.write_text(f'data_dir = "{data}"\n')
    from helmet_edge.config import load_settings

    s = load_settings(cfg)
    assert s.mqtt.ca_file is not None and s.mqtt.ca_file.read_text() == ca.read_text()
    assert stat.S_IMODE(s.mqtt.ca_file.stat().st_mode) == 0o600
