from __future__ import annotations

import pytest

from helmet_protocol.errors import ProtocolError
from helmet_protocol.stickers import helmet_url, parse_helmet_url


def test_sticker_url_round_trips() -> None:
    url = helmet_url("helmets.example.org", "H-00042")
    assert url == "https://helmets.example.org/h/H-00042"
    assert parse_helmet_url(url, host="helmets.example.org") == "H-00042"


@pytest.mark.parametrize(
    "text",
    [
        "http://helmets.example.org/h/H-1",
        "https://evil.example.com/h/H-1",
        "https://helmets.example.org/h/../x",
        "https://helmets.example.org/h/H-1?open=all",
        "https://helmets.example.org/s/ST-1",
        "H-1",
        "",
    ],
)
def test_other_urls_are_not_helmets(text: str) -> None:
    with pytest.raises(ProtocolError):
        parse_helmet_url(text, host="helmets.example.org")
