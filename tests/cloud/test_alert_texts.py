"""Alert texts written for people: a template and its fields, shown in the reader's language (issue 17, finding 9).

The English text stays in ``Alert.message`` for the API and webhooks; pages fill the template from the
catalogue. Codes are words (helmet_cloud.domain.words), each vocabulary complete for its enum.
"""

from __future__ import annotations

import json
import string
from collections.abc import Iterator
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

import pytest
from sqlmodel import Session
from support.alerting import Town

from helmet_cloud import i18n
from helmet_cloud.adapters.database import make_engine, migrate
from helmet_cloud.domain import alert_texts, words
from helmet_cloud.domain.alert_texts import AlertText, fill
from helmet_cloud.http.web import alert_view
from helmet_cloud.models import Alert, Station
from helmet_cloud.services.alerts import AlertPublic, station_names
from helmet_cloud.settings import CloudSettings

# One example of each template's fields, as the checks store them.
EXAMPLES = {
    alert_texts.STATION_EMPTY: {"station": "Town hall"},
    alert_texts.STATION_LOW: {"station": "Town hall", "helmets": 1, "low": 2},
    alert_texts.STATION_FULL_NONE: {"station": "Town hall", "slots": 6},
    alert_texts.STATION_FULL_FEW: {"station": "Town hall", "free": 1, "slots": 6},
    alert_texts.LOCKER_DROPPED: {"locker": "LK-0001", "station": "Town hall"},
    alert_texts.LOCKER_SILENT: {"locker": "LK-0001", "station": "Town hall", "last_at": "2026-12-02T03:27:00+00:00"},
    alert_texts.DOOR_AJAR: {"station": "Town hall", "locker": "LK-0001", "slot": 3},
    alert_texts.SLOT_FAULT: {"station": "Town hall", "locker": "LK-0001", "slot": 3, "fault": "lock_jammed"},
    alert_texts.OVERUSED: {"resident": "R-1", "quantity": 1, "taken": 2, "where": "LK-0001 (1), LK-0002 (1)"},
    alert_texts.FORGED_PASSES: {"locker": "LK-0001", "count": 5, "minutes": 10, "reasons": {"bad_signature": 5}},
    alert_texts.HELMET_OVERDUE: {
        "helmet": "H-1",
        "resident": "R-1",
        "station": "Town hall",
        "borrowed_at": "2026-12-02T03:27:00+00:00",
    },
    alert_texts.HELMET_MISSING: {
        "helmet": "H-1",
        "resident": alert_texts.UNKNOWN_RESIDENT,
        "station": "Town hall",
        "borrowed_at": "2026-12-02T03:27:00+00:00",
    },
    alert_texts.HELMET_LOST: {
        "helmet": "H-1",
        "resident": "R-1",
        "station": "Town hall",
        "borrowed_at": "2026-12-02T03:27:00+00:00",
    },
    alert_texts.HELMET_FOUND: {
        "helmet": "H-1",
        "station": "Library",
        "lost_at": "2026-11-02T03:27:00+00:00",
        "returned_at": "2026-12-02T03:27:00+00:00",
    },
    alert_texts.HELMET_FOUND_SOMEWHERE: {
        "helmet": "H-1",
        "lost_at": "2026-11-02T03:27:00+00:00",
        "returned_at": "2026-12-02T03:27:00+00:00",
    },
    alert_texts.HELMET_RETIRED: {"helmet": "H-1", "locker": "LK-0001", "slot": 2},
}


@pytest.fixture
def town(database_url: str, tmp_path: Path) -> Iterator[Town]:
    settings = CloudSettings(database_url=database_url, data_dir=tmp_path / "cloud")
    migrate(settings.database_url)
    engine = make_engine(settings.database_url)
    yield Town(engine, settings)
    engine.dispose()


def zh(message: str) -> str:
    return i18n.translator("zh")._(message)


def test_every_template_has_an_example_and_fills_in_english_and_chinese_without_a_field_left() -> None:
    assert set(EXAMPLES) == set(alert_texts.TEMPLATES)
    for template, params in EXAMPLES.items():
        english = fill(template, params)
        chinese = fill(template, params, zh, lambda iso: iso[:16])
        for text in (english, chinese):
            assert "{" not in text and "}" not in text, text
        assert chinese != english and any("\u4e00" <= ch <= "\u9fff" for ch in chinese), template
        names = {f for _, f, _, _ in string.Formatter().parse(template) if f}
        assert names == set(params), template


def test_the_numbers_and_words_read_as_people_say_them() -> None:
    full = fill(alert_texts.STATION_FULL_NONE, EXAMPLES[alert_texts.STATION_FULL_NONE])
    assert full == "No free slot at Town hall: returns may find no room (all 6 slots hold a helmet)"
    jammed = fill(alert_texts.SLOT_FAULT, EXAMPLES[alert_texts.SLOT_FAULT])
    assert jammed == "Slot fault at Town hall: locker LK-0001, slot 3: lock jammed"
    forged = fill(alert_texts.FORGED_PASSES, EXAMPLES[alert_texts.FORGED_PASSES], zh)
    assert "签名无效 (5)" in forged and "bad_signature" not in forged
    overdue = fill(alert_texts.HELMET_OVERDUE, EXAMPLES[alert_texts.HELMET_OVERDUE])
    assert overdue.endswith("on 2026-12-02 03:27 UTC")


def test_a_full_station_alert_stores_its_template_and_numbers_and_keeps_english_for_the_api(town: Town) -> None:
    a = "LK-000A"
    town.feed(*[town.next(a, 0, "helmet.stocked", slot=n, helmet_id=f"H-{n}") for n in (1, 2, 3, 4)])
    [alert] = town.alerts("station_full")
    assert alert.template == alert_texts.STATION_FULL_NONE
    assert json.loads(alert.params or "") == {"station": "Station A", "station_id": "ST-A", "slots": 4}
    assert alert.message == "No free slot at Station A: returns may find no room (all 4 slots hold a helmet)"
    assert AlertPublic.of(alert).message == alert.message  # webhooks and API clients read English
    chinese = alert_view.text(alert, zh, lambda t: f"{t:%m-%d %H:%M}")
    assert chinese == "Station A 没有空闲格口：归还的头盔可能放不进去（全部 4 个格口都有头盔）"  # noqa: RUF001
    named = alert_view.text(alert, zh, str, {"ST-A": "甲站"})  # the station's Chinese name, where it has one
    assert named.startswith("甲站 没有空闲格口")


def test_an_alert_from_before_templates_shows_its_stored_text(town: Town) -> None:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    old = Alert(
        kind="station_low",
        severity="info",
        subject_type="station",
        subject_id="ST-A",
        message="Station A (ST-A) is nearly empty: 1 helmet(s) left",
        opened_at=now,
        last_seen_at=now,
    )
    with Session(town.engine) as s:
        s.add(old)
        s.commit()
        s.refresh(old)
        assert alert_view.text(old, zh, str) == "Station A (ST-A) is nearly empty: 1 helmet(s) left"
    assert AlertText(alert_texts.STATION_EMPTY, {"station": "X"}).english().startswith("No helmets at X")


@pytest.mark.parametrize(
    ("subject_type", "subject_id", "params", "href"),
    [
        ("station", "ST-2", None, "/staff/stations/ST-2"),
        ("locker", "LK-0005", None, "/tech/lockers/LK-0005"),
        ("slot", "LK-0005/3", None, "/tech/lockers/LK-0005#slot-LK-0005-3"),
        ("helmet", "H-0001", None, "/tech/helmets/H-0001"),
        ("resident", "R-7", None, "/staff/loans?status=all&resident=R-7"),
        ("pass", "p-1", '{"resident": "R-7"}', "/staff/loans?status=all&resident=R-7"),
        ("pass", "p-1", None, None),
    ],
)
def test_an_alert_links_to_the_page_of_its_subject(
    subject_type: str, subject_id: str, params: str | None, href: str | None
) -> None:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    row = Alert(
        kind="x",
        severity="info",
        subject_type=subject_type,
        subject_id=subject_id,
        message="m",
        params=params,
        opened_at=now,
        last_seen_at=now,
    )
    assert alert_view.href(row) == href


def test_each_vocabulary_names_every_code_of_its_enum_and_a_missing_word_fails() -> None:
    class Colour(StrEnum):
        RED = "red"
        DEEP_BLUE = "deep_blue"

    with pytest.raises(ValueError, match="deep_blue"):
        words.vocabulary(Colour, {"red": "Red"})
    assert words.word("slot_state", "empty") == "Empty"
    assert words.word("event", "helmet.borrowed") == "Helmet borrowed"
    assert words.word("helmet_status", "on_loan") == "On loan"
    assert words.word("fault", "door_ajar") == "door left open"
    for vocab in words.VOCABULARIES.values():
        for code, text in vocab.items():
            assert "_" not in text and "." not in text and text == text.strip(), (code, text)


def test_pages_name_a_lockers_station_in_the_readers_language_and_alerts_in_english(town: Town) -> None:
    with Session(town.engine) as s:
        station = s.get(Station, "ST-A")
        assert station is not None
        station.names = {"zh": "甲站"}
        s.add(station)
        s.commit()
        assert station_names(s, ["LK-000A", "LK-000B"]) == {"LK-000A": "Station A", "LK-000B": "Station B"}
        assert station_names(s, ["LK-000A", "LK-000B"], "zh") == {"LK-000A": "甲站", "LK-000B": "Station B"}
        assert station_names(s, ["LK-000A"], "en") == {"LK-000A": "Station A"}
