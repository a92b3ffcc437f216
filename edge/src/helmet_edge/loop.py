"""The locker's loop: one thread turns it (messages, sensors, camera, outbox, status); paho's thread only
queues incoming messages, which the loop routes by channel.

It depends on ports only (``ports.py``); the composition roots (``cli.py``, ``helmet_sim.rig``,
``service.py``'s defaults) build the adapters and pass them. The store commits every change before any
lock moves.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import timedelta

from helmet_edge.clock_system import SystemClock
from helmet_edge.cloud_config import rules_from, slot_count_mismatch
from helmet_edge.commands import CommandExecutor
from helmet_edge.config import EdgeSettings
from helmet_edge.face import Face
from helmet_edge.forwarder import Forwarder
from helmet_edge.locker import Locker, Outcome, Rules
from helmet_edge.ports import Camera, Clock, Decoder, LinkFactory, SlotBank, Speaker, Store
from helmet_edge.publisher import Publisher
from helmet_edge.slot_machine import SlotMachine, Timing
from helmet_edge.watchdog import Notifier
from helmet_protocol.errors import ProtocolError
from helmet_protocol.messages import Ack, Command, LockerConfig, decode
from helmet_protocol.topics import Channel

log = logging.getLogger(__name__)
COMMAND_MEMORY = timedelta(days=7)  # how long a command's answer is kept to answer a redelivery alike


class LockerLoop:
    def __init__(
        self,
        settings: EdgeSettings,
        *,
        slots: SlotBank,
        camera: Camera | None,
        decoder: Decoder,
        store: Store,
        link_factory: LinkFactory,
        clock: Clock | None = None,
        notifier: Notifier | None = None,
        speaker: Speaker | None = None,
    ) -> None:
        self.settings = settings
        self.notifier = notifier or Notifier()  # systemd's READY and watchdog; does nothing elsewhere
        self.slots = slots
        self.camera = camera
        self.decoder = decoder
        self.clock = clock or SystemClock()
        self.store = store
        self.boot_id = uuid.uuid4().hex[:12]
        self.inbox: queue.SimpleQueue[tuple[Channel, bytes]] = queue.SimpleQueue()
        t = settings.timing
        self.timing = Timing(t.unlock_timeout_s, t.door_open_fault_s, t.debounce_ms / 1000)
        self.publisher = Publisher(settings, boot_id=self.boot_id, clock=self.clock, store=store)
        self.publisher.camera_ok = camera is not None
        stored = store.get_json("config")
        cloud = LockerConfig.model_validate(stored) if stored else None
        self.locker = self._build_locker(rules_from(settings, cloud))
        # The screen and the voice: told every outcome the LED is told (apply), and the locker's state per turn.
        self.face = Face(settings.face, settings.voice, locker_id=settings.locker_id, speaker=speaker)
        self.face.configure(cloud)
        if cloud is not None:
            self._check_slot_count(cloud)
        self.forwarder = Forwarder(store, window=settings.mqtt.window, resend_after=settings.mqtt.resend_after_s)
        self.restart_requested = threading.Event()
        self.commands = CommandExecutor(
            locker=self.locker,
            store=store,
            clock=self.clock,
            forwarder=self.forwarder,
            slots=slots,
            restart=self.restart_requested,
            mqtt=settings.mqtt,
        )
        self.link = link_factory(
            settings.mqtt,
            settings.locker_id,
            online_payload=lambda: self.publisher.status(online=True),
            offline_payload=self.publisher.status(online=False),
            on_message=lambda ch, payload: self.inbox.put((ch, payload)),
            on_connect=self._on_connect,
        )
        self._routes: Mapping[Channel, Callable[[bytes, float], None]] = {
            Channel.ACK: self._on_ack,
            Channel.CONFIG: self._on_config,
            Channel.CMD: self._on_cmd,
        }
        self._next_frame = 0.0
        self._housekeeping_at = 0.0

    @property
    def rules(self) -> Rules:
        return self.locker.rules

    # -- start-up --------------------------------------------------------------

    def _settled_reading(self) -> dict[int, tuple[bool, bool]]:
        """Sensor readings that held still across the debounce time (start-up only)."""
        for _ in range(20):
            first = dict(self.slots.read())
            self.clock.sleep(max(self.timing.debounce, 0.01))
            if dict(self.slots.read()) == first:
                return first
        return dict(self.slots.read())

    def _build_locker(self, rules: Rules) -> Locker:
        readings = self._settled_reading()
        machines = {
            r.slot: SlotMachine(r, self.timing, door_closed=readings[r.slot][0], present=readings[r.slot][1])
            for r in self.store.load_slots(self.slots.slot_count)
        }
        return Locker(machines, rules)

    def start(self) -> None:
        """Reconcile stored slot states with the sensors, then connect."""
        self.apply(self.locker.reconcile(self.clock.mono()))
        self.link.start()
        self.notifier.ready(f"locker {self.settings.locker_id}: {self.slots.slot_count} slots")

    def close(self) -> None:
        self.notifier.stopping()
        self.link.stop(offline_payload=self.publisher.status(online=False))
        if self.face.speaker is not None:
            self.face.speaker.close()
        self.slots.close()
        if self.camera is not None:
            self.camera.close()
        close_decoder = getattr(self.decoder, "close", None)  # a decoder in a child process has one
        if close_decoder is not None:
            close_decoder()
        self.store.close()

    # -- the loop ----------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        period = 1.0 / self.settings.timing.poll_hz
        while not stop.is_set() and not self.restart_requested.is_set():
            started = time.monotonic()
            self.step()
            self.notifier.ping(started)  # only a loop that keeps turning keeps systemd's watchdog quiet
            stop.wait(max(0.0, period - (time.monotonic() - started)))

    def step(self) -> None:
        """One turn: messages, sensors, camera, outbox, state."""
        mono = self.clock.mono()
        while True:
            try:
                channel, payload = self.inbox.get_nowait()
            except queue.Empty:
                break
            self._route(channel, payload, mono)
        self.apply(self.locker.tick(mono, self.slots.read()))
        if self.camera is not None:
            self._watch_camera(self.camera, mono)
            if mono >= self._next_frame:
                self._next_frame = mono + 1.0 / self.settings.camera.fps
                self._scan_frame(mono)
        self.publisher.before_events(self.link, mono)
        if self.link.connected:
            self.forwarder.pump(mono, lambda payload: self.link.publish(Channel.EVENTS, payload) is not None)
        self.publisher.after_events(self.link, mono, self.locker.machines)
        if self.face.take_selftest_request(self.locker, mono):
            log.info("self-test asked for on the technician's screen")
            result = self.commands.selftest(mono)
            if result.outcome is not None:
                self.apply(result.outcome)
        self.face.refresh(
            self.locker.machines, self.locker, mono=mono, wall=self.clock.wall(), online=self.link.connected,
            camera_ok=self.publisher.camera_ok,
        )  # fmt: skip
        if mono >= self._housekeeping_at:
            self._housekeeping_at = mono + 60
            self.store.forget_expired_passes(self.clock.wall())
            # A redelivery is refused as stale after command_max_age_s; a week keeps every plausible one.
            self.store.forget_commands_before(self.clock.wall() - COMMAND_MEMORY)

    def _watch_camera(self, camera: Camera, mono: float) -> None:
        healthy = camera.healthy
        if healthy != self.publisher.camera_ok:
            self.publisher.camera_ok = healthy
            log.warning("camera %s", "is delivering frames again" if healthy else "stopped delivering frames")
            self.publisher.publish_status(self.link, mono)

    def _scan_frame(self, mono: float) -> None:
        frame = self.camera.read() if self.camera is not None else None
        if frame is None:
            return
        codes = self.decoder.decode(frame)
        out = self.locker.scan_frame(codes, wall=self.clock.wall(), mono=mono, honoured=self.store.is_honoured)
        if out is not None:
            log.info("scan: %s", out.message)
            self.apply(out)

    def apply(self, out: Outcome) -> None:
        """Make an outcome durable, then move the locks."""
        if out.durable:
            events = self.store.commit(
                records=out.records.values(), events=out.events, honour=out.honour, now=self.clock.wall()
            )
            for e in events:
                log.info("event %d %s slot=%s helmet=%s", e.seq, e.kind, e.slot, e.helmet_id)
            self.publisher.state_dirty = True
        for slot, energised in out.locks.items():
            self.slots.set_lock(slot, energised)
        if out.feedback is not None:
            self.slots.indicate(out.feedback)
        self.face.decided(out, self.locker.machines, mono=self.clock.mono(), wall=self.clock.wall())

    # -- what arrives over the link ------------------------------------------------

    def _on_connect(self) -> None:  # on paho's thread
        self.publisher.connected(self.clock.mono())
        self.forwarder.rewind()

    def _route(self, channel: Channel, payload: bytes, mono: float) -> None:
        route = self._routes.get(channel)
        if route is None:
            log.warning("ignored a message on %s: the locker reads cmd, config and ack", channel.value)
            return
        try:
            route(payload, mono)
        except ProtocolError as exc:
            log.warning("refused %s message: %s", channel.value, exc)

    def _on_ack(self, payload: bytes, mono: float) -> None:
        ack = decode(Ack, payload)
        self._check_locker(ack.locker_id)
        self.forwarder.on_ack(ack.seq, mono)

    def _on_config(self, payload: bytes, mono: float) -> None:
        cfg = decode(LockerConfig, payload)
        self._check_locker(cfg.locker_id)
        self.locker.rules = rules_from(self.settings, cfg)
        self.store.put_json("config", cfg.model_dump(mode="json"))
        self.face.configure(cfg)
        log.info(
            "config applied: %d pass key(s), max quantity %d, %d withdrawn and %d used-elsewhere pass(es)",
            len(cfg.pass_keys), cfg.max_quantity, len(cfg.revoked_pass_ids), len(cfg.used_pass_ids),
        )  # fmt: skip
        self._check_slot_count(cfg)

    def _on_cmd(self, payload: bytes, mono: float) -> None:
        ack = self.commands.answer(decode(Command, payload), mono, self.apply)
        self.link.publish(Channel.CMD_ACK, ack)

    def _check_locker(self, locker_id: str) -> None:
        if locker_id != self.settings.locker_id:
            raise ProtocolError(f"addressed to {locker_id}, this is {self.settings.locker_id}")

    def _check_slot_count(self, cfg: LockerConfig) -> None:
        problem = slot_count_mismatch(cfg.slot_count, self.slots.slot_count, self.settings.pin_profile)
        if problem is not None:
            log.warning("config: %s", problem)
