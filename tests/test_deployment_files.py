"""The deployment files are valid and point at files that exist: compose, Dockerfiles, the systemd unit, the BOM."""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SECRETS = {
    "POSTGRES_PASSWORD": "pg-secret",
    "BROKER_ADMIN_PASSWORD": "admin-secret",
    "BROKER_CLOUD_PASSWORD": "cloud-secret",
    "BROKER_INGEST_PASSWORD": "ingest-secret",
    "HELMET_PUBLIC_HOST": "helmets.example.org",
    "HELMET_LOCKER_MQTT_HOST": "mqtt.helmets.example.org",
}


def compose_command() -> list[str]:
    """``docker compose`` (the plugin) or Debian's ``docker-compose``: whichever works here."""
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy:
        return [legacy]
    if os.environ.get("CI"):
        pytest.fail("neither `docker compose` nor `docker-compose` is installed (.ci/run installs docker-compose)")
    pytest.skip("neither `docker compose` nor `docker-compose` is installed (apt-get install docker-compose)")


def compose_config(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in SECRETS and not k.startswith("HELMET_")}
    return subprocess.run(
        [*compose_command(), "-f", str(ROOT / "docker-compose.yml"), "--project-directory", str(ROOT), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**clean, **(env or {})},
        cwd=ROOT,
    )


def test_compose_file_validates_with_every_service_healthchecked() -> None:
    result = compose_config("config", env=SECRETS)
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    services = config["services"]
    assert {"db", "broker", "api", "ingest-1", "ingest-2"} <= set(services)
    assert services["town"]["profiles"] == ["town"]  # started only with --profile town
    for name in ("db", "broker", "api", "ingest-1", "ingest-2"):
        assert services[name].get("healthcheck", {}).get("test"), f"{name} has no health check"
    for name in ("ingest-1", "ingest-2"):
        assert services[name]["command"][:2] == ["helmet-cloud", "ingest"]
    assert services["api"]["environment"]["HELMET_INGEST_IN_PROCESS"] == "false"
    assert {"db-data", "broker-data", "cloud-data"} <= set(config["volumes"])
    # The broker: TLS for lockers published, the plain listener private.
    assert [str(p["target"]) if isinstance(p, dict) else p.split(":")[-1] for p in services["broker"]["ports"]] == [
        "8883"
    ]
    assert services["town"]["command"][:2] == ["helmet-sim", "town"]


def test_compose_refuses_to_start_without_its_secrets() -> None:
    result = compose_config("config", env={k: v for k, v in SECRETS.items() if k != "BROKER_ADMIN_PASSWORD"})
    assert result.returncode != 0
    assert "set BROKER_ADMIN_PASSWORD in .env" in result.stderr


def compose_script(service: str, key: str = "entrypoint") -> str:
    """A service's shell script as the container runs it (compose turns ``$$`` into ``$``)."""
    config = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    value = config["services"][service][key]
    script = value["test"][-1] if key == "healthcheck" else value[-1]
    return str(script).replace("$$", "$")


GOOD = {
    "POSTGRES_PASSWORD": "pg-0123456789abcdef",
    "BROKER_ADMIN_PASSWORD": "admin-0123456789abcdef",
    "BROKER_CLOUD_PASSWORD": "cloud-0123456789abcdef",
    "BROKER_INGEST_PASSWORD": "ingest-0123456789abcdef",
}


@pytest.mark.parametrize(
    ("name", "value", "said"),
    [
        ("BROKER_ADMIN_PASSWORD", "change-me-too", "BROKER_ADMIN_PASSWORD in .env still has its example value"),
        ("POSTGRES_PASSWORD", "change-me", "POSTGRES_PASSWORD in .env still has its example value"),
        ("BROKER_INGEST_PASSWORD", "short", "BROKER_INGEST_PASSWORD in .env is shorter than 16 characters"),
    ],
)
def test_compose_refuses_the_example_and_short_passwords(name: str, value: str, said: str) -> None:
    script = compose_script("preflight")
    ok = subprocess.run(["sh", "-c", script], env=GOOD, capture_output=True, text=True, timeout=10)
    assert ok.returncode == 0, ok.stdout
    bad = subprocess.run(["sh", "-c", script], env={**GOOD, name: value}, capture_output=True, text=True, timeout=10)
    assert bad.returncode != 0 and said in bad.stdout
    example = dict(re.findall(r"^([A-Z_]+)=(.*)$", (ROOT / "hardware" / "compose.env.example").read_text(), re.M))
    assert subprocess.run(["sh", "-c", script], env=example, capture_output=True, timeout=10).returncode != 0
    config = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for first in ("db", "broker-init"):  # nothing starts before the check
        assert config[first]["depends_on"]["preflight"]["condition"] == "service_completed_successfully"


def test_only_the_api_gets_the_broker_admins_password_and_no_command_line_carries_a_secret() -> None:
    result = compose_config("config", env=SECRETS)
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    holders = {name for name, svc in services.items() if "HELMET_BROKER_ADMIN_PASSWORD" in svc.get("environment", {})}
    assert holders == {"api"}
    for name in ("ingest-1", "ingest-2"):
        assert services[name]["environment"]["HELMET_MQTT_USERNAME"] == "helmet-ingest"
    for name, svc in services.items():
        for key in ("command", "entrypoint"):
            for arg in svc.get(key) or []:
                # Inside the scripts a secret may be written to a file or piped, never passed as an argument.
                assert not re.search(r"-[pP] \"?\$\{?[A-Z_]*PASSWORD", str(arg)), f"{name} {key}: {arg}"
        test = " ".join(map(str, svc.get("healthcheck", {}).get("test", [])))
        assert "PASSWORD" not in test and " -P " not in test, f"{name}'s health check carries a secret"
        for value in (svc.get("environment") or {}).values():
            assert not str(value).startswith("change-me"), name


def test_the_compose_broker_users_and_health_check_work_on_a_real_broker(tmp_path: Path) -> None:
    """broker-users makes helmet-cloud and helmet-ingest (again on a re-run, with new passwords); the health check
    says up without a password, and down when the broker is gone."""
    from support.secure_broker import ADMIN, start_secure_broker
    from support.secure_broker import connects as logs_in

    broker, admin = start_secure_broker(tmp_path)
    try:
        port = str(broker.port)
        users = compose_script("broker-users").replace("-p 1883", f"-p {port}")
        env = {**os.environ, **GOOD, "BROKER_ADMIN_PASSWORD": ADMIN[1], "BROKER_HOST": "127.0.0.1"}
        for round_ in ("first", "again"):
            if round_ == "again":
                env |= {"BROKER_CLOUD_PASSWORD": "cloud-new-0123456789", "BROKER_INGEST_PASSWORD": "ingest-new-012345"}
            done = subprocess.run(["sh", "-c", users], env=env, capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, done.stderr
            assert ADMIN[1] not in done.stdout + done.stderr
            assert logs_in(broker.port, "helmet-cloud", env["BROKER_CLOUD_PASSWORD"], client_id="api-t")
            assert logs_in(broker.port, "helmet-ingest", env["BROKER_INGEST_PASSWORD"], client_id="ingest-t")
        assert not logs_in(broker.port, "helmet-ingest", GOOD["BROKER_INGEST_PASSWORD"], client_id="ingest-t")
        health = compose_script("broker", "healthcheck").replace("-p 1883", f"-p {port}")
        assert subprocess.run(["sh", "-c", health], capture_output=True, timeout=30).returncode == 0
    finally:
        admin.close()
        broker.stop()
    assert subprocess.run(["sh", "-c", health], capture_output=True, timeout=30).returncode != 0


def test_compose_bind_mounts_and_builds_exist() -> None:
    config = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for name, service in config["services"].items():
        build = service.get("build")
        if build:
            assert (ROOT / build["context"] / build["dockerfile"]).is_file(), name
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./") and not source.startswith("./deploy/"):  # deploy/: the operator's certs
                assert (ROOT / source).exists(), f"{name}: {source} does not exist"
    env_example = (ROOT / "hardware" / "compose.env.example").read_text()
    assert set(SECRETS) <= set(re.findall(r"^([A-Z_]+)=", env_example, re.MULTILINE))


@pytest.mark.parametrize("dockerfile", ["cloud/Dockerfile", "edge/Dockerfile"])
def test_dockerfiles_copy_only_files_that_exist(dockerfile: str) -> None:
    text = (ROOT / dockerfile).read_text()
    copies = [line.split()[1:] for line in text.splitlines() if line.startswith("COPY ")]
    assert copies
    for parts in copies:
        if parts[0].startswith("--from="):
            continue
        for source in parts[:-1]:
            assert (ROOT / source).exists(), f"{dockerfile}: COPY {source} does not exist"
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignored and ".git" in ignored
    assert re.search(r"^CMD \[\"helmet-(cloud|edge)\"", text, re.MULTILINE)
    assert re.search(r"^USER (nobody|helmet)$", text, re.MULTILINE), "containers must not run as root"


def test_systemd_unit_restarts_watches_and_is_hardened() -> None:
    unit = (ROOT / "hardware" / "systemd" / "helmet-edge.service").read_text()
    options = dict(line.split("=", 1) for line in unit.splitlines() if "=" in line and not line.startswith(("#", " ")))
    assert options["Type"] == "notify" and int(options["WatchdogSec"]) > 0
    assert options["Restart"] == "always" and options["RestartPreventExitStatus"] == "2"
    assert options["User"] == "helmet" and options["NoNewPrivileges"] == "yes"
    assert options["ProtectSystem"] == "strict" and options["CapabilityBoundingSet"] == ""
    assert "AF_UNIX" in options["RestrictAddressFamilies"]  # sd_notify's datagram socket
    assert options["ExecStart"].split()[1:3] == ["run", "--config"]


def test_bill_of_materials_is_complete_for_six_slots() -> None:
    with (ROOT / "hardware" / "bom.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0])[:4] == ["part", "quantity", "example supplier part", "unit price EUR"]
    for row in rows:
        assert int(row["quantity"]) > 0 and float(row["unit price EUR"]) > 0 and row["example supplier part"]
    by_part = {r["part"].lower(): int(r["quantity"]) for r in rows}

    def count(word: str) -> int:
        return sum(q for part, q in by_part.items() if word in part)

    # One lock, door switch, presence switch, driver, flyback diode and gate pull-down per slot.
    per_slot = ("lock-style solenoid", "door switch", "presence", "n-channel mosfet", "flyback diode", "gate pull-down")
    for word in per_slot:
        assert count(word) == 6, word


def test_the_compose_broker_config_runs_tls_for_lockers_and_refuses_anonymous_clients(tmp_path: Path) -> None:
    """hardware/mosquitto/mosquitto.compose.conf on a real Mosquitto, with only its paths and ports moved."""
    import getpass
    import ssl

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion
    from support.certs import certificates
    from support.secure_broker import PLUGIN
    from support.waiting import eventually

    from helmet_sim.broker import free_port, wait_port

    exe, ctrl = shutil.which("mosquitto") or "/usr/sbin/mosquitto", shutil.which("mosquitto_ctrl")
    if not Path(exe).exists() or ctrl is None or not PLUGIN.exists():
        pytest.skip("mosquitto with its dynamic-security plugin is not installed")
    certificates(tmp_path)
    subprocess.run([ctrl, "dynsec", "init", str(tmp_path / "dynamic-security.json"), "admin", "pw"], check=True)
    tls_port, plain_port = free_port(), free_port()
    conf = (ROOT / "hardware" / "mosquitto" / "mosquitto.compose.conf").read_text()
    conf = (
        conf.replace("/usr/lib/mosquitto_dynamic_security.so", str(PLUGIN))
        .replace("/mosquitto/data/", f"{tmp_path}/")
        .replace("/mosquitto/certs/", f"{tmp_path}/")
        .replace("listener 8883", f"listener {tls_port} 127.0.0.1")
        .replace("listener 1883", f"listener {plain_port} 127.0.0.1")
        .replace("log_dest stdout", f"log_dest file {tmp_path}/mosquitto.log")
    )
    (tmp_path / "mosquitto.conf").write_text(conf + f"user {getpass.getuser()}\n")
    proc = subprocess.Popen([exe, "-c", str(tmp_path / "mosquitto.conf")], stderr=subprocess.PIPE)
    clients: list[mqtt.Client] = []

    def connect(port: int, user: str | None, *, tls: bool) -> list[Any]:
        result: list[Any] = []
        c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"t{len(clients)}")
        if user:
            c.username_pw_set(user, "pw")
        if tls:
            c.tls_set(ca_certs=str(tmp_path / "ca.crt"), tls_version=ssl.PROTOCOL_TLS_CLIENT)
        c.on_connect = lambda _c, _u, _f, rc, _p: result.append(rc)
        c.connect("127.0.0.1", port)
        c.loop_start()
        clients.append(c)
        return result

    try:
        wait_port(tls_port)
        wait_port(plain_port)
        admin, anonymous, stranger = (
            connect(tls_port, "admin", tls=True),
            connect(plain_port, None, tls=False),
            connect(tls_port, "admin-typo", tls=True),
        )
        assert not eventually(lambda: admin)[0].is_failure
        assert eventually(lambda: anonymous)[0].is_failure  # no anonymous access
        assert eventually(lambda: stranger)[0].is_failure
    finally:
        for c in clients:
            c.disconnect()
            c.loop_stop()
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stderr is not None:
            proc.stderr.close()
