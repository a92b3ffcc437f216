"""Language choice and the Chinese catalog: every message a page can show has a translation."""

from __future__ import annotations

import re
import string

import pytest

from helmet_cloud.http.web import i18n
from helmet_cloud.http.web.render import TEMPLATES

LITERAL = re.compile(r"""_\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')\s*[,)]""")
OPTION_LABEL = re.compile(r'\("[a-z_]*", "([^"]+)"\)')
PAGE_ERROR = re.compile(r'PageError\(\s*[\w.]+,\s*"([^"]+)"')


def template_messages() -> set[str]:
    found: set[str] = set()
    for path in TEMPLATES.rglob("*.html"):
        text = path.read_text(encoding="utf-8")
        found |= {a or b for a, b in LITERAL.findall(text)}
        found |= set(OPTION_LABEL.findall(text))
    for path in TEMPLATES.parent.glob("*.py"):  # page errors are rendered through _()
        found |= set(PAGE_ERROR.findall(path.read_text(encoding="utf-8")))
    return found


@pytest.mark.parametrize(
    ("header", "want"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh"),
        ("en-GB,en;q=0.9,zh-CN;q=0.8", "en"),
        ("de-CH, zh-Hans;q=0.5, en;q=0.4", "zh"),
        ("fr, en;q=0.1, zh;q=0.2", "zh"),
        ("zh;q=0, en", "en"),
        ("de, fr", None),
        ("", None),
        ("zh;q=bogus, en;q=0.3", "en"),
    ],
)
def test_the_browsers_most_preferred_supported_language_wins(header: str, want: str | None) -> None:
    assert i18n.parse_accept_language(header) == want


def test_a_link_beats_the_remembered_choice_which_beats_the_browser() -> None:
    assert i18n.negotiate("en", "zh", "zh-CN") == "en"
    assert i18n.negotiate(None, "zh", "en") == "zh"
    assert i18n.negotiate("xx", "yy", "zh-TW") == "zh"  # unknown values are ignored, not trusted
    assert i18n.negotiate(None, None, "de") == "en"


def test_every_message_has_a_chinese_translation_with_the_same_fields() -> None:
    messages = template_messages() | set(i18n.DYNAMIC_MESSAGES)
    assert len(messages) > 150  # the extraction found the templates' messages
    zh = i18n.catalog("zh")
    missing = sorted(m for m in messages if m not in zh)
    assert missing == []
    fields = string.Formatter()
    for message in messages:
        want = {f for _, f, _, _ in fields.parse(message) if f}
        got = {f for _, f, _, _ in fields.parse(zh[message]) if f}
        assert got == want, message
    # Nothing stale: every catalog entry is still used somewhere.
    assert sorted(set(zh) - messages) == []
