"""Pin profiles: which pin drives which slot's lock and reads its sensors.

Two kinds. ``gpio``: every pin is one of the Pi's own GPIOs (``GPIO17``); the
40-pin header has ~26 usable ones, enough for 6 slots of lock + door +
presence plus the LED and buzzer. ``mcp23017``: slot pins live on MCP23017
I2C port expanders (16 pins each) and are named ``MCP<addr>:<port><bit>``,
e.g. ``MCP20:A0`` is bit 0 of port A on the chip at I2C address 0x20. The LED
and buzzer stay on Pi GPIOs. An MCP23017 has pull-ups but no pull-downs, so
its sensors must pull their line low when active.
"""

from __future__ import annotations

import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from helmet_edge.errors import ConfigError

EXPANDER_PIN = re.compile(r"^MCP(2[0-7]):([AB])([0-7])$")


def expander_pin(name: str) -> tuple[int, str, int] | None:
    """``MCP21:B3`` -> ``(0x21, "B", 3)``; ``None`` for a pin that is not on an expander."""
    m = EXPANDER_PIN.match(name)
    return (int(m.group(1), 16), m.group(2), int(m.group(3))) if m else None


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
    kind: Literal["gpio", "mcp23017"] = "gpio"
    i2c_bus: int = Field(default=1, ge=0, le=10)
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
        slot_pins = [p for s in self.slots for p in (s.lock, s.door, s.presence)]
        on_expander = [p for p in slot_pins if expander_pin(p)]
        if self.kind == "gpio" and on_expander:
            raise ValueError(f"kind 'gpio' cannot use expander pins ({on_expander[0]}); set kind = 'mcp23017'")
        if self.kind == "mcp23017":
            stray = [p for p in slot_pins if not expander_pin(p)]
            if stray:
                raise ValueError(f"kind 'mcp23017' wants every slot pin as MCP<20-27>:<A|B><0-7>, got {stray[0]}")
            if "high" in (self.door_closed_level, self.presence_level):
                raise ValueError("an MCP23017 has no pull-downs: door_closed_level and presence_level must be 'low'")
        return self

    @property
    def expanders(self) -> list[int]:
        """I2C addresses of the port expanders this profile uses, in order."""
        pins = [expander_pin(p) for s in self.slots for p in (s.lock, s.door, s.presence)]
        return sorted({p[0] for p in pins if p is not None})


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
