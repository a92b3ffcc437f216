"""gpiozero mock pins for every pin a profile can name, MCP23017 expander pins included.

gpiozero's :class:`MockFactory` knows only the Pi's own header. A 12-slot
locker (profile kind ``mcp23017``) names its slot pins ``MCP20:A0`` etc.; this
factory adds those to the board it pretends to be, so the edge's unchanged
:class:`~helmet_edge.slots_gpiozero.GpioSlotBank` drives them like any pin.
An expander pin has a pull-up but no pull-down, as on the real chip.

What is simulated: the pins and their levels. The I2C traffic a real
MCP23017 needs (register writes, polling GPIOA/GPIOB) is not; on a Pi that is
the job of an adapter pin factory (see docs/simulation.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from gpiozero.exc import PinFixedPull
from gpiozero.pins import PinInfo
from gpiozero.pins.mock import MockFactory, MockPin

from helmet_edge.profile import EXPANDER_PIN, expander_pin


class ExpanderMockPin(MockPin):  # type: ignore[misc]
    """An MCP23017 GPIO: an input can float or be pulled up (100 kOhm), never down."""

    def __repr__(self) -> str:
        return next(iter(self.info.names))  # type: ignore[no-any-return]

    def _set_pull(self, value: str) -> None:
        if value == "down":
            raise PinFixedPull(f"{self!r}: an MCP23017 has no pull-down resistors")
        super()._set_pull(value)


class _Board:
    """The mock Pi's board info, plus any ``MCPxx:Yn`` pin asked for."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self._pins: dict[str, PinInfo] = {}

    def info(self, name: str) -> PinInfo:
        found = self._pins.get(name)
        if found is None:
            address, port, bit = expander_pin(name) or (0, "A", 0)
            number = 1000 + (address - 0x20) * 16 + (8 if port == "B" else 0) + bit
            found = PinInfo(
                number=number,
                name=f"GPIO{number}",  # gpiozero's PiPin parses its number out of a GPIO name
                names=frozenset({name}),
                pull="",
                row=(8 if port == "B" else 0) + bit + 1,
                col=1,
                interfaces=frozenset({"gpio"}),
            )
            self._pins[name] = found
        return found

    def find_pin(self, name: object) -> Iterator[tuple[str, PinInfo]]:
        if isinstance(name, str) and EXPANDER_PIN.match(name):
            yield f"MCP{name[3:5]}", self.info(name)
        else:
            yield from self._inner.find_pin(name)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._inner, attr)


class ExpanderMockFactory(MockFactory):  # type: ignore[misc]
    """A :class:`MockFactory` that also accepts MCP23017 pin names."""

    expander_pins = True  # what GpioSlotBank checks before it drives an ``mcp23017`` profile

    def __init__(self, revision: str | None = None, pin_class: Any = None) -> None:
        super().__init__(revision, pin_class)
        self._board = _Board(super()._get_board_info())

    def _get_board_info(self) -> Any:
        return self._board

    def pin(self, name: Any, pin_class: Any = None, **kwargs: Any) -> Any:
        if isinstance(name, str) and EXPANDER_PIN.match(name) and pin_class is None:
            pin_class = ExpanderMockPin
        return super().pin(name, pin_class, **kwargs)
