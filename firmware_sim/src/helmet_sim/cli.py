"""``helmet-sim``: simulated lockers and towns, and the demo."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="helmet-station simulator", no_args_is_help=True)


def _logging(level: int) -> None:
    logging.basicConfig(level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@app.command()
def locker(
    locker_id: Annotated[str, typer.Option("--locker-id")],
    data_dir: Annotated[Path, typer.Option("--data-dir")],
    mqtt_host: Annotated[str, typer.Option("--mqtt-host")] = "127.0.0.1",
    mqtt_port: Annotated[int, typer.Option("--mqtt-port")] = 1883,
    helmet_host: Annotated[str, typer.Option("--helmet-host")] = "helmets.example.org",
    fps: Annotated[float, typer.Option("--fps", help="camera frames per second")] = 10.0,
    cable: Annotated[bool, typer.Option(help="reach the broker through a network cable of its own (a relay)")] = True,
    face_port: Annotated[
        int | None, typer.Option("--face-port", help="serve the locker's screen on this loopback port (0: any free)")
    ] = None,
) -> None:
    """One simulated locker as its own process, steered by JSON lines on stdin (send {"op": "help"}).

    Each answer is a JSON line on stdout carrying the request's "id", "ok" and, if not ok, an "error".

    {"op": "cable", "state": "cut"} pulls its own network cable ("restore" plugs it back in).

    {"op": "kill"} cuts its power and {"op": "restart"} boots it again on --data-dir (as kill -9 and a new start do).
    """
    from helmet_sim.control import serve

    _logging(logging.INFO)
    serve(
        locker_id, data_dir=data_dir, mqtt_host=mqtt_host, mqtt_port=mqtt_port, helmet_host=helmet_host, fps=fps,
        cable=cable, face_port=face_port,
    )  # fmt: skip


@app.command()
def town(
    stations: Annotated[int, typer.Option(help="stations, one locker each")] = 6,
    slots: Annotated[int, typer.Option(help="slots per locker: 6 (Pi GPIO) or 12 (MCP23017 expanders)")] = 6,
    residents: Annotated[int, typer.Option(help="residents living in town")] = 60,
    speed: Annotated[float, typer.Option(help="simulated seconds per real second")] = 60.0,
    hours: Annotated[float, typer.Option(help="simulated hours to run; 0 runs until Ctrl-C")] = 1.0,
    seed: Annotated[int, typer.Option()] = 1,
    trips_per_day: Annotated[float, typer.Option(help="trips per resident per day, on average")] = 2.0,
    fill: Annotated[float, typer.Option(help="share of slots stocked at the start")] = 0.5,
    start_hour: Annotated[int, typer.Option(help="simulated hour of day at the start")] = 7,
    forgers: Annotated[float, typer.Option(help="share of residents showing forged passes")] = 0.01,
    replayers: Annotated[float, typer.Option(help="share replaying used passes")] = 0.01,
    keepers: Annotated[float, typer.Option(help="share keeping helmets for days")] = 0.02,
    door_leavers: Annotated[float, typer.Option(help="share leaving doors open")] = 0.01,
    workers: Annotated[int, typer.Option(help="resident threads; 0: one per station, at most 48")] = 0,
    fps: Annotated[float, typer.Option(help="camera frames per second while someone stands in front")] = 5.0,
    workdir: Annotated[Path, typer.Option()] = Path("var/town"),
    port: Annotated[int, typer.Option(help="HTTP port of the embedded cloud")] = 8000,
    broker: Annotated[str, typer.Option(help="embedded broker: auto, mosquitto or amqtt")] = "auto",
    cloud_url: Annotated[str | None, typer.Option(help="use a running cloud instead of starting one")] = None,
    mqtt: Annotated[str, typer.Option(help="host:port of the running cloud's broker")] = "127.0.0.1:1883",
    admin: Annotated[str, typer.Option(help="user:password of an admin on the running cloud")] = "",
    sms_file: Annotated[Path | None, typer.Option(help="the running cloud's file: SMS backend")] = None,
    keep: Annotated[
        bool, typer.Option("--keep", help="go on with the town kept in --workdir (its lockers, cloud, residents)")
    ] = False,
    faults: Annotated[
        bool,
        typer.Option(help="a network cable per locker and doors and helmets kept in files: cut, kill, --keep"),
    ] = True,
) -> None:
    """A whole town: stations, a real edge instance per locker, residents on an accelerated clock; ends with a check.

    While it runs, `helmet-sim control --workdir DIR OP` steers it (docs/simulation.md, "Faults from the command line").
    """
    from helmet_sim.residents import Mix
    from helmet_sim.runner import External, run
    from helmet_sim.town import TownOptions

    _logging(logging.WARNING)
    try:
        options = TownOptions(
            stations=stations, slots=slots, residents=residents, speed=speed, hours=hours, seed=seed,
            trips_per_day=trips_per_day, fill=fill, start_hour=start_hour, workers=workers, fps=fps,
            mix=Mix(forger=forgers, replayer=replayers, keeper=keepers, door_leaver=door_leavers), faults=faults,
        )  # fmt: skip
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    external = None
    if cloud_url:
        user, _, password = admin.partition(":")
        host, _, mqtt_port = mqtt.rpartition(":")
        if not (user and password and sms_file and mqtt_port.isdigit()):
            typer.echo("error: --cloud-url needs --admin user:password, --sms-file and --mqtt host:port", err=True)
            raise typer.Exit(2)
        external = External(cloud_url, host or "127.0.0.1", int(mqtt_port), user, password, sms_file)
    raise typer.Exit(run(options, workdir=workdir, port=port, broker=broker, external=external, keep=keep))


@app.command()
def control(
    op: Annotated[str | None, typer.Argument(show_default=False)] = None,
    locker: Annotated[str | None, typer.Argument(show_default=False)] = None,
    workdir: Annotated[Path, typer.Option(help="the running town's --workdir")] = Path("var/town"),
    timeout: Annotated[float | None, typer.Option(help="for pause, check, restart: seconds to wait")] = None,
    request_id: Annotated[str, typer.Option("--id", help="the request's id, echoed in the answer")] = "1",
) -> None:
    """Steer a running `helmet-sim town`: one op, or JSON lines from stdin (one answer line each).

    OP: status, cut, restore, kill, restart (each with a LOCKER: LK-0002, ST-002 or 2), pause, resume, check, stop, help

    `helmet-sim control cut LK-0002` sends {"op": "cut", "locker": "LK-0002", "id": "1"} and prints the JSON answer.

    Exit code 0 if the answer is ok, 1 if not, 2 if no town runs on --workdir.

    Without OP, each line on stdin is sent as it is (a JSON request) and each answer printed.
    """
    import json

    from helmet_sim.town_control import send, socket_path

    path = socket_path(workdir)
    lines: Iterable[str] = sys.stdin  # each line is sent as it comes: a tester can type them
    if op is not None:
        req: dict[str, object] = {"id": request_id, "op": op}
        if locker is not None:
            req["locker"] = locker
        if timeout is not None:
            req["timeout"] = timeout
        lines = [json.dumps(req)]
    failed: list[bool] = []

    def show(line: str) -> None:
        typer.echo(line)
        try:
            failed.append(not json.loads(line).get("ok"))
        except ValueError:
            failed.append(True)

    try:
        send(path, lines, show)
    except (FileNotFoundError, ConnectionRefusedError):
        typer.echo(f"error: no town runs on {workdir} (nothing answers on {path})", err=True)
        raise typer.Exit(2) from None
    except OSError as exc:
        typer.echo(f"error: {path}: {exc}", err=True)
        raise typer.Exit(2) from None
    raise typer.Exit(1 if any(failed) else 0)


@app.command()
def demo(
    stations: Annotated[int, typer.Option(help="stations, one locker each")] = 6,
    residents: Annotated[int, typer.Option()] = 60,
    speed: Annotated[float, typer.Option(help="simulated seconds per real second")] = 120.0,
    port: Annotated[int, typer.Option(help="HTTP port of the cloud")] = 8000,
    workdir: Annotated[Path, typer.Option()] = Path("var/demo"),
    duration: Annotated[float, typer.Option(help="seconds to run; 0 runs until Ctrl-C")] = 0.0,
    broker: Annotated[str, typer.Option(help="auto (Mosquitto if installed), mosquitto or amqtt")] = "auto",
) -> None:
    """The whole system on one machine: a small town on the embedded defaults, with a live summary."""
    from helmet_sim.runner import run
    from helmet_sim.town import TownOptions

    _logging(logging.WARNING)
    options = TownOptions(
        stations=stations,
        residents=residents,
        speed=speed,
        hours=duration * speed / 3600,
        trips_per_day=3.0,
        faces=True,
    )
    raise typer.Exit(run(options, workdir=workdir, port=port, broker=broker, demo=True))
