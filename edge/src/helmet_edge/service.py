"""The locker service: the composition of camera, decoder, slots, store and link.

One thread runs the loop (sensors, camera, decisions, outbox); paho's thread
only queues incoming messages. The store commits every change before any lock
moves.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from helmet_edge.config import EdgeSettings
from helmet_edge.forwarder import Forwarder
from helmet_edge.link_mqtt import MqttLink
from helmet_edge.locker import Feedback, Locker, Outcome, Rules
from helmet_edge.ports import Camera, Clock, Decoder, SlotBank
from helmet_edge.selftest import as_data, run_selftest, summary
from helmet_edge.slot_machine import EventDraft, SlotMachine, Timing
from helmet_edge.store import Store
from helmet_edge.watchdog import Notifier
from helmet_protocol.errors import ProtocolError
from helmet_protocol.events import EventKind
from helmet_protocol.keys import load_public_keys
from helmet_protocol.messages import (
    Ack,
    Command,
    CommandAck,
    LockerConfig,
    SlotReport,
    State,
    Status,
    decode,
)
from helmet_protocol.topics import Channel

log = logging.getLogger(__name__)
COMMAND_MEMORY = timedelta(days=7)  # how long a command's answer is kept to answer a redelivery alike
CLOCK_STEP_S = 2.0  # a jump of the wall clock against the monotonic one larger than this is a step


class SystemClock:
    def wall(self) -> datetime:
        return datetime.now(UTC)

    def mono(self) -> float:
        return time.monotonic()


class LockerService:
    def __init__(
        self,
        settings: EdgeSettings,
        *,
        slots: SlotBank,
        camera: Camera | None,
        decoder: Decoder,
        clock: Clock | None = None,
        link_factory: Callable[..., MqttLink] = MqttLink,
        notifier: Notifier | None = None,
    ) -> None:
        self.settings = settings
        self.notifier = notifier or Notifier()  # systemd's READY and watchdog; does nothing elsewhere
        self.slots = slots
        self.camera = camera
        self.decoder = decoder
        self.clock = clock or SystemClock()
        self.boot_id = uuid.uuid4().hex[:12]
        self.store = Store(settings.data_dir / "locker.db", settings.locker_id)
        self.inbox: queue.SimpleQueue[tuple[Channel, bytes]] = queue.SimpleQueue()
        t = settings.timing
        self.timing = Timing(t.unlock_timeout_s, t.door_open_fault_s, t.debounce_ms / 1000)
        self.rules = self._rules_from(settings, self.store.get_json("config"))
        self.locker = self._build_locker()
        self.forwarder = Forwarder(self.store, window=settings.mqtt.window, resend_after=settings.mqtt.resend_after_s)
        self.camera_ok = camera is not None
        self.link = link_factory(
            settings.mqtt,
            settings.locker_id,
            online_payload=lambda: self._status(online=True),
            offline_payload=self._status(online=False),
            on_message=lambda ch, payload: self.inbox.put((ch, payload)),
            on_connect=self._on_connect,
        )
        self.restart_requested = threading.Event()
        self._state_dirty = True
        self._state_sent_at = 0.0
        self._status_sent_at = 0.0
        self._wall_minus_mono: float | None = None
        self._next_frame = 0.0
        self._housekeeping_at = 0.0

    # -- start-up --------------------------------------------------------------

    def _settled_reading(self) -> dict[int, tuple[bool, bool]]:
        """Sensor readings that held still across the debounce time (start-up only)."""
        for _ in range(20):
            first = dict(self.slots.read())
            time.sleep(max(self.timing.debounce, 0.01))
            if dict(self.slots.read()) == first:
                return first
        return dict(self.slots.read())

    def _build_locker(self) -> Locker:
        readings = self._settled_reading()
        records = self.store.load_slots(self.slots.slot_count)
        machines = {
            r.slot: SlotMachine(r, self.timing, door_closed=readings[r.slot][0], present=readings[r.slot][1])
            for r in records
        }
        locker = Locker(machines, self.rules)
        return locker

    @staticmethod
    def _rules_from(settings: EdgeSettings, cloud: dict[str, object] | None) -> Rules:
        p, t = settings.passes, settings.timing
        keys, max_q, revoked, host = p.keys, p.max_quantity, frozenset[str](), p.helmet_url_host
        if cloud:
            cfg = LockerConfig.model_validate(cloud)
            keys, max_q, revoked = cfg.pass_keys, cfg.max_quantity, frozenset(cfg.revoked_pass_ids)
            host = cfg.helmet_url_host or host
        return Rules(
            keys=load_public_keys(keys),
            max_quantity=max_q,
            skew=timedelta(seconds=p.skew_s),
            revoked=revoked,
            helmet_host=host,
            maintenance_seconds=t.maintenance_s,
            repeat_window=t.repeat_window_s,
        )

    def start(self) -> None:
        """Reconcile stored slot states with the sensors, then connect."""
        self.apply(self.locker.reconcile(self.clock.mono()))
        self.link.start()
        self.notifier.ready(f"locker {self.settings.locker_id}: {self.slots.slot_count} slots")

    def close(self) -> None:
        self.notifier.stopping()
        self.link.stop(offline_payload=self._status(online=False))
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
            self._handle(channel, payload, mono)
        self.apply(self.locker.tick(mono, self.slots.read()))
        if self.camera is not None and self.camera.healthy != self.camera_ok:
            self.camera_ok = self.camera.healthy
            log.warning("camera %s", "is delivering frames again" if self.camera_ok else "stopped delivering frames")
            if self.link.connected:
                self.link.publish(Channel.STATUS, self._status(online=True), retain=True)
        if self.camera is not None and mono >= self._next_frame:
            self._next_frame = mono + 1.0 / self.settings.camera.fps
            self._scan_frame(mono)
        if self._clock_stepped(mono) and self.link.connected:
            # Before the next events: the cloud corrects event times by this locker's clock offset.
            self._status_sent_at = mono
            self.link.publish(Channel.STATUS, self._status(online=True), retain=True)
        if self.link.connected:
            self.forwarder.pump(mono, lambda payload: self.link.publish(Channel.EVENTS, payload) is not None)
            if self._state_dirty and mono - self._state_sent_at >= 0.25:
                self._publish_state(mono)
            if mono - self._status_sent_at >= self.settings.mqtt.status_interval_s:
                self._status_sent_at = mono
                self.link.publish(Channel.STATUS, self._status(online=True), retain=True)
        if mono >= self._housekeeping_at:
            self._housekeeping_at = mono + 60
            self.store.forget_expired_passes(self.clock.wall())
            # A redelivery is refused as stale after command_max_age_s; a week keeps every plausible one.
            self.store.forget_commands_before(self.clock.wall() - COMMAND_MEMORY)

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
            self._state_dirty = True
        for slot, energised in out.locks.items():
            self.slots.set_lock(slot, energised)
        if out.feedback is not None:
            self.slots.indicate(out.feedback)

    # -- MQTT --------------------------------------------------------------------

    def _on_connect(self) -> None:
        self._status_sent_at = self.clock.mono()  # the link has just published it
        self.forwarder.rewind()
        self._state_dirty = True

    def _clock_stepped(self, mono: float) -> bool:
        """The wall clock jumped against the monotonic one (NTP stepped it, someone set it)."""
        wall_minus_mono = self.clock.wall().timestamp() - mono
        last, self._wall_minus_mono = self._wall_minus_mono, wall_minus_mono
        stepped = last is not None and abs(wall_minus_mono - last) > CLOCK_STEP_S
        if stepped:
            log.warning("the wall clock stepped by %+.1f s", wall_minus_mono - (last or 0.0))
        return stepped

    def _status(self, *, online: bool) -> bytes:
        return Status(
            locker_id=self.settings.locker_id,
            online=online,
            boot_id=self.boot_id,
            fw=self.settings.fw,
            ts=self.clock.wall(),
            camera_ok=self.camera_ok,
        ).to_json()

    def _publish_state(self, mono: float) -> None:
        reports = [
            SlotReport(slot=n, state=m.state, helmet_id=m.record.helmet_id) for n, m in self.locker.machines.items()
        ]
        state = State(locker_id=self.settings.locker_id, seq=self.store.last_seq(), ts=self.clock.wall(), slots=reports)
        if self.link.publish(Channel.STATE, state.to_json(), retain=True) is not None:
            self._state_dirty = False
            self._state_sent_at = mono

    def _handle(self, channel: Channel, payload: bytes, mono: float) -> None:
        try:
            if channel == Channel.ACK:
                ack = decode(Ack, payload)
                self._check_locker(ack.locker_id)
                self.forwarder.on_ack(ack.seq, mono)
            elif channel == Channel.CONFIG:
                cfg = decode(LockerConfig, payload)
                self._check_locker(cfg.locker_id)
                self.rules = self._rules_from(self.settings, cfg.model_dump(mode="json"))
                self.locker.rules = self.rules
                self.store.put_json("config", cfg.model_dump(mode="json"))
                log.info("config applied: %d pass key(s), max quantity %d", len(cfg.pass_keys), cfg.max_quantity)
            elif channel == Channel.CMD:
                self._command(decode(Command, payload), mono)
        except ProtocolError as exc:
            log.warning("refused %s message: %s", channel.value, exc)

    def _check_locker(self, locker_id: str) -> None:
        if locker_id != self.settings.locker_id:
            raise ProtocolError(f"addressed to {locker_id}, this is {self.settings.locker_id}")

    def _command(self, cmd: Command, mono: float) -> None:
        earlier = self.store.command_ack(cmd.cmd_id)
        if earlier is not None:  # executed before: answer the same again, do nothing
            self.link.publish(Channel.CMD_ACK, earlier)
            return
        ok, error, data = True, None, None
        age = (self.clock.wall() - cmd.ts).total_seconds() if cmd.ts is not None else 0.0
        try:
            if age > self.settings.mqtt.command_max_age_s:
                raise ValueError(
                    f"command is {age:.0f} s old; refused (limit {self.settings.mqtt.command_max_age_s:.0f} s)"
                )
            out = self._execute(cmd, mono)
            if out is not None:
                self.apply(out)
                data = out.data or ({"message": out.message, "opened": out.opened} if out.message else None)
                if out.feedback == "rejected":
                    ok, error = False, out.message
        except ValueError as exc:
            ok, error = False, str(exc)
        ack = CommandAck(cmd_id=cmd.cmd_id, ok=ok, error=error, data=data, ts=self.clock.wall()).to_json()
        self.store.save_command_ack(cmd.cmd_id, ack, self.clock.wall())
        self.link.publish(Channel.CMD_ACK, ack)

    def _execute(self, cmd: Command, mono: float) -> Outcome | None:
        # Command validation guarantees each op's arguments are present.
        if cmd.op == "borrow" and cmd.pass_text is not None:
            return self.locker.use_pass(
                cmd.pass_text, wall=self.clock.wall(), mono=mono, honoured=self.store.is_honoured
            )
        if cmd.op == "unlock" and cmd.slot is not None:
            return self.locker.service_unlock(cmd.slot, mono=mono)
        if cmd.op in ("disable_slot", "enable_slot") and cmd.slot is not None:
            return self.locker.set_disabled(cmd.slot, cmd.op == "disable_slot")
        if cmd.op == "resend":
            self.forwarder.rewind(cmd.from_seq)
            return None
        if cmd.op == "selftest":
            return self.selftest()
        if cmd.op == "reboot":
            # Stop the loop; the supervisor (systemd Restart=always) starts a fresh process.
            self.restart_requested.set()
            return Outcome(message="restarting the locker service")
        raise ValueError(f"op {cmd.op!r} is not supported by this locker")

    def selftest(self) -> Outcome:
        """Pulse every idle lock and read every sensor; record a ``locker.selftest`` event."""
        checks = run_selftest(self.slots, {n: m.state for n, m in self.locker.machines.items()})
        ok = all(c.ok for c in checks)
        return Outcome(
            events=[EventDraft(EventKind.LOCKER_SELFTEST, reason="ok" if ok else "problems", detail=summary(checks))],
            feedback=None if ok else Feedback.FAULT,
            message=summary(checks),
            data=as_data(checks),
        )
