"""``helmet-sim``: simulated lockers and towns, and the demo."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="helmet-station simulator", no_args_is_help=True)


@app.command()
def locker(
    locker_id: Annotated[str, typer.Option("--locker-id")],
    data_dir: Annotated[Path, typer.Option("--data-dir")],
    mqtt_host: Annotated[str, typer.Option("--mqtt-host")] = "127.0.0.1",
    mqtt_port: Annotated[int, typer.Option("--mqtt-port")] = 1883,
    helmet_host: Annotated[str, typer.Option("--helmet-host")] = "helmets.example.org",
    fps: Annotated[float, typer.Option("--fps", help="camera frames per second")] = 10.0,
) -> None:
    """One simulated locker as its own process, steered by JSON lines on stdin."""
    from helmet_sim.control import serve

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    serve(locker_id, data_dir=data_dir, mqtt_host=mqtt_host, mqtt_port=mqtt_port, helmet_host=helmet_host, fps=fps)


@app.command()
def demo(
    stations: Annotated[int, typer.Option(help="stations, one locker each")] = 3,
    helmets_per_locker: Annotated[int, typer.Option()] = 4,
    port: Annotated[int, typer.Option(help="HTTP port of the cloud")] = 8000,
    workdir: Annotated[Path, typer.Option()] = Path("var/demo"),
    duration: Annotated[float, typer.Option(help="seconds to run; 0 runs until Ctrl-C")] = 0.0,
    broker: Annotated[str, typer.Option(help="auto (Mosquitto if installed), mosquitto or amqtt")] = "auto",
) -> None:
    """The whole system on one machine: broker, cloud (SQLite), simulated lockers and residents."""
    from helmet_sim.demo import run_demo

    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    raise typer.Exit(
        run_demo(
            stations=stations,
            helmets_per_locker=helmets_per_locker,
            port=port,
            workdir=workdir,
            duration=duration,
            broker=broker,
        )
    )
