"""Phone numbers as residents type them, made into the one form accounts are keyed by."""

from __future__ import annotations

import re

from helmet_cloud.errors import InvalidError


def phone_number(text: str) -> str:
    """Digits with an optional leading ``+``; spaces, dots, dashes and brackets dropped."""
    digits = re.sub(r"[\s().-]", "", text)
    if not re.fullmatch(r"\+?[0-9]{6,15}", digits):
        raise InvalidError("enter a phone number, e.g. +41 79 123 45 67")
    return digits
