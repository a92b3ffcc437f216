"""``helmet-edge``: run the locker service and the technician's tools."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Annotated

import typer

from helmet_edge.errors import ConfigError

app = typer.Typer(help="helmet-station locker service", no_args_is_help=True)


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


@app.command()
def run(
    config: Annotated[Path, typer.Option("--config", "-c", help="TOML config file")],
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run the locker on real hardware: camera, GPIO, MQTT."""
    _setup_logging(verbose)
    from helmet_edge.camera_opencv import OpenCvCamera
    from helmet_edge.config import load_settings
    from helmet_edge.decoder_zxing import ZxingDecoder
    from helmet_edge.profile import load_profile
    from helmet_edge.service import LockerService
    from helmet_edge.slots_gpiozero import GpioSlotBank

    try:
        settings = load_settings(config)
        profile = load_profile(settings.pin_profile)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    service = LockerService(
        settings, slots=GpioSlotBank(profile), camera=OpenCvCamera(settings.camera), decoder=ZxingDecoder()
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    service.start()
    try:
        service.run(stop)
    finally:
        service.close()


@app.command()
def scan(files: Annotated[list[Path], typer.Argument(help="image files")]) -> None:
    """Decode QR codes in image files; one JSON object per line."""
    import cv2
    import numpy as np

    from helmet_edge.decoder_zxing import ZxingDecoder

    decoder = ZxingDecoder()
    failed = False
    for f in files:
        image = cv2.imread(str(f), cv2.IMREAD_GRAYSCALE)
        if image is None:
            typer.echo(json.dumps({"file": str(f), "error": "cannot read image"}))
            failed = True
            continue
        t0 = time.perf_counter()
        found = decoder.decode(np.asarray(image, dtype=np.uint8))
        ms = (time.perf_counter() - t0) * 1000
        texts = [d.decode("utf-8", errors="replace") for d in found]
        typer.echo(json.dumps({"file": str(f), "texts": texts, "ms": round(ms, 2)}))
    if failed:
        raise typer.Exit(1)
