"""A simulated locker: the real edge service on mock pins and a virtual camera."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from helmet_edge.clock_system import SystemClock
from helmet_edge.config import CameraSettings, EdgeSettings, FaceSettings, MqttSettings, PassSettings, TimingSettings
from helmet_edge.decoder_cascade import CascadeDecoder
from helmet_edge.face_http import FaceServer
from helmet_edge.link_mqtt import MqttLink
from helmet_edge.loop import LockerLoop
from helmet_edge.ports import Clock
from helmet_edge.profile import load_profile
from helmet_edge.slots_gpiozero import GpioSlotBank
from helmet_edge.store import Store
from helmet_protocol.stickers import helmet_url
from helmet_sim.camera import VirtualCamera
from helmet_sim.physical import PhysicalError, PhysicalLocker, PhysicalSlot
from helmet_sim.speaker import RecordingSpeaker


class SimLocker:
    def __init__(
        self,
        locker_id: str,
        *,
        data_dir: Path,
        mqtt_host: str = "127.0.0.1",
        mqtt_port: int = 1883,
        helmet_host: str = "helmets.example.org",
        profile: str = "pi-gpio-6",
        fps: float = 10.0,
        timing: TimingSettings | None = None,
        persist_physical: bool = False,
        clock: Clock | None = None,
        skew_s: float | None = None,
        idle_camera: bool = False,
        reconnect_max_s: int = 30,
        face: FaceSettings | None = None,
    ) -> None:
        """``face``: serve the locker's screen on loopback with these settings (port 0: a free one); ``None``:
        no page (the face still decides, and the simulated speaker records what it says)."""
        self.locker_id = locker_id
        self.helmet_host = helmet_host
        self._kwargs = {
            "data_dir": data_dir, "mqtt_host": mqtt_host, "mqtt_port": mqtt_port, "helmet_host": helmet_host,
            "profile": profile, "fps": fps, "timing": timing, "persist_physical": persist_physical, "clock": clock,
            "skew_s": skew_s, "idle_camera": idle_camera, "reconnect_max_s": reconnect_max_s, "face": face,
        }  # fmt: skip
        pin_profile = load_profile(profile)
        data_dir.mkdir(parents=True, exist_ok=True)
        state_file = data_dir / "physical.json" if persist_physical else None
        self.physical = PhysicalLocker(pin_profile, state_file=state_file)
        bank = GpioSlotBank(pin_profile, pin_factory=self.physical.factory)
        self.physical.sync()  # the devices just applied their pulls; drive the real levels again
        self.camera = VirtualCamera(seed=hash(locker_id) & 0xFFFF, idle=idle_camera)
        self.settings = EdgeSettings(
            locker_id=locker_id,
            data_dir=data_dir,
            pin_profile=profile,
            mqtt=MqttSettings(host=mqtt_host, port=mqtt_port, resend_after_s=5.0, reconnect_max_s=reconnect_max_s),
            camera=CameraSettings(fps=fps),
            timing=timing or TimingSettings(),
            passes=PassSettings(helmet_url_host=helmet_host, **({"skew_s": skew_s} if skew_s is not None else {})),
            face=face or FaceSettings(enabled=False),
        )
        self.speaker = RecordingSpeaker()
        self.link: MqttLink | None = None  # the paho link, kept here to cut it without a goodbye (cut_power)
        self.service = LockerLoop(
            self.settings,
            slots=bank,
            camera=self.camera,
            decoder=CascadeDecoder(),
            store=Store.in_data_dir(data_dir, locker_id),
            link_factory=self._make_link,
            clock=clock or SystemClock(),
            speaker=self.speaker,
        )
        self.face_server = FaceServer(self.service.face, self.settings.face) if face is not None else None
        self.profile = pin_profile
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self.service.run, args=(self._stop,), name=locker_id, daemon=True)

    def _make_link(self, *args: Any, **kwargs: Any) -> MqttLink:
        self.link = MqttLink(*args, **kwargs)
        return self.link

    @property
    def face_url(self) -> str | None:
        return self.face_server.url if self.face_server is not None else None

    def start(self) -> None:
        self.service.start()
        self._thread.start()
        if self.face_server is not None:
            self.face_server.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        if self.face_server is not None:
            self.face_server.close()
        self.service.close()

    def cut_power(self) -> None:
        """The Pi loses power: the loop stops between two turns, the MQTT socket dies without a goodbye.

        No offline status is sent (the broker publishes the Last Will), no lock is driven; the
        store keeps only what it committed. The physical world stays as it is.
        """
        self._stop.set()
        self._thread.join(timeout=5)
        if self.face_server is not None:
            self.face_server.close()  # the screen goes dark with the Pi
        if self.link is None:
            raise RuntimeError("the locker has no MQTT link to cut")
        client = self.link.client
        client.loop_stop()  # paho's network thread ends without sending DISCONNECT
        sock = client.socket()
        if sock is not None:
            sock.close()  # the broker sees the connection drop and publishes the Last Will
        self.service.store.close()

    def power_on(self) -> SimLocker:
        """A fresh locker process on the same data directory and physical world (after :meth:`cut_power`)."""
        if not self._kwargs["persist_physical"]:
            raise ValueError("a power cut needs persist_physical=True: the doors and helmets must outlive the Pi")
        kwargs = dict(self._kwargs)
        if self.face_server is not None:  # the screen comes back where the kiosk's browser looks for it
            kwargs["face"] = self.settings.face.model_copy(update={"port": self.face_server.port})
        rig = SimLocker(self.locker_id, **kwargs)  # type: ignore[arg-type]
        rig.start()
        return rig

    def feedback_count(self) -> int:
        """How often the kiosk's LED has changed: a person sees it blink when a code was read."""
        if self.profile.led is None:
            return 0
        return len(self.physical.factory.pin(self.profile.led).states)

    def wait_quiet(self, quiet: float = 0.35, timeout: float = 3.0) -> None:
        """Wait until the LED has finished blinking for the person before (longest gap in a pattern: 0.3 s)."""
        if self.profile.led is None:
            return
        pin = self.physical.factory.pin(self.profile.led)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and (pin.state or time.monotonic() - pin._last_change < quiet):
            time.sleep(0.05)
        if len(pin.states) > 1000:  # the mock pin keeps every change; a long run would hoard them
            pin.clear_states()

    # -- what people do in front of it -----------------------------------------

    def show(self, text: str, seconds: float = 1.5, **style: object) -> None:
        self.camera.show(text, **style)  # type: ignore[arg-type]
        time.sleep(seconds)
        self.camera.clear()

    def wait_released(self, count: int, timeout: float) -> list[PhysicalSlot]:
        deadline = time.monotonic() + timeout
        released: list[PhysicalSlot] = []
        while time.monotonic() < deadline:
            released = self.physical.released()
            if len(released) >= count:
                return released
            time.sleep(0.02)
        return released

    def take(self, count: int, *, timeout: float = 10.0, pause: float = 0.3) -> list[str]:
        """A person opens each released door, takes the helmet and shuts the door."""
        taken: list[str] = []
        if self.wait_released(1, timeout):
            time.sleep(0.1)  # the locker opens its slots one after another within one loop turn
        for slot in self.physical.released()[:count]:
            slot.open_door()
            time.sleep(pause)
            if slot.helmet is not None:
                taken.append(slot.take_helmet())
            time.sleep(pause)
            slot.close_door()
        time.sleep(pause)
        return taken

    def insert(self, helmet_id: str, *, timeout: float = 20.0, pause: float = 0.3) -> int:
        """Hold the helmet's sticker to the camera, put it in the slot that opens, shut the door.

        Like a person, if nothing opens (the locker had no free slot yet, say: a door just shut is not
        settled), lower the sticker past the kiosk's repeat window and show it again, until ``timeout``.
        """
        deadline = time.monotonic() + timeout
        released: list[PhysicalSlot] = []
        while not released and time.monotonic() < deadline:
            self.camera.show(helmet_url(self.helmet_host, helmet_id))
            try:
                released = self.wait_released(1, min(5.0, deadline - time.monotonic()))
            finally:
                self.camera.clear()
            if not released:
                time.sleep(min(self.service.rules.repeat_window + 0.5, max(0.0, deadline - time.monotonic())))
        if not released:
            raise PhysicalError(f"no slot opened for {helmet_id}")
        slot = released[0]
        slot.open_door()
        time.sleep(pause)
        slot.put_helmet(helmet_id)
        time.sleep(pause)
        slot.close_door()
        time.sleep(pause)
        return slot.number
