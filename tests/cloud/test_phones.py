"""Phone numbers in E.164 (issue 17, finding 2; residents found by phone, finding 11).

The rule (helmet_cloud.domain.phones) on its own, then every door it guards on a real app, database and broker:
sign-in by the API in both forms reaching one account and one loan, the region a town sets, refusals that
change nothing, the SMS sent to E.164, and staff finding the resident by number.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select
from support.cloud_events import Recorder, at, event, inbound, register_town, status
from support.cloud_users import user_headers

from helmet_cloud.adapters.database import make_engine
from helmet_cloud.adapters.sms import make_sender
from helmet_cloud.domain.phones import PhoneRefusedError, phone_number
from helmet_cloud.ingest.ingestor import Ingestor
from helmet_cloud.models import OneTimeCode, Resident
from helmet_cloud.settings import CloudSettings


@pytest.mark.parametrize(
    "typed",
    [
        "0780000005",  # local
        "078 000 00 05",  # local with spaces
        "+41780000005",  # international
        "+41 78 000 00 05",
        "+41 (0)78 000 00 05",  # the national 0 in brackets, as Swiss cards print it
        "0041 78 000 00 05",  # the 00 prefix
        "0041-78-000.00.05",
    ],
)
def test_every_form_of_a_swiss_mobile_number_is_one_number(typed: str) -> None:
    assert phone_number(typed, "CH") == "+41780000005"


def test_another_region_reads_local_numbers_as_its_own_and_international_ones_as_written() -> None:
    assert phone_number("0151 23456789", "DE") == "+4915123456789"
    assert phone_number("+41 78 000 00 05", "DE") == "+41780000005"
    assert phone_number("(201) 555-0123", "US") == "+12015550123"  # fixed line or mobile: the library cannot tell
    with pytest.raises(PhoneRefusedError):  # the same digits are no Swiss mobile in Germany
        phone_number("0780000005", "DE")


@pytest.mark.parametrize(
    ("typed", "why"),
    [
        ("call me", "not a phone number"),
        ("123", "not a phone number"),
        ("0780000", "not a phone number"),  # too short for a Swiss number
        ("1" * 41, "not a phone number"),
        ("044 123 45 67", "cannot receive text messages"),  # a Zurich fixed line
        ("0800 123 456", "cannot receive text messages"),  # toll-free
    ],
)
def test_numbers_no_code_can_reach_are_refused_naming_an_example_of_the_region(typed: str, why: str) -> None:
    with pytest.raises(PhoneRefusedError) as refused:
        phone_number(typed, "CH")
    assert why in str(refused.value)
    assert refused.value.fields == {"example": "+41 78 123 45 67"}  # a Swiss mobile, as people write it
    with pytest.raises(PhoneRefusedError) as in_germany:
        phone_number("call me", "DE")
    assert str(in_germany.value).endswith("e.g. +49 1512 3456789")


def test_the_region_is_a_known_iso_code() -> None:
    with pytest.raises(ValueError, match="ISO 3166"):
        CloudSettings(default_phone_region="XX")
    with pytest.raises(ValueError):
        CloudSettings(default_phone_region="ch")
    assert CloudSettings().default_phone_region == "CH"


def test_an_sms_goes_only_to_an_e164_number(tmp_path: Path) -> None:
    sender = make_sender(f"file:{tmp_path}/sms.jsonl")
    with pytest.raises(ValueError, match=r"E\.164"):
        sender.send("0780000005", "hello")
    sender.send("+41780000005", "hello")
    assert [json.loads(line)["phone"] for line in (tmp_path / "sms.jsonl").read_text().splitlines()] == ["+41780000005"]


def sms(settings: CloudSettings) -> list[dict[str, str]]:
    path = Path(settings.sms_backend.removeprefix("file:"))
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def sign_in(api: TestClient, settings: CloudSettings, typed: str, **extra: str) -> dict[str, str]:
    """Sign in through the API with the number as typed; the code is read from the text sent to E.164."""
    assert api.post("/api/auth/code", json={"phone": typed, **extra}).status_code == 202
    last = sms(settings)[-1]
    code = re.search(r"\d{6}", last["text"])
    assert code is not None
    resp = api.post("/api/auth/verify", json={"phone": typed, "code": code.group(0), **extra})
    assert resp.status_code == 200, resp.text
    return {"Authorization": f"Bearer {resp.json()['token']}"}


def test_both_forms_of_a_number_sign_in_to_one_account_and_see_one_loan(
    api: TestClient, settings: CloudSettings
) -> None:
    staff = user_headers(api, settings, role="admin")
    register_town(api, staff, {"LK-0001": ("ST-A", 4)})
    international = sign_in(api, settings, "+41 78 000 00 05")
    assert sms(settings)[-1]["phone"] == "+41780000005"
    me = api.get("/api/me", headers=international).json()
    assert me["phone"] == "+41780000005"
    engine = make_engine(settings.database_url)
    try:
        Ingestor(engine, Recorder()).handle(
            inbound(
                [
                    status("LK-0001", at(0), online=True),
                    event("LK-0001", 1, at(1), "helmet.stocked", slot=1, helmet_id="H-1"),
                    event("LK-0001", 2, at(2), "helmet.borrowed", slot=1, helmet_id="H-1", resident_id=me["id"]),
                ]
            )
        )
        local = sign_in(api, settings, "0780000005")
        assert sms(settings)[-1]["phone"] == "+41780000005"
        assert api.get("/api/me", headers=local).json()["id"] == me["id"]
        assert api.get("/api/me", headers=local).json()["helmets_out"] == 1
        for headers in (international, local):
            assert [ln["helmet_id"] for ln in api.get("/api/loans", headers=headers).json()] == ["H-1"]
        # Staff find the resident and the loan by the number in any form, or by the id.
        for typed in ("0780000005", "+41 78 000 00 05", "0041780000005", me["id"]):
            found = api.get("/api/loans", headers=staff, params={"resident_id": typed}).json()
            assert [ln["resident_id"] for ln in found] == [me["id"]], typed
            residents = api.get("/api/residents", headers=staff, params={"phone": typed}).json()
            assert [r["id"] for r in residents] == [me["id"]], typed
        assert api.get("/api/loans", headers=staff, params={"resident_id": "0790000000"}).json() == []
        assert api.get("/api/residents", headers=staff, params={"phone": "call me"}).json() == []
        with Session(engine) as s:
            assert [r.phone for r in s.exec(select(Resident)).all()] == ["+41780000005"]
            assert [r.phone for r in s.exec(select(OneTimeCode)).all()] == ["+41780000005"]
    finally:
        engine.dispose()


def test_a_refused_number_gets_words_and_an_example_and_changes_nothing(
    api: TestClient, settings: CloudSettings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "helmet_cloud.services.phones")
    for typed in ("call me", "044 123 45 67", "0780000"):
        refused = api.post("/api/auth/code", json={"phone": typed})
        assert refused.status_code == 422
        assert "e.g. +41 78 123 45 67" in refused.text and typed not in refused.text
        assert api.post("/api/auth/verify", json={"phone": typed, "code": "123456"}).status_code == 422
    assert sms(settings) == []
    engine = make_engine(settings.database_url)
    with Session(engine) as s:
        assert s.exec(select(OneTimeCode)).all() == [] and s.exec(select(Resident)).all() == []
    engine.dispose()
    assert any("phone number refused (cannot receive SMS in CH)" in r.getMessage() for r in caplog.records)


def test_a_town_reads_local_numbers_in_its_own_region(api: TestClient, settings: CloudSettings) -> None:
    admin = user_headers(api, settings, role="admin")
    body = {"id": "berlin", "name": "Berlin", "timezone": "Europe/Berlin", "phone_region": "DE"}
    assert api.post("/api/towns", headers=admin, json=body).status_code == 201
    assert api.post("/api/towns", headers=admin, json=body | {"id": "nowhere", "phone_region": "XX"}).status_code == 422
    berliner = sign_in(api, settings, "0151 23456789", town="berlin")
    assert api.get("/api/me", headers=berliner).json()["phone"] == "+4915123456789"
    assert sms(settings)[-1]["phone"] == "+4915123456789"
    # Staff at the desk type it as the Berliner says it, in a deployment whose own region is CH.
    found = api.get("/api/residents", headers=admin, params={"phone": "0151 23456789"})
    assert [r["phone"] for r in found.json()] == ["+4915123456789"]
    # Without the town, the deployment's region (CH) reads the same digits, and says what it expects.
    refused = api.post("/api/auth/code", json={"phone": "0151 23456789"})
    assert refused.status_code == 422 and "+41 78 123 45 67" in refused.text
    changed = api.patch("/api/towns/default", headers=admin, json={"phone_region": "DE"})
    assert changed.status_code == 200 and changed.json()["phone_region"] == "DE"
    assert api.post("/api/auth/code", json={"phone": "0151 23456789", "town": "default"}).status_code == 202
