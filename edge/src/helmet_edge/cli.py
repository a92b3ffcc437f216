"""``helmet-edge``: run the locker service and the technician's tools."""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from helmet_edge.errors import ConfigError
from helmet_protocol.logs import LogFormat, setup_logging

if TYPE_CHECKING:
    from helmet_edge.config import EdgeSettings
    from helmet_edge.profile import PinProfile
    from helmet_edge.slots_gpiozero import GpioSlotBank
    from helmet_protocol.enrolment import EnrolmentBundle

app = typer.Typer(help="helmet-station locker service", no_args_is_help=True)
log = logging.getLogger("helmet_edge.cli")


@app.command()
def run(
    config: Annotated[Path, typer.Option("--config", "-c", help="TOML config file")],
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
    log_format: Annotated[LogFormat, typer.Option("--log-format", help="text, or json for journald")] = "text",
) -> None:
    """Run the locker on real hardware: camera, GPIO, MQTT."""
    setup_logging(verbose=verbose, fmt=log_format)
    # The composition root: every adapter is built here and handed to the loop, which knows only the ports.
    from helmet_edge import decoder_pyzbar
    from helmet_edge.camera_opencv import OpenCvCamera
    from helmet_edge.clock_system import SystemClock
    from helmet_edge.config import load_settings
    from helmet_edge.decoder_process import SupervisedDecoder
    from helmet_edge.face_http import FaceServer
    from helmet_edge.link_mqtt import MqttLink
    from helmet_edge.loop import LockerLoop
    from helmet_edge.profile import load_profile
    from helmet_edge.speaker_alsa import AlsaSpeaker
    from helmet_edge.store import Store
    from helmet_edge.watchdog import Notifier

    if not config.is_file():  # never first-boot enrolment on a mistyped path: say what is wrong
        typer.echo(f"error: config file {config} does not exist (hardware/config.example.toml is a start)", err=True)
        raise typer.Exit(2)
    try:
        settings = load_settings(config)
        profile = load_profile(settings.pin_profile)
    except ConfigError as exc:
        if _first_boot(config):
            raise typer.Exit(0) from None  # enrolled: systemd starts the service again, now as the locker
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    slots = _slot_bank(settings, profile)
    decoder_pyzbar.warn_if_unavailable()
    service = LockerLoop(
        settings,
        slots=slots,
        camera=OpenCvCamera(settings.camera),
        decoder=SupervisedDecoder(),
        store=Store.in_data_dir(settings.data_dir, settings.locker_id),
        link_factory=MqttLink,
        clock=SystemClock(),
        notifier=Notifier(),
        speaker=AlsaSpeaker(settings.voice) if settings.voice.enabled else None,
    )
    try:  # the screen is the resident's; the locker opens doors without it
        face = FaceServer(service.face, settings.face).start() if settings.face.enabled else None
    except OSError as exc:
        log.error("the locker's face cannot listen on %s:%d: %s", settings.face.host, settings.face.port, exc)
        face = None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    service.start()
    try:
        service.run(stop)
    finally:
        if face is not None:
            face.close()
        service.close()


def _first_boot(config: Path) -> bool:
    """Not enrolled and no locker id configured: wait for an enrolment QR at the camera, install its bundle.

    Returns False when this is not a first boot (the caller reports the configuration error).
    """
    import os
    import tomllib

    from helmet_edge import enroll
    from helmet_edge.camera_opencv import OpenCvCamera
    from helmet_edge.config import CameraSettings, configured_data_dir
    from helmet_edge.decoder_process import SupervisedDecoder
    from helmet_edge.watchdog import Notifier

    data_dir = configured_data_dir(config)
    try:
        raw = tomllib.loads(config.read_text())
        if enroll.installed(data_dir) is not None or "locker_id" in raw or os.environ.get("HELMET_EDGE_LOCKER_ID"):
            return False
        camera_settings = CameraSettings(**raw.get("camera", {}))
    except (enroll.EnrolError, ValueError, OSError):
        return False
    typer.echo("not enrolled: hold the enrolment QR code to the camera (or run helmet-edge enroll CODE)", err=True)
    notifier = Notifier()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    camera, decoder = OpenCvCamera(camera_settings), SupervisedDecoder()
    notifier.ready("waiting for an enrolment QR code")

    def keep_going() -> bool:
        notifier.ping()
        return stop.is_set()

    try:
        bundle = enroll.wait_for_qr(
            camera,
            decoder,
            lambda url, code: _install(data_dir, enroll.fetch(url, code)),
            should_stop=keep_going,
        )
    finally:
        camera.close()
        decoder.close()
    if bundle is not None:
        typer.echo(f"enrolled as {bundle.locker_id}; restarting as the locker", err=True)
    return True


def _install(data_dir: Path, bundle: EnrolmentBundle) -> EnrolmentBundle:
    from helmet_edge import enroll

    enroll.install(data_dir, bundle)
    return bundle


@app.command("enroll")
def enroll_cmd(
    code: Annotated[str | None, typer.Argument(help="the enrolment code, e.g. 7KQ2-M9XD-4TWA")] = None,
    cloud_url: Annotated[str | None, typer.Option("--cloud-url", help="https://... of the town's cloud")] = None,
    bundle_file: Annotated[
        Path | None, typer.Option("--bundle", help="an offline bundle file instead of a code")
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="TOML config file (for data_dir)")] = None,
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="where the service keeps its data")] = None,
    insecure_http: Annotated[bool, typer.Option("--insecure-http", help="allow http:// (tests only)")] = False,
) -> None:
    """Make this Pi a locker: exchange a one-time code at the cloud, or install an offline bundle file.

    Stop the service first; run it as the service user, or as root (the files are handed to data_dir's owner).
    """
    from helmet_edge import enroll
    from helmet_edge.config import configured_data_dir

    folder = data_dir or configured_data_dir(config)
    try:
        if bundle_file is not None:
            if code is not None:
                raise enroll.EnrolError("give a code or --bundle, not both")
            bundle = enroll.read_file(bundle_file)
        elif code is not None and cloud_url is not None:
            bundle = enroll.fetch(cloud_url, code, insecure_http=insecure_http)
        else:
            raise enroll.EnrolError("give a CODE and --cloud-url, or --bundle FILE")
        path = enroll.install(folder, bundle)
    except enroll.EnrolError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    m = bundle.mqtt
    report = {
        "locker_id": bundle.locker_id,
        "station_id": bundle.station_id,
        "pin_profile": bundle.pin_profile,
        "broker": f"{'mqtts' if m.tls else 'mqtt'}://{m.host}:{m.port}",
        "events_continue_after_seq": bundle.last_seq,
        "bundle": str(path),
    }
    typer.echo(json.dumps(report, indent=2))


@app.command()
def scan(
    files: Annotated[list[Path], typer.Argument(help="image files (PNG, JPEG, ...)")],
    budget_ms: Annotated[float, typer.Option(help="time allowed per image once a code is located")] = 30.0,
) -> None:
    """Decode QR codes in image files with the kiosk's decoder; one JSON object per line.

    ``texts`` holds each payload as UTF-8 (invalid bytes replaced); ``ms`` is the decode time.
    """
    import cv2
    import numpy as np

    from helmet_edge.decoder_cascade import CascadeDecoder

    decoder = CascadeDecoder(budget_ms=budget_ms)
    failed = False
    for f in files:
        # OpenCV prints its own warning for a path it cannot open: look first, and say which it is.
        problem = None if f.is_file() else ("no such file" if not f.exists() else "not a file")
        image = cv2.imread(str(f), cv2.IMREAD_GRAYSCALE) if problem is None else None
        if image is None:
            typer.echo(json.dumps({"file": str(f), "error": problem or "not an image OpenCV can read"}))
            failed = True
            continue
        t0 = time.perf_counter()
        found = decoder.decode(np.asarray(image, dtype=np.uint8))
        ms = (time.perf_counter() - t0) * 1000
        texts = [d.decode("utf-8", errors="replace") for d in found]
        typer.echo(json.dumps({"file": str(f), "texts": texts, "ms": round(ms, 2)}))
    if failed:
        raise typer.Exit(1)


def _slot_bank(settings: EdgeSettings, profile: PinProfile) -> GpioSlotBank:
    """The slots on the pin factory the config names (``pin_factory``), or exit 2 saying why not."""
    from helmet_edge.slots_gpiozero import GpioSlotBank, pin_factory

    try:
        return GpioSlotBank(profile, pin_factory=pin_factory(settings.pin_factory))
    except ConfigError as exc:  # no GPIO here, or an expander profile on a pin factory that cannot drive it
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def _load(config: Path) -> tuple[EdgeSettings, PinProfile]:
    from helmet_edge.config import load_settings
    from helmet_edge.profile import load_profile

    try:
        settings = load_settings(config)
        return settings, load_profile(settings.pin_profile)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command()
def selftest(config: Annotated[Path, typer.Option("--config", "-c", help="TOML config file")]) -> None:
    """Pulse each lock and read each sensor (stop the service first); records a locker.selftest event."""
    from helmet_edge.selftest import as_table, run_selftest, summary
    from helmet_edge.slot_machine import EventDraft
    from helmet_edge.store import Store
    from helmet_protocol.events import EventKind
    from helmet_protocol.messages import utcnow

    settings, profile = _load(config)
    bank = _slot_bank(settings, profile)
    store = Store.in_data_dir(settings.data_dir, settings.locker_id)
    try:
        states = {r.slot: r.state for r in store.load_slots(bank.slot_count)}
        checks = run_selftest(bank, states)
        ok = all(c.ok for c in checks)
        store.commit(
            events=[EventDraft(EventKind.LOCKER_SELFTEST, reason="ok" if ok else "problems", detail=summary(checks))],
            now=utcnow(),
        )
    finally:
        bank.close()
        store.close()
    typer.echo(as_table(checks))
    typer.echo(summary(checks))
    if not ok:
        raise typer.Exit(1)


@app.command()
def status(config: Annotated[Path, typer.Option("--config", "-c", help="TOML config file")]) -> None:
    """What the locker has stored: slots, the outbox and what the cloud has acknowledged (JSON)."""
    from helmet_edge.store import Store

    settings, profile = _load(config)
    store = Store.in_data_dir(settings.data_dir, settings.locker_id)
    try:
        slots = store.load_slots(len(profile.slots))
        cloud = store.get_json("config") or {}
        report = {
            "locker_id": settings.locker_id,
            "last_seq": store.last_seq(),
            "acked_seq": store.acked_seq(),
            "outbox": store.outbox_size(),
            "pass_keys": sorted(cloud.get("pass_keys", settings.passes.keys)),
            "slots": [{"slot": r.slot, "state": r.state, "helmet_id": r.helmet_id} for r in slots],
        }
    finally:
        store.close()
    typer.echo(json.dumps(report, indent=2))
