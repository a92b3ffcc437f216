"""Many protocol-level lockers in one process, each with its own real MQTT connection.

Each locker is what the wire sees of a real one: its own client id and
persistent session, a Last Will on ``status``, ``online`` status on connect and
every minute, subscriptions to its ``ack``, ``cmd`` and ``config``, events from
the edge's real outbox (``helmet_edge.store.Store``, SQLite WAL + synchronous
FULL) sent by the edge's real ``Forwarder`` and removed on the cloud's ``ack``,
and a retained ``state`` snapshot after each change. What is simulated: the
people (borrows and returns at a Poisson rate; a borrowed helmet comes back to
the same locker) and the slots (no camera, no GPIO).

Hundreds of paho clients share one selector loop (paho's external-loop API:
``socket()``, ``loop_read()``, ``loop_write()``, ``loop_misc()``) instead of two
threads per client, so a 2-core machine can hold a town's connections.
"""

from __future__ import annotations

import multiprocessing as mp
import random
import selectors
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from helmet_edge.forwarder import Forwarder
from helmet_edge.slot_machine import EventDraft
from helmet_edge.store import Store
from helmet_protocol import topics
from helmet_protocol.events import EventKind, SlotState
from helmet_protocol.messages import Ack, SlotReport, State, Status, decode
from helmet_protocol.topics import Channel
from helmet_protocol.transport import set_tcp_nodelay

SLOTS = 6
STATUS_EVERY = 60.0


@dataclass
class Plan:
    """What every locker process does; sent to the child processes."""

    port: int
    data_dir: str
    rate: float  # events per second per locker during the peak phase
    probe_every: float  # seconds between latency probes for this process (0: none)
    window: int = 200
    resend_after: float = 30.0


@dataclass
class SimLocker:
    locker_id: str
    store: Store
    forwarder: Forwarder
    client: mqtt.Client
    slots: dict[int, str | None] = field(default_factory=dict)
    away: list[str] = field(default_factory=list)
    connected: bool = False
    next_event: float = float("inf")
    next_status: float = 0.0
    state_dirty: bool = False
    last_seq: int = 0
    probe_seq: dict[int, tuple[str, float]] = field(default_factory=dict)  # seq -> (event_id, wall time at publish)


class Town:
    def __init__(self, ids: list[str], plan: Plan, index: int, out: Any) -> None:
        self.plan = plan
        self.index = index
        self.out = out  # a multiprocessing queue to the parent: probes and counters
        self.sel = selectors.DefaultSelector()
        self.rng = random.Random(hash(ids[0]) if ids else 0)
        self.lockers = [self._make(lk) for lk in ids]
        self.published = 0
        self.acked = 0

    def _make(self, lk: str) -> SimLocker:
        store = Store(Path(self.plan.data_dir) / f"{lk}.db", lk)
        fwd = Forwarder(store, window=self.plan.window, resend_after=self.plan.resend_after)
        c = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, client_id=lk, protocol=mqtt.MQTTv311, clean_session=False
        )
        offline = Status(locker_id=lk, online=False, boot_id="bench", fw="bench", ts=datetime.now(UTC))
        c.will_set(topics.topic(lk, Channel.STATUS), offline.to_json(), qos=1, retain=True)
        c.max_inflight_messages_set(100)
        c.on_socket_open = set_tcp_nodelay
        sim = SimLocker(lk, store, fwd, c, slots=dict.fromkeys(range(1, SLOTS + 1)))
        c.on_connect = lambda cl, _u, _f, reason, _p, sim=sim: self._connected(sim, reason)
        c.on_message = lambda _c, _u, msg, sim=sim: self._message(sim, msg)
        return sim

    # -- MQTT ------------------------------------------------------------------

    def _connected(self, sim: SimLocker, reason: Any) -> None:
        if reason.is_failure:
            return
        for ch in (Channel.CMD, Channel.CONFIG, Channel.ACK):
            sim.client.subscribe(topics.topic(sim.locker_id, ch), qos=1)
        sim.connected = True
        sim.forwarder.rewind()
        self._status(sim)

    def _status(self, sim: SimLocker) -> None:
        st = Status(locker_id=sim.locker_id, online=True, boot_id="bench", fw="bench", ts=datetime.now(UTC))
        sim.client.publish(topics.topic(sim.locker_id, Channel.STATUS), st.to_json(), qos=1, retain=True)
        sim.next_status = time.monotonic() + STATUS_EVERY

    def _message(self, sim: SimLocker, msg: mqtt.MQTTMessage) -> None:
        if msg.topic.endswith("/ack"):
            seq = decode(Ack, bytes(msg.payload)).seq
            before = sim.forwarder.acked
            sim.forwarder.on_ack(seq, time.monotonic())
            self.acked += max(0, sim.forwarder.acked - before)

    def connect_all(self) -> None:
        for sim in self.lockers:
            sim.client.connect("127.0.0.1", self.plan.port, keepalive=60)
            sock = sim.client.socket()
            assert sock is not None
            self.sel.register(sock, selectors.EVENT_READ, sim)

    # -- what people do --------------------------------------------------------

    def stock(self) -> None:
        for sim in self.lockers:
            drafts = []
            for n in range(1, SLOTS + 1):
                sim.slots[n] = f"H-{sim.locker_id[3:]}-{n}"
                drafts.append(EventDraft(EventKind.HELMET_STOCKED, slot=n, helmet_id=sim.slots[n]))
            sim.last_seq = sim.store.commit(events=drafts, now=datetime.now(UTC))[-1].seq
            sim.state_dirty = True

    def burst(self, count: int) -> None:
        """Every locker records ``count`` borrows and returns at once (the outbox then drains)."""
        for sim in self.lockers:
            made = sim.store.commit(events=[self._draft(sim) for _ in range(count)], now=datetime.now(UTC))
            sim.last_seq = made[-1].seq
            sim.state_dirty = True
        self.out.put(("burst", self.index, time.time()))  # the outboxes are full: the clock starts

    def _draft(self, sim: SimLocker) -> EventDraft:
        full = [n for n, h in sim.slots.items() if h is not None]
        empty = [n for n, h in sim.slots.items() if h is None]
        if full and (not sim.away or self.rng.random() < 0.5):
            n = self.rng.choice(full)
            helmet, sim.slots[n] = sim.slots[n], None
            assert helmet is not None
            sim.away.append(helmet)
            return EventDraft(EventKind.HELMET_BORROWED, slot=n, helmet_id=helmet, resident_id="R-BENCH")
        n = self.rng.choice(empty)
        helmet = sim.away.pop(self.rng.randrange(len(sim.away)))
        sim.slots[n] = helmet
        return EventDraft(EventKind.HELMET_RETURNED, slot=n, helmet_id=helmet)

    def start_peak(self) -> None:
        now = time.monotonic()
        for sim in self.lockers:
            sim.next_event = now + self.rng.expovariate(self.plan.rate) if self.plan.rate > 0 else float("inf")

    def stop_peak(self) -> None:
        for sim in self.lockers:
            sim.next_event = float("inf")

    # -- the loop --------------------------------------------------------------

    def turn(self, now: float, probe_due: bool) -> bool:
        """One pass over the lockers; returns whether a probe was taken."""
        probed = False
        for sim in self.lockers:
            if not sim.connected:
                continue
            if now >= sim.next_event:
                sim.next_event = now + self.rng.expovariate(self.plan.rate)
                (event,) = sim.store.commit(events=[self._draft(sim)], now=datetime.now(UTC))
                sim.last_seq = event.seq
                sim.state_dirty = True
                if probe_due and not probed:
                    sim.probe_seq[event.seq] = (event.event_id, 0.0)
                    probed = True
            if now >= sim.next_status:
                self._status(sim)

            def publish(payload: bytes, sim: SimLocker = sim) -> bool:
                info = sim.client.publish(topics.topic(sim.locker_id, Channel.EVENTS), payload, qos=1)
                if info.rc != mqtt.MQTT_ERR_SUCCESS:
                    return False
                self.published += 1
                return True

            fwd, first = sim.forwarder, sim.forwarder.next_seq
            idle = sim.last_seq < first and first == fwd.acked + 1  # nothing to send, nothing in flight
            if not idle and fwd.pump(now, publish) and sim.probe_seq:
                for seq in range(first, sim.forwarder.next_seq):
                    if seq in sim.probe_seq:
                        event_id, _ = sim.probe_seq.pop(seq)
                        self.out.put(("probe", sim.locker_id, event_id, time.time()))
            if sim.state_dirty:
                sim.state_dirty = False
                snap = State(
                    locker_id=sim.locker_id,
                    seq=sim.last_seq,
                    ts=datetime.now(UTC),
                    slots=[
                        SlotReport(slot=n, state=SlotState.OCCUPIED if h else SlotState.EMPTY, helmet_id=h)
                        for n, h in sim.slots.items()
                    ],
                )
                sim.client.publish(topics.topic(sim.locker_id, Channel.STATE), snap.to_json(), qos=1, retain=True)
        return probed

    def run(self, commands: Any) -> None:
        self.connect_all()
        last_misc = last_probe = time.monotonic()
        while True:
            now = time.monotonic()
            for key, _ in self.sel.select(timeout=0.02):
                key.data.client.loop_read()
            if not commands.empty():
                cmd, arg = commands.get()
                if cmd == "stop":
                    break
                {"stock": lambda _a: self.stock(), "peak": lambda _a: self.start_peak(),
                 "calm": lambda _a: self.stop_peak(), "burst": self.burst}[cmd](arg)  # fmt: skip
            probe_due = self.plan.probe_every > 0 and now - last_probe >= self.plan.probe_every
            if self.turn(now, probe_due):
                last_probe = now
            for sim in self.lockers:
                if sim.client.want_write():
                    sim.client.loop_write()
            if now - last_misc >= 0.2:
                last_misc = now
                for sim in self.lockers:
                    sim.client.loop_misc()
                connected = sum(s.connected for s in self.lockers)
                unacked = sum(s.last_seq - s.forwarder.acked for s in self.lockers)
                self.out.put(("count", self.index, connected, self.published, self.acked, unacked))
        for sim in self.lockers:
            sim.client.disconnect()
            sim.store.close()


def child(ids: list[str], plan: Plan, index: int, commands: Any, out: Any) -> None:
    Town(ids, plan, index, out).run(commands)


class TownProcesses:
    """The parent's handle: start children, send them commands, read their counters and probes."""

    def __init__(self, ids: list[str], plan: Plan, per_process: int = 500) -> None:
        ctx = mp.get_context("spawn")
        self.out: Any = ctx.Queue()
        self.commands: list[Any] = []
        self.procs: list[Any] = []
        self.counts: dict[int, tuple[int, int, int, int]] = {}  # per child: connected, published, acked, unacked
        self.probes: list[tuple[str, str, float]] = []
        self.burst_ready: dict[int, float] = {}  # per child: wall time its outboxes held the burst
        groups = [ids[i : i + per_process] for i in range(0, len(ids), per_process)]
        for n, group in enumerate(groups):
            q = ctx.Queue()
            # Probes from one process only, so the prober is not flooded at large sizes.
            p = ctx.Process(
                target=child, args=(group, plan if n == 0 else _no_probe(plan), n, q, self.out), daemon=True
            )
            p.start()
            self.commands.append(q)
            self.procs.append(p)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def send(self, cmd: str, arg: Any = None) -> None:
        for q in self.commands:
            q.put((cmd, arg))

    def drain(self) -> None:
        """Read what the children reported so far."""
        import queue

        while True:
            try:
                item = self.out.get_nowait()
            except queue.Empty:
                return
            if item[0] == "probe":
                self.probes.append((item[1], item[2], item[3]))
            elif item[0] == "burst":
                self.burst_ready[item[1]] = item[2]
            else:
                self.counts[item[1]] = item[2:]

    def total(self) -> tuple[int, int, int, int]:
        """Connected lockers, events published, events acknowledged, events not yet acknowledged."""
        self.drain()
        c = list(self.counts.values())
        return (sum(x[0] for x in c), sum(x[1] for x in c), sum(x[2] for x in c), sum(x[3] for x in c))

    def stop(self) -> None:
        self.send("stop")
        for p in self.procs:
            p.join(timeout=15)
            if p.is_alive():
                p.kill()


def _no_probe(plan: Plan) -> Plan:
    return Plan(**{**plan.__dict__, "probe_every": 0.0})
