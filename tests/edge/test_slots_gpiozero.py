"""The gpiozero slot bank on gpiozero's own mock pins."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from gpiozero.pins.mock import MockFactory, MockPin

from helmet_edge.errors import ConfigError
from helmet_edge.profile import PinProfile, load_profile
from helmet_edge.slots_gpiozero import GpioSlotBank

PI6 = load_profile("pi-gpio-6")


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    f = MockFactory()
    yield f
    f.reset()


@pytest.fixture
def bank(factory: MockFactory) -> Iterator[GpioSlotBank]:
    b = GpioSlotBank(PI6, pin_factory=factory)
    yield b
    b.close()


def pin(factory: MockFactory, name: str) -> MockPin:
    p = factory.pin(name)
    assert isinstance(p, MockPin)
    return p


def variant(**changes: object) -> PinProfile:
    return PinProfile.model_validate(PI6.model_dump() | changes)


def test_every_lock_starts_low_and_is_never_energised_during_start_up(factory: MockFactory, bank: GpioSlotBank) -> None:
    assert bank.slot_count == 6
    for s in PI6.slots:
        lock = pin(factory, s.lock)
        assert lock.function == "output"
        assert lock.state is False
        lock.assert_states([False])  # never went high, not even for an instant
        assert bank.lock_energised(s.slot) is False


def test_set_lock_drives_only_that_slots_pin(factory: MockFactory, bank: GpioSlotBank) -> None:
    bank.set_lock(3, True)
    assert pin(factory, "GPIO16").state is True
    assert bank.lock_energised(3) is True
    assert [bank.lock_energised(n) for n in (1, 2, 4, 5, 6)] == [False] * 5

    bank.set_lock(3, False)
    assert pin(factory, "GPIO16").state is False
    assert bank.lock_energised(3) is False


def test_door_and_presence_read_closed_and_present_when_driven_low(factory: MockFactory, bank: GpioSlotBank) -> None:
    # Pulled up, nothing connected: door open, no helmet.
    assert bank.read()[1] == (False, False)

    pin(factory, "GPIO17").drive_low()  # reed switch closes to GND
    assert bank.read()[1] == (True, False)
    pin(factory, "GPIO27").drive_low()  # IR sensor sees a helmet
    assert bank.read()[1] == (True, True)

    pin(factory, "GPIO17").drive_high()
    assert bank.read()[1] == (False, True)
    assert all(bank.read()[n] == (False, False) for n in (2, 3, 4, 5, 6))
    assert set(bank.read()) == {1, 2, 3, 4, 5, 6}


def test_active_high_sensors_read_closed_when_driven_high(factory: MockFactory) -> None:
    bank = GpioSlotBank(variant(door_closed_level="high", presence_level="high"), pin_factory=factory)
    try:
        pin(factory, "GPIO17").drive_high()
        pin(factory, "GPIO27").drive_low()
        assert bank.read()[1] == (True, False)
        pin(factory, "GPIO17").drive_low()
        pin(factory, "GPIO27").drive_high()
        assert bank.read()[1] == (False, True)
    finally:
        bank.close()


def test_active_low_lock_rests_high_and_energises_low(factory: MockFactory) -> None:
    bank = GpioSlotBank(variant(lock_active_high=False), pin_factory=factory)
    try:
        lock = pin(factory, "GPIO5")
        assert lock.state is True
        assert bank.lock_energised(1) is False
        bank.set_lock(1, True)
        assert lock.state is False
        assert bank.lock_energised(1) is True
    finally:
        bank.close()


def test_close_de_energises_every_lock(factory: MockFactory, bank: GpioSlotBank) -> None:
    locks = [pin(factory, s.lock) for s in PI6.slots]
    for n in (1, 4, 6):
        bank.set_lock(n, True)
    bank.close()
    assert [p.state for p in locks] == [False] * 6
    bank.close()  # a second close (supervisor, finally blocks) is harmless
    assert [p.state for p in locks] == [False] * 6


def test_profile_without_led_or_buzzer_works(factory: MockFactory) -> None:
    bank = GpioSlotBank(variant(led=None, buzzer=None), pin_factory=factory)
    try:
        bank.indicate("accepted")  # nothing to blink: no error
        assert bank.read()[6] == (False, False)
    finally:
        bank.close()


# -- 12 slots on MCP23017 expanders -------------------------------------------------

MCP12 = load_profile("pi-mcp23017-12")


def test_the_12_slot_profile_puts_36_slot_pins_on_three_expanders() -> None:
    assert MCP12.kind == "mcp23017" and len(MCP12.slots) == 12
    assert MCP12.expanders == [0x20, 0x21, 0x22]
    pins = [p for s in MCP12.slots for p in (s.lock, s.door, s.presence)]
    assert len(set(pins)) == 36
    assert MCP12.slots[11].lock == "MCP20:B3" and MCP12.led == "GPIO12"


def test_an_expander_bank_drives_and_reads_slot_12_on_its_expander_pins() -> None:
    from helmet_sim.pins import ExpanderMockFactory

    f = ExpanderMockFactory()
    bank = GpioSlotBank(MCP12, pin_factory=f)
    try:
        assert bank.slot_count == 12
        bank.set_lock(12, True)
        assert f.pin("MCP20:B3").state is True
        assert [bank.lock_energised(n) for n in range(1, 12)] == [False] * 11
        f.pin("MCP21:B3").drive_high()  # the reed switch opens: door open
        f.pin("MCP22:B3").drive_low()  # a helmet in front of the sensor
        assert bank.read()[12] == (False, True)
        assert bank.read()[1] == (False, False)  # pulled up, nothing wired: open and empty
    finally:
        bank.close()
    assert f.pin("MCP20:B3").state is False


def test_an_expander_profile_is_refused_by_a_factory_that_cannot_drive_expander_pins(factory: MockFactory) -> None:
    with pytest.raises(ConfigError, match=r"MCP23017 expanders \(0x20, 0x21, 0x22\)"):
        GpioSlotBank(MCP12, pin_factory=factory)


def test_an_expander_pin_has_no_pull_down() -> None:
    from gpiozero import DigitalInputDevice
    from gpiozero.exc import PinFixedPull

    from helmet_sim.pins import ExpanderMockFactory

    f = ExpanderMockFactory()
    with pytest.raises(PinFixedPull, match="no pull-down"):
        DigitalInputDevice("MCP21:A0", pull_up=False, pin_factory=f)
    DigitalInputDevice("MCP21:A0", pull_up=True, pin_factory=f).close()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"kind": "gpio"}, "kind 'gpio' cannot use expander pins"),
        ({"presence_level": "high"}, "no pull-downs"),
        ({"slots": [{"slot": 1, "lock": "GPIO5", "door": "MCP21:A0", "presence": "MCP22:A0"}]}, "got GPIO5"),
        ({"slots": [{"slot": 1, "lock": "MCP28:A0", "door": "MCP21:A0", "presence": "MCP22:A0"}]}, "got MCP28:A0"),
    ],
)
def test_expander_profiles_that_cannot_be_wired_are_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PinProfile.model_validate(MCP12.model_dump() | changes)
