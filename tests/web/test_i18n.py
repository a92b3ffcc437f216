"""Language choice and the one message catalogue: every message a person can read has a Chinese translation.

Messages are found the way translators' tools find them: Babel's extractors over the templates (Jinja2) and
the Python code (``_``, ``N_``, ``ngettext``, ``PageError``'s message and every cloud error's message).
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
import string
from collections.abc import Iterator
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po

import helmet_cloud
from helmet_cloud import i18n as catalogue
from helmet_cloud.errors import CloudError
from helmet_cloud.http.web import i18n
from helmet_cloud.http.web.render import TEMPLATES

PACKAGE = Path(helmet_cloud.__file__).parent
# Code whose messages people read: the rules, the use cases and the pages (adapters and ingest write logs).
READ_BY_PEOPLE = ("domain", "services", "http", "i18n")
OPTION_LABEL = re.compile(r'\("[a-z_]*", "([^"]+)"\)')


def _error_kinds() -> set[str]:
    for part in READ_BY_PEOPLE:
        package = importlib.import_module(f"helmet_cloud.{part}")
        for module in pkgutil.walk_packages(package.__path__, f"helmet_cloud.{part}."):
            importlib.import_module(module.name)
    kinds: set[str] = set()
    todo = [CloudError]
    while todo:
        kind = todo.pop()
        kinds.add(kind.__name__)
        todo += kind.__subclasses__()
    return kinds


def _python_files() -> Iterator[Path]:
    for part in READ_BY_PEOPLE:
        yield from (PACKAGE / part).rglob("*.py")


def extracted() -> set[str | tuple[str, str]]:
    """Every message id: a string, or (singular, plural) for ``ngettext``."""
    keywords: dict[str, tuple[int, ...] | None] = {"_": None, "N_": None, "ngettext": (1, 2), "PageError": (2,)}
    keywords |= dict.fromkeys(_error_kinds(), (1,))
    found: set[str | tuple[str, str]] = set()
    for path in TEMPLATES.rglob("*.html"):
        template_keywords: dict[str, tuple[int, ...] | None] = {"_": None, "ngettext": (1, 2)}
        for _line, message, _comments, _context in extract_from_file("jinja2", path, keywords=template_keywords):
            found.add(message)
        found |= set(OPTION_LABEL.findall(path.read_text(encoding="utf-8")))
    for path in _python_files():
        for _line, message, _comments, _context in extract_from_file("python", path, keywords=keywords):
            if message:  # an error raised with a variable carries a message defined (and marked) elsewhere
                found.add(message)
    return found


def zh_catalogue() -> dict[str | tuple[str, str], str | tuple[str, ...]]:
    with (catalogue.CATALOGUES / "zh.po").open("rb") as f:
        po = read_po(f)
    return {m.id: m.string for m in po if m.id}


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
    messages = extracted() | set(i18n.DYNAMIC_MESSAGES)
    assert len(messages) > 250  # the extraction found the templates' and the code's messages
    zh = zh_catalogue()
    missing = sorted(str(m) for m in messages if not zh.get(m))
    assert missing == []
    fields = string.Formatter()
    for message in messages:
        english = message if isinstance(message, tuple) else (message,)
        chinese = zh[message] if isinstance(zh[message], tuple) else (zh[message],)
        want = {f for text in english for _, f, _, _ in fields.parse(text) if f}
        for text in chinese:
            assert {f for _, f, _, _ in fields.parse(text) if f} <= want | {"n"}, message
    # Nothing stale: every catalogue entry is still used somewhere.
    assert sorted(str(m) for m in set(zh) - messages) == []


def test_refusals_are_raised_with_their_fields_apart_so_pages_can_translate_them() -> None:
    """An f-string message cannot be looked up in the catalogue: the refusal would reach a Chinese page in English."""
    kinds = _error_kinds()
    offenders = []
    for path in _python_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in kinds):
                continue
            if node.args and isinstance(node.args[0], ast.JoinedStr):
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert offenders == []


def test_plurals_follow_each_languages_rule() -> None:
    en = catalogue.translator("en")
    zh = catalogue.translator("zh")
    assert en.ngettext("{n} free slot", "{n} free slots", 1) == "1 free slot"
    assert en.ngettext("{n} free slot", "{n} free slots", 0) == "0 free slots"
    assert en.ngettext("{n} free slot", "{n} free slots", 2) == "2 free slots"
    assert zh.ngettext("{n} free slot", "{n} free slots", 1) == "1 个空闲格口"
    assert zh.ngettext("{n} free slot", "{n} free slots", 5) == "5 个空闲格口"


def test_a_refusal_reads_in_chinese_with_its_numbers() -> None:
    from helmet_cloud.errors import InvalidError
    from helmet_cloud.http.web.render import shown

    error = InvalidError("at most {most} helmets per pass", most=4)
    assert str(error) == "at most 4 helmets per pass"  # the API's English detail
    assert shown(catalogue.translator("zh"), error) == "每个借用码最多 4 个头盔"
