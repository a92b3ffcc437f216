"""Pin profiles: which GPIO drives which slot's lock and reads its sensors."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from helmet_edge.errors import ConfigError


class SlotPins(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    slot: int = Field(ge=1, le=256)
    lock: str
    door: str
    presence: str


class PinProfile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    lock_active_high: bool = True
    door_closed_level: Literal["low", "high"] = "low"
    presence_level: Literal["low", "high"] = "low"
    led: str | None = None
    buzzer: str | None = None
    slots: list[SlotPins] = Field(min_length=1)

    @model_validator(mode="after")
    def _distinct(self) -> PinProfile:
        numbers = [s.slot for s in self.slots]
        if numbers != list(range(1, len(numbers) + 1)):
            raise ValueError(f"slots must be numbered 1..{len(numbers)} in order, got {numbers}")
        pins = [p for s in self.slots for p in (s.lock, s.door, s.presence)] + [p for p in (self.led, self.buzzer) if p]
        dupes = sorted({p for p in pins if pins.count(p) > 1})
        if dupes:
            raise ValueError(f"pins used twice: {', '.join(dupes)}")
        return self


def load_profile(name_or_path: str) -> PinProfile:
    """A bundled profile by name (``pi-gpio-6``) or a TOML file by path."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        try:
            text, source = path.read_text(), str(path)
        except OSError as exc:  # a mistyped path must read as a config error, not a traceback
            raise ConfigError(f"pin profile {path}: {exc.strerror or exc}") from None
    else:
        res = resources.files("helmet_edge") / "profiles" / f"{name_or_path}.toml"
        if not res.is_file():
            raise ConfigError(f"unknown pin profile {name_or_path!r}")
        text, source = res.read_text(), f"profile {name_or_path}"
    try:
        return PinProfile.model_validate(tomllib.loads(text))
    except (tomllib.TOMLDecodeError, ValidationError) as exc:
        raise ConfigError(f"{source}: {exc}") from None
