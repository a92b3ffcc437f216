"""Running a town from the command line: start or join a cloud, build, live view, verdict.

``helmet-sim town`` and ``helmet-sim demo`` both end here; the demo is a small
town on the embedded defaults with a per-station table. While it runs, the town
takes faults on its control channel (:mod:`helmet_sim.town_control`); with
``keep`` it goes on from the state its work directory holds.
"""

from __future__ import annotations

import contextlib
import logging
import os
import resource
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, TaskID, TextColumn
from rich.progress import Progress as Bar
from rich.table import Table

from helmet_sim.cloud_client import CloudClient, CloudError
from helmet_sim.consistency import verdict
from helmet_sim.embedded import ADMIN, Embedded, SetupError, start_embedded
from helmet_sim.town import KeptTownError, Town, TownOptions, load_kept
from helmet_sim.town_control import ControlError, ControlServer, TownControl, answers, socket_path

# Without a terminal (a pipe, `| tee`, a CI log) the live view is replaced by one plain line this often.
PLAIN_EVERY_S = 10.0


@dataclass(frozen=True)
class External:
    """A cloud and broker that already run (``--cloud-url``, ``--broker``)."""

    cloud_url: str
    mqtt_host: str
    mqtt_port: int
    admin_user: str
    admin_password: str
    sms_file: Path


def log_to(path: Path) -> None:
    """The lockers' logs go to a file: the terminal belongs to the live view."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)


def cloud_settings(options: TownOptions) -> dict[str, str]:
    """Cloud settings for an embedded town: alerts swept often enough to see at ``--speed``."""
    return {
        "ALERT_SWEEP_SECONDS": str(max(2.0, min(30.0, 1800 / options.speed))),
        "LOAN_OVERDUE_HOURS": "1",  # the smallest the cloud allows (whole hours of wall-clock time)
        "LOAN_MISSING_DAYS": "1",
        "LOAN_LOST_DAYS": "1",
        # Every simulated phone comes from 127.0.0.1; the per-address limit is for a town of real phones.
        "PASS_REQUESTS_PER_MINUTE_PER_IP": "100000",
        "CODES_SENT_PER_WINDOW_PER_IP": "100000",
    }


class SetupProgress:
    """The town's set-up steps: a progress bar on a terminal, a plain line at each quarter otherwise."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.bar = (
            Bar(TextColumn("  {task.description}"), BarColumn(), MofNCompleteColumn(), console=console)
            if console.is_terminal
            else None
        )  # fmt: skip
        self.tasks: dict[str, TaskID] = {}
        self.told: dict[str, int] = {}
        self._lock = threading.Lock()  # stocking runs on several threads at once

    def __enter__(self) -> SetupProgress:
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def __call__(self, step: str, done: int, total: int) -> None:
        with self._lock:
            self._show(step, done, total)

    def _show(self, step: str, done: int, total: int) -> None:
        if self.bar is not None:
            if step not in self.tasks:
                self.tasks[step] = self.bar.add_task(step, total=total)
            self.bar.update(self.tasks[step], completed=done)
            return
        quarter = done * 4 // max(1, total)
        if quarter > self.told.get(step, -1) and (done == total or quarter > 0):
            self.told[step] = quarter
            self.console.print(f"  {step}: {done}/{total}")


def plain_line(town: Town) -> str:
    """The live view's figures on one line, for a log."""
    f = town.figures()
    keys = ("simulated", "borrows", "returns", "helmets out", "alerts", "events", "errors")
    return "  " + ", ".join(f"{k} {f[k]}" for k in keys)


def view(town: Town, *, stations: bool) -> Group:
    figures = Table(show_header=False, box=None, pad_edge=False)
    figures.add_column(style="bold")
    figures.add_column()
    for name, value in town.figures().items():
        figures.add_row(name, str(value))
    parts: list[object] = [Panel(figures, title=f"Town of {len(town.rigs)} stations at x{town.options.speed:g}")]
    if stations:
        table = Table(title="Stations (as the cloud reports them)")
        for col in ("station", "name", "helmets", "free slots", "online"):
            table.add_column(col)
        try:
            for s in town.admin.stations():
                table.add_row(
                    s["id"], s["name"], str(s["helmets_available"]), str(s["free_slots"]),
                    f"{s['lockers_online']}/{s['lockers']}",
                )  # fmt: skip
        except (CloudError, OSError) as exc:
            table.add_row("-", f"cloud unreachable: {exc}"[:60], "", "", "")
        parts.append(table)
    if town.alerts:
        parts.append(Panel(", ".join(f"{k} {n}" for k, n in sorted(town.alerts.items())), title="Alerts"))
    parts.append(Panel("\n".join(town.tally.recent) or "-", title="Recently"))
    return Group(*parts)  # type: ignore[arg-type]


def run(
    options: TownOptions,
    *,
    workdir: Path,
    port: int = 8000,
    broker: str = "auto",
    external: External | None = None,
    demo: bool = False,
    console: Console | None = None,
    keep: bool = False,
) -> int:
    """Build the town, run it for ``options.hours`` simulated hours (or until Ctrl-C, or the control channel's
    ``stop``), check it. 0 is a pass. ``keep``: go on with the town kept in ``workdir`` instead of wiping it."""
    if console is None:
        console = Console()
        console.soft_wrap = not console.is_terminal  # piped, nothing wraps at 80 columns: a line is a line

    def refuse(message: str) -> int:
        console.print(f"[bold red]error[/]: {message}", soft_wrap=True, highlight=False)
        return 2

    if answers(socket_path(workdir)):
        return refuse(f"a town already runs on {workdir} (its control socket answers): stop it, or another --workdir")
    kept = None
    if keep:
        try:
            kept = load_kept(workdir, options)
        except KeptTownError as exc:
            return refuse(str(exc))
        if kept is None and workdir.exists() and any(workdir.iterdir()):
            return refuse(
                f"{workdir} holds no kept town (no town.json): start it without --keep, or choose an empty --workdir"
            )
    elif workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    log_to(workdir / "town.log")
    embedded: Embedded | None = None
    if external is None:
        console.print(f"starting the broker and the cloud on port {port} ...")
        try:
            embedded = start_embedded(workdir / "cloud", port=port, broker=broker, settings=cloud_settings(options))
        except SetupError as exc:
            return refuse(str(exc))
        console.print(f"[bold]broker[/]: {embedded.broker.kind} on 127.0.0.1:{embedded.broker.port}")
        base, mqtt_port, sms_file = embedded.base_url, embedded.broker.port, embedded.sms_file
        user, password, mqtt_host = ADMIN, embedded.admin_password, "127.0.0.1"
    else:
        base, mqtt_host, mqtt_port = external.cloud_url, external.mqtt_host, external.mqtt_port
        user, password, sms_file = external.admin_user, external.admin_password, external.sms_file
    town: Town | None = None
    server: ControlServer | None = None
    problems = ["the town never started"]
    started = time.monotonic()
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    try:
        admin = CloudClient(base).login(user, password)
        town = Town(
            options, workdir=workdir, cloud_url=base, admin=admin, sms_file=sms_file,
            mqtt_host=mqtt_host, mqtt_port=mqtt_port, kept=kept,
        )  # fmt: skip
        if kept is not None:
            when = str(kept["simulated"])[:16].replace("T", " ")
            console.print(f"going on with the town kept in {workdir} (simulated time {when}) ...")
        console.print(f"setting up {options.stations} stations, lockers and helmets ...")
        with SetupProgress(console) as progress:
            town.build(progress)
        built = time.monotonic() - started
        control = TownControl(town)
        try:
            server = ControlServer(control, socket_path(workdir))
            steer = f"        control: helmet-sim control --workdir {workdir} help   (JSON lines on {server.path})\n"
        except ControlError as exc:
            steer = f"        no control channel: {exc}\n"
        faces = [(r.locker_id, r.face_url) for r in town.rigs if r.face_url]
        screens = "".join(f"        {lid}'s screen (what residents see): {url}\n" for lid, url in faces[:12])
        if len(faces) > 12:
            screens += f"        ... and {len(faces) - 12} more lockers' screens\n"
        console.print(
            f"[bold green]ready[/] in {built:.0f} s: {town.helmets} helmets in {len(town.rigs)} lockers "
            f"of {options.slots} slots\n"
            f"        staff dashboard: {base}/staff/   a station's page: {base}/s/{town.station_ids[0]}\n"
            f"        API docs: {base}/docs   stations: {base}/api/stations\n"
            f"        staff login: {user} / {password}   logs: {workdir}/cloud/cloud.log, {workdir}/town.log\n"
            f"{screens}{steer}"
            "        Ctrl-C stops the town and checks it",
            soft_wrap=True,
        )
        town.populate()
        town.start()
        last_alerts = last_line = 0.0
        try:
            with contextlib.ExitStack() as stack:
                live = (
                    stack.enter_context(Live(view(town, stations=demo), console=console, refresh_per_second=1))
                    if console.is_terminal
                    else None
                )
                while not town.finished() and not control.stop_requested.wait(1):
                    if time.monotonic() - last_alerts > 5:
                        last_alerts = time.monotonic()
                        with contextlib.suppress(CloudError, OSError):
                            town.refresh_alerts()
                    if live is not None:
                        live.update(view(town, stations=demo))
                    elif time.monotonic() - last_line >= PLAIN_EVERY_S:
                        last_line = time.monotonic()
                        console.print(plain_line(town), highlight=False)
        except KeyboardInterrupt:
            pass
        ran = time.monotonic() - started - built
        if server is not None:  # no faults during the final check
            server.close()
            server = None
        console.print("checking that the cloud agrees with the lockers and the residents ...")
        problems = town.check()
        for done in town.recovered:
            console.print(f"  before the check: {done}", highlight=False)
        town.refresh_alerts()
        others = {}
        if embedded is not None:
            others["cloud"] = embedded.cloud.pid
            broker_proc = getattr(embedded.broker, "process", None)
            if broker_proc is not None:
                others["broker"] = broker_proc.pid
        console.print(report(town, ran=ran, built=built, cpu0=cpu0, others=others))
        console.print(
            verdict(problems, lockers=len(town.rigs), helmets_out=sum(len(r.holding) for r in town.residents))
        )
    except KeyboardInterrupt:
        problems = ["interrupted before the check"]
    except KeptTownError as exc:
        refuse(str(exc))
        problems = [str(exc)]
    finally:
        console.print("stopping ...")
        if server is not None:
            server.close()
        if town is not None:
            town.close()
            town.admin.close()
        if embedded is not None:
            embedded.stop()
    return 1 if problems else 0


def proc_usage(pid: int) -> tuple[float, float]:
    """CPU seconds and peak RSS (MiB) of a running process, from /proc (0, 0 where there is none)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0, 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    hwm = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0)
    return (int(stat[11]) + int(stat[12])) / ticks, hwm / 1024


def report(
    town: Town, *, ran: float, built: float, cpu0: resource.struct_rusage, others: dict[str, int] | None = None
) -> str:
    """The run's figures as Markdown-friendly lines (the benchmark records them)."""
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    usage = {name: proc_usage(pid) for name, pid in (others or {}).items()}
    t = town.tally
    kinds = {k.value: sum(1 for r in town.residents if r.behaviour == k) for k in type(town.residents[0].behaviour)}
    simulated = str(town.ended or town.clock.elapsed()).split(".")[0]
    lines = [
        f"- simulated: {simulated} from {town.clock.start:%H:%M} at x{town.options.speed:g}; "
        f"wall clock: {ran:.0f} s running after {built:.0f} s of set-up",
        f"- residents: {len(town.residents)} ({', '.join(f'{k} {n}' for k, n in kinds.items())})",
        f"- trips {t.trips}, helmets borrowed {t.borrows}, returned {t.returns}, still out "
        f"{sum(len(r.holding) for r in town.residents)}",
        f"- refused as expected: {t.refused_as_expected} (forged shown {t.forged_shown}, replays shown "
        f"{t.replays_shown}); no helmet found {t.no_helmet}; locker full on return {t.no_slot}; "
        f"cloud refused a pass {t.cloud_refused}; doors left open {t.doors_left_open}; codes not read {t.unread}; "
        f"kiosk dark {t.out_of_order}; errors {t.errors}",
        f"- events recorded by the lockers: {town.recorded_events()}",
        f"- alerts: {', '.join(f'{k} {n}' for k, n in sorted(town.alerts.items())) or 'none'}",
        f"- simulator process: CPU {cpu.ru_utime + cpu.ru_stime - cpu0.ru_utime - cpu0.ru_stime:.0f} s, "
        f"max RSS {cpu.ru_maxrss / 1024:.0f} MiB"
        + "".join(f"; {name}: CPU {c:.0f} s, max RSS {m:.0f} MiB" for name, (c, m) in usage.items()),
    ]
    return "\n".join(lines)
