"""``helmet-sim locker``: one simulated locker as its own process, steered by JSON lines.

Each line on stdin is one request; each answer is one JSON line on stdout:

    {"op": "show", "text": "HP1:...", "seconds": 1.5}   hold a code to the camera
    {"op": "take", "count": 2}                           take helmets from released slots
    {"op": "insert", "helmet_id": "H-0001"}              sticker to camera, helmet into the slot
    {"op": "close_all"}                                  shut every open door
    {"op": "state"}                                      what the slots physically hold (and the passes refused)
    {"op": "quit"}
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

from helmet_sim.physical import PhysicalError
from helmet_sim.rig import SimLocker

log = logging.getLogger(__name__)


def _answer(**fields: Any) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def serve(
    locker_id: str, *, data_dir: Path, mqtt_host: str, mqtt_port: int, helmet_host: str, fps: float = 10.0
) -> None:
    # The physical world (doors, helmets) is kept in a file so that it outlives this process.
    rig = SimLocker(
        locker_id,
        data_dir=data_dir,
        mqtt_host=mqtt_host,
        mqtt_port=mqtt_port,
        helmet_host=helmet_host,
        fps=fps,
        persist_physical=True,
    )
    rig.start()
    connected = rig.service.link.wait_connected(10)
    _answer(ok=True, ready=True, locker_id=locker_id, connected=connected)
    try:
        for line in sys.stdin:
            line = line.strip()
            if not line:
                continue
            try:
                req = json.loads(line)
                op = req.get("op")
                if op == "quit":
                    _answer(ok=True)
                    break
                if op == "show":
                    rig.show(str(req["text"]), float(req.get("seconds", 1.5)))
                    _answer(ok=True)
                elif op == "take":
                    taken = rig.take(int(req.get("count", 1)), timeout=float(req.get("timeout", 10)))
                    _answer(ok=bool(taken), helmets=taken)
                elif op == "insert":
                    slot = rig.insert(str(req["helmet_id"]), timeout=float(req.get("timeout", 20)))
                    _answer(ok=True, slot=slot)
                elif op == "close_all":
                    rig.physical.close_all_doors()
                    _answer(ok=True)
                elif op == "state":
                    _answer(
                        ok=True,
                        helmets={str(k): v for k, v in rig.physical.helmets().items()},
                        outbox=rig.service.store.outbox_size(),
                        connected=rig.service.link.connected,
                        pass_keys=len(rig.service.rules.keys),
                        revoked=sorted(rig.service.rules.revoked),
                        used=sorted(rig.service.rules.used),
                        released=[sl.number for sl in rig.physical.released()],
                        doors_open=[n for n, sl in rig.physical.slots.items() if sl.door_open],
                    )
                else:
                    _answer(ok=False, error=f"unknown op {op!r}")
            except (PhysicalError, KeyError, ValueError, TypeError) as exc:
                _answer(ok=False, error=str(exc))
    finally:
        rig.stop()
