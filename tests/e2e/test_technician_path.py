"""The technician's whole path against real processes: a cloud (uvicorn, its own database), Mosquitto with
dynamic security, and a simulated Pi that knows nothing until it is enrolled.

Register a locker, enrol the Pi with its code (``helmet-edge enroll``), it connects with its own
credentials, passes the self-test, is stocked with helmets, serves a borrow; a second locker's
credentials cannot touch the first's topics; a decommissioned locker is refused by the broker.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from support.processes import CloudProcess
from support.secure_broker import Peer, cloud_env, connects
from support.waiting import eventually

from helmet_cloud.adapters.dynsec import DynsecAdmin
from helmet_edge.config import load_settings
from helmet_edge.decoder_cascade import CascadeDecoder
from helmet_edge.profile import load_profile
from helmet_edge.service import LockerService
from helmet_edge.slots_gpiozero import GpioSlotBank
from helmet_protocol.enrolment import read_bundle_file
from helmet_protocol.messages import Event, utcnow
from helmet_sim.broker import Broker
from helmet_sim.camera import VirtualCamera
from helmet_sim.cloud_client import CloudClient
from helmet_sim.physical import PhysicalLocker
from helmet_sim.rig import SimLocker

pytestmark = pytest.mark.slow
EDGE = Path(sys.executable).parent / "helmet-edge"


class EnrolledPi(SimLocker):
    """A simulated locker whose identity, broker and credentials come from its installed enrolment bundle,
    read by the same ``load_settings`` that ``helmet-edge run`` uses (SimLocker's people-facing helpers)."""

    def __init__(self, config: Path) -> None:  # deliberately not SimLocker's: no identity is passed in
        self.settings = load_settings(config)
        self.locker_id = self.settings.locker_id
        self.helmet_host = self.settings.passes.helmet_url_host or ""
        self.profile = load_profile(self.settings.pin_profile)
        self.physical = PhysicalLocker(self.profile)
        bank = GpioSlotBank(self.profile, pin_factory=self.physical.factory)
        self.physical.sync()
        self.camera = VirtualCamera(seed=7)
        self.service = LockerService(self.settings, slots=bank, camera=self.camera, decoder=CascadeDecoder())
        self.face_server = None  # no screen on this one
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self.service.run, args=(self._stop,), name="pi", daemon=True)


def test_a_technician_puts_a_locker_on_the_street_and_decommissions_it(
    tmp_path: Path, secure_broker: tuple[Broker, DynsecAdmin]
) -> None:
    secure, _ = secure_broker
    cloud = CloudProcess(tmp_path / "cloud", secure.port, f"sqlite:///{tmp_path}/cloud/cloud.db", **cloud_env(secure))
    cloud.add_user("ana", "admin", "correct horse")
    cloud.add_user("tom", "technician", "correct horse")
    admin = cloud.start().login("ana", "correct horse")
    tech = CloudClient(cloud.url).login("tom", "correct horse")
    pi: EnrolledPi | None = None
    try:
        admin.create_station("ST-1", "Town hall", 47.37, 8.54)
        tech.register_locker("LK-0001", "ST-1", slot_count=6)
        tech.register_locker("LK-0002", "ST-1", slot_count=6)
        # The Pi: a config file with only local settings, then `helmet-edge enroll CODE`.
        config = tmp_path / "pi" / "config.toml"
        config.parent.mkdir()
        config.write_text(f'data_dir = "{tmp_path / "pi" / "data"}"\n[camera]\nfps = 10\n')
        code = tech._call("POST", "/api/lockers/LK-0001/enrolment")["code"]
        enrolled = subprocess.run(
            [EDGE, "enroll", code, "--cloud-url", cloud.url, "--insecure-http", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert enrolled.returncode == 0, enrolled.stderr
        pi = EnrolledPi(config)
        assert (pi.locker_id, pi.settings.mqtt.username) == ("LK-0001", "LK-0001")
        pi.start()
        # Its own credentials: the broker lets it in, the cloud sees it online and its config reaches it.
        eventually(lambda: tech.locker("LK-0001")["online"])
        eventually(lambda: pi is not None and pi.service.store.get_json("config") is not None)
        # The self-test, as a command from the cloud.
        cmd = tech._call("POST", "/api/lockers/LK-0001/commands", json={"op": "selftest"})
        done = eventually(lambda: (c := tech._call("GET", f"/api/commands/{cmd['id']}"))["status"] != "sent" and c)
        assert done["status"] == "ok", done
        # Stocking with a technician pass, then a resident's borrow.
        pi.show(tech.technician_pass(), seconds=1.0)
        for helmet in ("H-00001", "H-00002"):
            pi.insert(helmet)
        eventually(lambda: admin.station("ST-1")["helmets_available"] == 2)
        resident = CloudClient(cloud.url).sign_in_resident("+41791234567", cloud.sms_file)
        borrow = resident.request_pass(1, station_id="ST-1")
        pi.show(borrow["text"], seconds=0.5)
        assert len(pi.take(1)) == 1
        loans = eventually(lambda: resident.loans(status="open"))
        assert [(ln["borrow_locker_id"], ln["pass_id"]) for ln in loans] == [("LK-0001", borrow["pass_id"])]
        resident.close()
        # A second locker's credentials cannot touch the first's topics.
        other = read_bundle_file(_exchange(cloud.url, tech._call("POST", "/api/lockers/LK-0002/enrolment")["code"]))
        before = len(admin.events(locker_id="LK-0001"))
        intruder = Peer(secure.port, "LK-0002", other.mqtt.password)
        eventually(lambda: intruder.accepted)
        assert not intruder.subscribe("helmet/v1/LK-0001/cmd")
        fake = Event(event_id="x-1", locker_id="LK-0001", seq=99, ts=utcnow(), kind="helmet.returned").to_json()
        intruder.client.publish("helmet/v1/LK-0001/events", fake, qos=1).wait_for_publish(5)
        intruder.close()
        # Decommissioning: the broker drops the running locker at once and refuses it afterwards.
        revoked = admin.http.post("/api/lockers/LK-0001/revoke", headers={"Authorization": f"Bearer {admin.token}"})
        assert revoked.status_code == 204
        eventually(lambda: not pi.service.link.connected, timeout=5)
        assert not connects(secure.port, "LK-0001", pi.settings.mqtt.password, client_id="LK-0001-again")
        assert len(admin.events(locker_id="LK-0001")) == before  # the intruder's event never arrived
    finally:
        if pi is not None:
            pi.stop()
        tech.close()
        admin.close()
        cloud.stop()


def _exchange(cloud_url: str, code: str) -> bytes:
    import httpx

    resp = httpx.post(f"{cloud_url}/api/enrolment", json={"code": code}, timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.content
