"""SlotBank on gpiozero devices; the pin factory is always injected.

A profile of kind ``mcp23017`` names expander pins (``MCP20:A0``). The bank
drives them through the same gpiozero devices, so it needs a pin factory that
knows those names (one that sets ``expander_pins = True``): the simulator's
``ExpanderMockFactory`` does; on a Pi that is an adapter factory over I2C,
which this package does not ship yet (docs/simulation.md).
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping
from importlib.metadata import entry_points

from gpiozero import LED, Buzzer, DigitalInputDevice, DigitalOutputDevice, Factory
from gpiozero.exc import PinFactoryFallback

from helmet_edge.errors import ConfigError
from helmet_edge.profile import PinProfile

log = logging.getLogger(__name__)

# (on, off) seconds and repetitions per feedback; None means steady off.
_PATTERNS: dict[str, tuple[float, float, int]] = {
    "accepted": (0.15, 0.05, 2),
    "slot_open": (0.5, 0.1, 1),
    "rejected": (0.08, 0.08, 4),
    "fault": (0.3, 0.3, 3),
    "maintenance": (1.0, 0.2, 1),
    "maintenance_end": (1.0, 0.3, 2),
}


def pin_factory(name: str | None = None) -> Factory:
    """The gpiozero pin factory to drive the slots with: ``name`` (the config's ``pin_factory``), else
    ``GPIOZERO_PIN_FACTORY``, else the first of lgpio, rpigpio, pigpio and native that loads.

    Raises :class:`ConfigError` with one line saying what failed and what to do, instead of gpiozero's
    warnings and traceback on a machine without GPIO. A fallback that did load is logged, one line each.
    """
    from gpiozero import Device

    source, chosen = ("pin_factory", name) if name else ("GPIOZERO_PIN_FACTORY", os.environ.get("GPIOZERO_PIN_FACTORY"))
    with warnings.catch_warnings(record=True) as fallbacks:
        warnings.simplefilter("always", PinFactoryFallback)
        try:
            if chosen is None:
                Device.ensure_pin_factory()  # gpiozero's own search, as on the first device it makes
                factory: Factory = Device.pin_factory
            else:
                found = [ep for ep in entry_points(group="gpiozero_pin_factories") if ep.name == chosen.lower()]
                if not found:
                    known = ", ".join(sorted(ep.name for ep in entry_points(group="gpiozero_pin_factories")))
                    raise ConfigError(f"{source} {chosen!r} is not a gpiozero pin factory (known: {known})")
                factory = found[0].load()()
        except ConfigError:
            raise
        except Exception as exc:
            tried = "; ".join(_fallback_text(w) for w in fallbacks if issubclass(w.category, PinFactoryFallback))
            what = f"{source} {chosen!r} failed: {exc}" if chosen else f"no GPIO pin factory loads ({tried})"
            raise ConfigError(
                f"{what}. On a Raspberry Pi install python3-lgpio (docs/edge.md); on another machine run a "
                'simulated locker with `helmet-sim locker`, or set pin_factory = "mock" in the config '
                "(no hardware: nothing opens)"
            ) from None
    for w in fallbacks:  # it works, but not on the factory first tried: say so, or odd pin behaviour is a riddle
        if issubclass(w.category, PinFactoryFallback):
            log.warning("GPIO: %s", w.message)
    return factory


def _fallback_text(w: warnings.WarningMessage) -> str:
    return str(w.message).removeprefix("Falling back from ")


class GpioSlotBank:
    """Locks as outputs (never energised at start), sensors as pulled-up inputs."""

    def __init__(self, profile: PinProfile, *, pin_factory: Factory) -> None:
        if profile.kind == "mcp23017" and not getattr(pin_factory, "expander_pins", False):
            raise ConfigError(
                f"pin profile {profile.name} puts slots on MCP23017 expanders "
                f"({', '.join(hex(a) for a in profile.expanders)}); this pin factory cannot drive them"
            )
        self.slot_count = len(profile.slots)
        self.pin_factory = f = pin_factory  # never gpiozero's global default: the composition root chooses
        self._locks: dict[int, DigitalOutputDevice] = {}
        self._doors: dict[int, DigitalInputDevice] = {}
        self._present: dict[int, DigitalInputDevice] = {}
        for s in profile.slots:
            self._locks[s.slot] = DigitalOutputDevice(
                s.lock, active_high=profile.lock_active_high, initial_value=False, pin_factory=f
            )
            self._doors[s.slot] = DigitalInputDevice(s.door, pull_up=profile.door_closed_level == "low", pin_factory=f)
            self._present[s.slot] = DigitalInputDevice(
                s.presence, pull_up=profile.presence_level == "low", pin_factory=f
            )
        self._led = LED(profile.led, pin_factory=f) if profile.led else None
        self._buzzer = Buzzer(profile.buzzer, pin_factory=f) if profile.buzzer else None

    def read(self) -> Mapping[int, tuple[bool, bool]]:
        return {n: (bool(self._doors[n].value), bool(self._present[n].value)) for n in self._locks}

    def set_lock(self, slot: int, energised: bool) -> None:
        if energised:
            self._locks[slot].on()
        else:
            self._locks[slot].off()

    def lock_energised(self, slot: int) -> bool:
        return bool(self._locks[slot].value)

    def indicate(self, feedback: str) -> None:
        pattern = _PATTERNS.get(feedback)
        if pattern is None:
            return
        on, off, n = pattern
        for device in (self._led, self._buzzer):
            if device is not None:
                device.blink(on_time=on, off_time=off, n=n, background=True)

    def close(self) -> None:
        # Locks first, de-energised, so that nothing opens while we shut down.
        # Idempotent, like gpiozero's own close(): a second call must not raise.
        for lock in self._locks.values():
            if not lock.closed:
                lock.off()
            lock.close()
        for dev in [*self._doors.values(), *self._present.values(), self._led, self._buzzer]:
            if dev is not None:
                dev.close()
