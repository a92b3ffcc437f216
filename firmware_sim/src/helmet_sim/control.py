"""``helmet-sim locker``: one simulated locker as its own process, steered by JSON lines.

Each line on stdin is one request, a JSON object with an ``op``; each answer is one JSON line on
stdout. A request may carry an ``"id"`` (any JSON value); its answer carries the same id. Every
answer has ``"ok"``; a request that cannot be carried out (not JSON, an unknown op, a missing or
wrong argument, something a person cannot do) answers ``"ok": false`` with an ``"error"`` in words,
and the process goes on reading.

    {"op": "show", "text": "HP1:...", "seconds": 1.5}   hold a code to the camera
    {"op": "take", "count": 2}                           take helmets from released slots
    {"op": "insert", "helmet_id": "H-0001"}              sticker to camera, helmet into the slot
    {"op": "close_all"}                                  shut every open door
    {"op": "state"}                                      what the slots physically hold (and the passes refused)
    {"op": "cable", "state": "cut"}                      pull the network cable ("restore" plugs it back in)
    {"op": "kill"}                                       the Pi loses power: the edge stops, no goodbye
    {"op": "restart"}                                    it boots again on its own data directory
    {"op": "help"}                                       these ops
    {"op": "quit"}

The locker reaches the broker through its own cable (:class:`~helmet_sim.network.Cable`, a TCP relay
in this process), so ``cable`` cuts exactly what a pulled cable cuts. ``kill`` stops the edge
instance in this process the way a power cut does (only what its SQLite store committed stays; the
doors and helmets stay put in ``physical.json``); ``restart`` boots a new one on the same files. To
kill the whole process instead, ``kill -9`` it and start ``helmet-sim locker`` again with the same
``--data-dir``: the same power cut, with the process gone too.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from helmet_edge.config import FaceSettings
from helmet_sim.network import Cable
from helmet_sim.physical import PhysicalError
from helmet_sim.rig import SimLocker

log = logging.getLogger(__name__)

OPS = {
    "show": 'hold a code to the camera: {"text": ..., "seconds": 1.5}',
    "take": 'take helmets from the released slots: {"count": 1, "timeout": 10}',
    "insert": 'a sticker to the camera, the helmet into the slot that opens: {"helmet_id": ..., "timeout": 20}',
    "close_all": "shut every open door",
    "state": "what the slots hold, the outbox, the connection, the cable, the passes refused",
    "cable": 'the network cable: {"state": "cut"} or {"state": "restore"} (also the ops "cut" and "restore")',
    "kill": "the Pi loses power: the edge stops without a goodbye (the process goes on serving)",
    "restart": 'the killed locker boots again on its own data: {"timeout": 10} for its connection',
    "help": "these ops",
    "quit": "stop the locker (with a goodbye) and end the process",
}


class BadRequest(ValueError):
    """A request that cannot be carried out, in words for the answer."""

    req_id: Any = None


def arg(req: dict[str, Any], name: str, kind: type, default: Any = None) -> Any:
    """``req[name]`` as ``kind`` (str, int or float); ``default`` when absent (``None``: required)."""
    if name not in req:
        if default is None:
            raise BadRequest(f"missing {name!r}")
        return default
    value = req[name]
    if kind is str and isinstance(value, str) and value:
        return value
    if kind in (int, float) and isinstance(value, int | float) and not isinstance(value, bool):
        if kind is int and value != int(value):
            raise BadRequest(f"{name!r} must be a whole number, not {value!r}")
        if value < 0:
            raise BadRequest(f"{name!r} must not be negative")
        return kind(value)
    what = {str: "a non-empty string", int: "a whole number", float: "a number"}[kind]
    raise BadRequest(f"{name!r} must be {what}, not {json.dumps(value)}")


def parse(line: str) -> tuple[Any, dict[str, Any]]:
    """The request's id (``None`` if none) and the request; :class:`BadRequest` if it is not one."""
    try:
        req = json.loads(line)
    except ValueError as exc:
        raise BadRequest(f"not JSON ({exc})") from None
    if not isinstance(req, dict):
        raise BadRequest('a request is a JSON object, e.g. {"op": "help"}')
    if not isinstance(req.get("op"), str):
        missing = BadRequest('the request has no "op" (send {"op": "help"} for the ops)')
        missing.req_id = req.get("id")  # its answer still names the request
        raise missing
    return req.get("id"), req


def answer_line(req_id: Any, ok: bool, fields: dict[str, Any]) -> str:
    head: dict[str, Any] = {"id": req_id} if req_id is not None else {}
    return json.dumps({**head, "ok": ok, **fields})


def serve_lines(
    lines: Any, write: Callable[[str], None], handle: Callable[[dict[str, Any]], dict[str, Any] | None]
) -> None:
    """Read requests from ``lines`` and ``write`` an answer to each: ``handle(req)`` answers its fields
    (``None``: the last answer, then stop). Bad requests and failing ops answer an error; nothing is raised."""
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        req_id: Any = None
        try:
            req_id, req = parse(line)
            fields = handle(req)
        except (BadRequest, PhysicalError, ValueError, TimeoutError) as exc:
            named = req_id if req_id is not None else getattr(exc, "req_id", None)
            write(answer_line(named, False, {"error": str(exc)}))
            continue
        except Exception as exc:  # a bug in an op: said in the answer and logged, and the channel stays up
            log.exception("request %s failed", line[:200])
            write(answer_line(req_id, False, {"error": f"internal error: {type(exc).__name__}: {exc}"}))
            continue
        if fields is None:
            write(answer_line(req_id, True, {}))
            return
        ok = bool(fields.pop("ok", True))
        write(answer_line(req_id, ok, fields))


class LockerControl:
    """The ops of one locker process: the rig (replaced by ``restart``) and its cable."""

    def __init__(self, rig: SimLocker, cable: Cable | None) -> None:
        self.rig = rig
        self.cable = cable
        self.running = True

    def handle(self, req: dict[str, Any]) -> dict[str, Any] | None:
        op = req["op"]
        if op == "quit":
            return None
        if op in ("cut", "restore"):
            req = {**req, "state": op}
            op = "cable"
        method = getattr(self, f"op_{op}", None) if op in OPS else None
        if method is None:
            raise BadRequest(f"unknown op {op!r}; the ops: {', '.join(OPS)}")
        result: dict[str, Any] = method(req)
        return result

    def _alive(self) -> SimLocker:
        if not self.running:
            raise BadRequest(f"{self.rig.locker_id} is killed: restart it first")
        return self.rig

    def op_help(self, _req: dict[str, Any]) -> dict[str, Any]:
        return {"ops": OPS}

    def op_show(self, req: dict[str, Any]) -> dict[str, Any]:
        self.rig.show(arg(req, "text", str), arg(req, "seconds", float, 1.5))
        return {}

    def op_take(self, req: dict[str, Any]) -> dict[str, Any]:
        taken = self.rig.take(arg(req, "count", int, 1), timeout=arg(req, "timeout", float, 10.0))
        return {"ok": bool(taken), "helmets": taken, **({} if taken else {"error": "no released slot held a helmet"})}

    def op_insert(self, req: dict[str, Any]) -> dict[str, Any]:
        return {"slot": self.rig.insert(arg(req, "helmet_id", str), timeout=arg(req, "timeout", float, 20.0))}

    def op_close_all(self, _req: dict[str, Any]) -> dict[str, Any]:
        self.rig.physical.close_all_doors()
        return {}

    def op_state(self, _req: dict[str, Any]) -> dict[str, Any]:
        rig = self.rig
        state: dict[str, Any] = {
            "helmets": {str(k): v for k, v in rig.physical.helmets().items()},
            "running": self.running,
            "cable": self._cable_state(),
            "released": [sl.number for sl in rig.physical.released()],
            "doors_open": [n for n, sl in rig.physical.slots.items() if sl.door_open],
        }
        if self.running:
            state.update(
                outbox=rig.service.store.outbox_size(),
                last_seq=rig.service.store.last_seq(),
                connected=rig.service.link.connected,
                pass_keys=len(rig.service.rules.keys),
                revoked=sorted(rig.service.rules.revoked),
                used=sorted(rig.service.rules.used),
            )
        return state

    def _cable_state(self) -> str:
        return "none" if self.cable is None else "plugged" if self.cable.plugged else "cut"

    def op_cable(self, req: dict[str, Any]) -> dict[str, Any]:
        state = arg(req, "state", str)
        if state not in ("cut", "restore"):
            raise BadRequest(f'"state" must be "cut" or "restore", not {json.dumps(state)}')
        if self.cable is None:
            raise BadRequest("this locker has no cable to pull: it was started with --no-cable")
        if state == "cut":
            self.cable.unplug()
        else:
            self.cable.plug()
        return {"cable": self._cable_state()}

    def op_kill(self, _req: dict[str, Any]) -> dict[str, Any]:
        rig = self._alive()
        last_seq = rig.service.store.last_seq()
        rig.cut_power()
        self.running = False
        return {"running": False, "last_seq": last_seq}

    def op_restart(self, req: dict[str, Any]) -> dict[str, Any]:
        if self.running:
            raise BadRequest(f"{self.rig.locker_id} is running: kill it first")
        timeout = arg(req, "timeout", float, 10.0)
        self.rig = self.rig.power_on()
        self.running = True
        connected = self.rig.service.link.wait_connected(timeout)
        return {"running": True, "connected": connected, "last_seq": self.rig.service.store.last_seq()}

    def close(self) -> None:
        if self.running:
            self.rig.stop()
        if self.cable is not None:
            self.cable.close()


def _write(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def serve(
    locker_id: str,
    *,
    data_dir: Path,
    mqtt_host: str,
    mqtt_port: int,
    helmet_host: str,
    fps: float = 10.0,
    cable: bool = True,
    face_port: int | None = None,
) -> None:
    """``face_port``: serve the locker's screen there (0: a free port; the ready line names its URL).

    ``cable``: reach the broker through a relay of its own, which the ``cable`` op pulls (``False``: directly,
    as the edge-footprint benchmark measures the edge alone)."""
    wire = Cable(mqtt_port, target_host=mqtt_host) if cable else None
    # The physical world (doors, helmets) is kept in a file so that it outlives this process.
    rig = SimLocker(
        locker_id,
        data_dir=data_dir,
        mqtt_host="127.0.0.1" if wire is not None else mqtt_host,
        mqtt_port=wire.port if wire is not None else mqtt_port,
        helmet_host=helmet_host,
        fps=fps,
        persist_physical=True,
        face=FaceSettings(port=face_port) if face_port is not None else None,
    )
    rig.start()
    control = LockerControl(rig, wire)
    connected = rig.service.link.wait_connected(10)
    ready = {"ready": True, "locker_id": locker_id, "connected": connected, "face_url": rig.face_url}
    _write(answer_line(None, True, ready))
    try:
        serve_lines(sys.stdin, _write, control.handle)
    finally:
        control.close()
