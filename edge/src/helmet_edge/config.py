"""Locker configuration: a TOML file, overridable from the environment.

Unknown keys fail loudly (``extra="forbid"``), so a typo never silently falls
back to a default. Environment variables use the prefix ``HELMET_EDGE_`` and
``__`` between levels: ``HELMET_EDGE_MQTT__HOST=broker.town.example``.

An enrolled Pi also has ``{data_dir}/enrolment/bundle.json`` (``helmet-edge
enroll``): it supplies the locker id, broker, credentials, pass keys and pin
profile, and wins over the TOML file (the environment still wins over both).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from helmet_edge.errors import ConfigError
from helmet_protocol.messages import LockerId


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MqttSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password: str | None = Field(default=None, repr=False)
    tls: bool = False
    ca_file: Path | None = None
    keepalive: int = Field(default=30, ge=5, le=600)
    # Publish at most this many events before the cloud acknowledges them.
    window: int = Field(default=200, ge=1, le=10_000)
    # Send unacknowledged events again after this long without progress.
    resend_after_s: float = Field(default=30.0, gt=0)
    # Republish the retained status this often, so the cloud can tell a silent locker from a quiet one.
    status_interval_s: float = Field(default=60.0, gt=0)
    # Commands older than this (by their ts) are refused: a queued remote unlock must not fire hours later.
    command_max_age_s: float = Field(default=60.0, gt=0)
    # While the broker is away, reconnect after 1 s, then waits doubling up to this.
    reconnect_max_s: int = Field(default=30, ge=1, le=600)

    @field_validator("password")
    @classmethod
    def _not_the_example(cls, value: str | None) -> str | None:
        if value is not None and value.startswith("change-me"):
            raise ValueError("is the example's placeholder: enrol the Pi (helmet-edge enroll) or set the real one")
        return value


class CameraSettings(_Section):
    # A V4L2 index (0 for /dev/video0), a device path, or a GStreamer pipeline string.
    device: int | str = 0
    width: int = 640
    height: int = 480
    fps: float = Field(default=15.0, gt=0, le=60)

    @field_validator("device", mode="before")
    @classmethod
    def _index(cls, value: object) -> object:
        # From the environment every value is a string: "0" means /dev/video0, not a file named 0.
        return int(value) if isinstance(value, str) and value.isdigit() else value


class TimingSettings(_Section):
    unlock_timeout_s: float = Field(default=20.0, gt=0)
    door_open_fault_s: float = Field(default=90.0, gt=0)
    debounce_ms: float = Field(default=50.0, ge=0)
    repeat_window_s: float = Field(default=4.0, ge=0)
    maintenance_s: float = Field(default=300.0, gt=0)
    poll_hz: float = Field(default=50.0, gt=0, le=1000)


class PassSettings(_Section):
    # Bootstrap keys {kid: base64 public key}; the cloud's retained config replaces them.
    keys: dict[str, str] = Field(default_factory=dict)
    max_quantity: int = Field(default=4, ge=1, le=16)
    skew_s: float = Field(default=120.0, ge=0, le=3600)
    helmet_url_host: str | None = None


Language = Literal["zh-CN", "en"]


class FaceSettings(_Section):
    """The kiosk page on the locker's screen (``face_http.py``), on loopback only."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=8088, ge=0, le=65535)  # 0: a free port (the simulator's lockers)
    language: Language = "zh-CN"  # the town's default; a resident's touch on the toggle lasts language_reset_s
    language_reset_s: float = Field(default=60.0, gt=0)
    # A door left open this long gets a reminder on the screen and in the voice (and again every repeat).
    door_reminder_s: float = Field(default=20.0, gt=0)
    door_reminder_repeat_s: float = Field(default=30.0, gt=0)
    # How long a result ("归还成功", a refusal) stays before the idle screen returns.
    result_s: float = Field(default=8.0, gt=0)

    @field_validator("host")
    @classmethod
    def _loopback(cls, value: str) -> str:
        if value not in ("127.0.0.1", "::1", "localhost"):
            raise ValueError("must be a loopback address: the locker's face is for its own screen only")
        return value


class VoiceSettings(_Section):
    """Voice prompts through ALSA (``speaker_alsa.py``)."""

    enabled: bool = True
    device: str = Field(default="default", pattern=r"^[A-Za-z0-9_:=,.-]{1,128}$")  # an ALSA PCM, as aplay -L lists
    volume: float = Field(default=0.8, ge=0, le=1)
    # Local time (the Pi's zone) when the voice is quieter: "22:00-07:00"; "" for never.
    quiet_hours: str = Field(default="22:00-07:00", pattern=r"^$|^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$")
    quiet_volume: float = Field(default=0.3, ge=0, le=1)  # 0 mutes the quiet hours


class EdgeSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="HELMET_EDGE_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    # Settings from the installed enrolment bundle (see load_settings); not a field.
    enrolled: ClassVar[dict[str, Any] | None] = None

    locker_id: LockerId
    data_dir: Path = Path("/var/lib/helmet-edge")
    pin_profile: str = "pi-gpio-6"
    # gpiozero's pin factory: lgpio, rpigpio, pigpio, native, or mock (no hardware, a dry run where nothing
    # opens). Unset: GPIOZERO_PIN_FACTORY, else the first that loads (lgpio, rpigpio, pigpio, native).
    pin_factory: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    fw: str = "helmet-edge 0.1.0"
    mqtt: MqttSettings = MqttSettings()
    camera: CameraSettings = CameraSettings()
    timing: TimingSettings = TimingSettings()
    passes: PassSettings = PassSettings()
    face: FaceSettings = FaceSettings()
    voice: VoiceSettings = VoiceSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = settings_cls.model_config.get("toml_file")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        enrolled = getattr(settings_cls, "enrolled", None)
        if enrolled:
            sources.append(InitSettingsSource(settings_cls, init_kwargs=enrolled))
        if toml_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file))
        return tuple(sources)


def load_settings(path: Path | None = None, **overrides: Any) -> EdgeSettings:
    """Read ``path`` (TOML), then the environment, then ``overrides``; explain any error."""
    if path is not None and not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    config = (
        SettingsConfigDict(**{**EdgeSettings.model_config, "toml_file": path}) if path else EdgeSettings.model_config
    )
    cls: type[EdgeSettings] = type(
        "FileEdgeSettings", (EdgeSettings,), {"model_config": config, "enrolled": _enrolled(path, overrides)}
    )
    try:
        return cls(**overrides)
    except ValidationError as exc:
        text = path.read_text() if path is not None else ""
        lines = []
        for e in exc.errors():
            loc = [str(p) for p in e["loc"]]
            line = _line_of(text, loc)
            where = f"{path}:{line}" if path is not None and line else (str(path) if path else "config")
            lines.append(f"{where}: {'.'.join(loc)}: {e['msg']}")
        raise ConfigError("\n".join(lines)) from None
    except ValueError as exc:  # TOML syntax errors carry the line and column
        raise ConfigError(f"config {path}: {exc}") from None


def configured_data_dir(path: Path | None, overrides: dict[str, Any] | None = None) -> Path:
    """``data_dir`` as the overrides, the environment or the file say, without needing a valid config."""
    data_dir = (overrides or {}).get("data_dir") or os.environ.get("HELMET_EDGE_DATA_DIR")
    if data_dir is None and path is not None:
        try:
            data_dir = tomllib.loads(path.read_text()).get("data_dir")
        except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError):
            data_dir = None  # the settings' own parse reports it
    default: Path = EdgeSettings.model_fields["data_dir"].default
    return Path(data_dir) if data_dir else default


def _enrolled(path: Path | None, overrides: dict[str, Any]) -> dict[str, Any] | None:
    """The installed bundle's settings, from the data_dir that the overrides, environment or file name."""
    from helmet_edge.enroll import EnrolError, installed, settings_from

    folder = configured_data_dir(path, overrides)
    try:
        bundle = installed(folder)
    except EnrolError as exc:
        raise ConfigError(str(exc)) from None
    return settings_from(bundle, folder) if bundle is not None else None


def _line_of(text: str, loc: list[str]) -> int | None:
    """The line of ``section.key`` in a TOML text, or of its section, so the error points at what to fix."""
    section: list[str] = []
    section_line = None
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line.startswith("[") and line.endswith("]"):
            section = [p.strip().strip('"') for p in line.strip("[]").split(".")]
            if section == loc[:-1]:
                section_line = n
            continue
        key, sep, _ = line.partition("=")
        if sep and section == loc[:-1] and key.strip().strip('"') == loc[-1]:
            return n
    return section_line
