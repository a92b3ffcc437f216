"""Phone numbers as residents type them, made into the one form accounts are keyed by: E.164.

``0780000005``, ``078 000 00 05``, ``0041 78 000 00 05`` and ``+41 78 000 00 05`` are one number in a Swiss
town, ``+41780000005``: the `phonenumbers` library (Google's libphonenumber data) reads what was typed with the
town's region for numbers without a country code. A number the library does not know as valid there, or whose
type cannot receive a text message (a fixed line, a toll-free or premium number, a pager), is refused with an
example of a mobile number in that region: a sign-in code could never reach it.
"""

from __future__ import annotations

import phonenumbers
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from helmet_cloud.errors import InvalidError

# What people type is short; anything longer is not a phone number (the library reads at most 250 characters).
MAX_TYPED = 40
# Types that can receive SMS, or where the library cannot tell (a US number is fixed line or mobile).
TEXTABLE = frozenset(
    {
        PhoneNumberType.MOBILE,
        PhoneNumberType.FIXED_LINE_OR_MOBILE,
        PhoneNumberType.PERSONAL_NUMBER,
        PhoneNumberType.VOIP,
        PhoneNumberType.UNKNOWN,
    }
)
DEFAULT_REGION = "CH"


class PhoneRefusedError(InvalidError):
    """Not a number a code can be texted to; ``reason`` says which rule it broke (for the log)."""

    def __init__(self, message: str, /, *, reason: str, region: str, **fields: object) -> None:
        super().__init__(message, **fields)
        self.reason = reason
        self.region = region


def is_region(region: str) -> bool:
    """An ISO 3166 alpha-2 code the library has numbering data for (``CH``, ``DE``, ``CN``)."""
    return region in phonenumbers.SUPPORTED_REGIONS


def example(region: str) -> str:
    """A mobile number of ``region`` as people write it internationally: ``+41 78 123 45 67``."""
    number = phonenumbers.example_number_for_type(region, PhoneNumberType.MOBILE)
    if number is None:
        number = phonenumbers.example_number(region)
    return "" if number is None else phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)


def phone_number(text: str, region: str = DEFAULT_REGION) -> str:
    """The E.164 form (``+41780000005``) of a number typed in any local or international form, read with
    ``region`` when it has no country code (``00`` and ``+`` prefixes, spaces, dots, dashes and brackets all
    fine); :class:`PhoneRefusedError` if it is not a valid number there or cannot receive a text."""
    if not is_region(region):
        raise ValueError(f"{region!r} is not a region with phone numbering data (ISO 3166 alpha-2, e.g. CH)")
    shown = example(region)
    try:
        number = phonenumbers.parse(text, region) if len(text) <= MAX_TYPED else None
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        raise PhoneRefusedError(
            "This is not a phone number: enter your mobile number, e.g. {example}",
            reason="not a valid number",
            region=region,
            example=shown,
        )
    if phonenumbers.number_type(number) not in TEXTABLE:
        raise PhoneRefusedError(
            "This number cannot receive text messages: enter a mobile number, e.g. {example}",
            reason="cannot receive SMS",
            region=region,
            example=shown,
        )
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def masked(phone: str) -> str:
    """A number as the log shows it: enough to tell numbers apart, not enough to call."""
    return f"{phone[:-4]}XXXX"
