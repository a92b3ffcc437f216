"""Migration 0015 (issue 17, finding 2): residents' numbers into E.164, one account per number, nothing lost.

Real rows written at revision 0014 (three accounts for one number typed three ways, one with an open loan and a
pass not used yet, sign-in limits under two forms, a number no one can read), then the real migration, then the
real app on the migrated database: the oldest account holds everything, and a late event from a pass issued to a
merged account lands on it. SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Connection
from support.cloud_events import Recorder, event, inbound, status

from helmet_cloud.adapters.database import alembic_config, make_engine
from helmet_cloud.app import create_app
from helmet_cloud.domain.security import new_token, token_hash
from helmet_cloud.ingest.ingestor import Ingestor
from helmet_cloud.settings import CloudSettings

T0 = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
NOW = datetime.now(UTC)


def insert(conn: Connection, table: str, **row: object) -> None:
    names = ", ".join(row)
    conn.execute(text(f"INSERT INTO {table} ({names}) VALUES ({', '.join(':' + n for n in row)})"), row)  # noqa: S608


def rows(conn: Connection, sql: str) -> list[tuple[object, ...]]:
    return [tuple(r) for r in conn.execute(text(sql)).all()]


def the_town_before(conn: Connection, tokens: dict[str, str]) -> None:
    """What a cloud before 0015 could hold: one person signed in as 0780000005, +41780000005, 0041780000005."""
    insert(conn, "station", id="ST-A", town_id="default", name="A", address="", lat=47.0, lon=8.0,
           low_threshold=1, high_threshold=1, names="{}")  # fmt: skip
    insert(conn, "locker", id="LK-0001", station_id="ST-A", slot_count=4, pin_profile="pi-gpio-6", online=False,
           acked_seq=0, clock_offset_ms=0)  # fmt: skip
    for rid, phone, days in [
        ("R-AAA", "0780000005", 0),  # the oldest: it survives
        ("R-BBB", "+41780000005", 1),
        ("R-CCC", "0041 78 000 00 05", 2),
        ("R-DDD", "+41791234567", 3),  # another person
        ("R-EEE", "call me", 4),  # nothing the library reads: left as it is
    ]:
        insert(conn, "resident", id=rid, phone=phone, created_at=T0 + timedelta(days=days))
    for pid, holder, role, used in [
        ("P-1", "R-AAA", "resident", T0),
        ("P-2", "R-BBB", "resident", T0 + timedelta(days=1)),
        ("P-3", "R-CCC", "resident", None),  # not used yet, still good: a locker may honour it after the merge
        ("P-T", "tech-user", "technician", None),
    ]:
        insert(conn, "issuedpass", id=pid, holder_id=holder, role=role, quantity=1, kid="k1", issued_at=NOW,
               expires_at=NOW + timedelta(hours=1), station_id="ST-A", used_at=used,
               used_locker_id="LK-0001" if used else None)  # fmt: skip
    insert(conn, "loan", id="E-1", helmet_id="H-1", resident_id="R-AAA", pass_id="P-1", borrowed_at=T0,
           borrow_locker_id="LK-0001", returned_at=T0 + timedelta(hours=2), return_locker_id="LK-0001",
           status="returned")  # fmt: skip
    insert(conn, "loan", id="E-2", helmet_id="H-2", resident_id="R-BBB", pass_id="P-2",
           borrowed_at=NOW - timedelta(hours=1), borrow_locker_id="LK-0001", status="open")  # fmt: skip
    insert(conn, "helmet", id="H-2", status="on_loan", holder_id="R-BBB", since=NOW - timedelta(hours=1))
    payload = json.dumps({"kind": "helmet.borrowed", "resident_id": "R-BBB"})
    insert(conn, "rawevent", event_id="E-2", locker_id="LK-0001", seq=7, ts=NOW - timedelta(hours=1),
           clock_offset_ms=0, kind="helmet.borrowed", known=True, slot=2, helmet_id="H-2", pass_id="P-2",
           resident_id="R-BBB", payload=payload, received_at=NOW)  # fmt: skip
    insert(conn, "lockercommand", id="C-1", locker_id="LK-0001", op="borrow", slot=None, pass_id="P-2",
           requested_by="R-BBB", requested_at=T0, status="ok")  # fmt: skip
    for subject, role in [("R-BBB", "resident"), ("staff-user", "staff")]:
        tokens[subject] = new_token()
        insert(conn, "apitoken", token_hash=token_hash(tokens[subject]), role=role, subject=subject,
               expires_at=NOW + timedelta(days=30))  # fmt: skip
    for phone, tries, sent, expires in [("0780000005", 2, 1, NOW - timedelta(minutes=5)),
                                         ("+41780000005", 1, 2, NOW + timedelta(minutes=5)),
                                         ("call me", 1, 1, NOW)]:  # fmt: skip
        since = {"tries_since": NOW - timedelta(minutes=tries), "sent_since": NOW - timedelta(minutes=sent)}
        insert(conn, "onetimecode", phone=phone, code_hash=f"hash-{phone}", expires_at=expires, tries=tries,
               sent=sent, **since)  # fmt: skip
    insert(conn, "audit_log", at=T0, actor="staff-user", role="staff", action="resident.note",
           subject_type="resident", subject_id="R-BBB", detail="{}")  # fmt: skip
    for aid, subject in [(1, "R-AAA"), (2, "R-BBB")]:
        insert(conn, "alert", id=aid, kind="test_kind", severity="warning", subject_type="resident",
               subject_id=subject, message="m", status="open", opened_at=T0, last_seen_at=T0)  # fmt: skip


def test_duplicate_accounts_merge_into_the_oldest_without_losing_a_loan(
    settings: CloudSettings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "helmet_cloud.migrations.0015")
    cfg = alembic_config(settings.database_url)
    command.upgrade(cfg, "0014")
    engine = make_engine(settings.database_url)
    tokens: dict[str, str] = {}
    try:
        with engine.begin() as conn:
            the_town_before(conn, tokens)
        cfg.attributes["phone_region"] = "CH"
        command.upgrade(cfg, "head")
        with engine.connect() as conn:
            assert rows(conn, "SELECT id, phone FROM resident ORDER BY id") == [
                ("R-AAA", "+41780000005"),
                ("R-DDD", "+41791234567"),
                ("R-EEE", "call me"),
            ]
            assert rows(conn, "SELECT id, resident_id, phone FROM merged_resident ORDER BY id") == [
                ("R-BBB", "R-AAA", "+41780000005"),
                ("R-CCC", "R-AAA", "0041 78 000 00 05"),
            ]
            assert rows(conn, "SELECT id, resident_id, status FROM loan ORDER BY id") == [
                ("E-1", "R-AAA", "returned"),
                ("E-2", "R-AAA", "open"),
            ]
            assert rows(conn, "SELECT id, holder_id FROM issuedpass ORDER BY id") == [
                ("P-1", "R-AAA"), ("P-2", "R-AAA"), ("P-3", "R-AAA"), ("P-T", "tech-user"),
            ]  # fmt: skip
            assert rows(conn, "SELECT holder_id FROM helmet") == [("R-AAA",)]
            assert rows(conn, "SELECT resident_id, payload FROM rawevent") == [
                ("R-AAA", json.dumps({"kind": "helmet.borrowed", "resident_id": "R-BBB"}))  # as the locker sent it
            ]
            assert rows(conn, "SELECT requested_by FROM lockercommand") == [("R-AAA",)]
            assert sorted(rows(conn, "SELECT subject, role FROM apitoken")) == [
                ("R-AAA", "resident"), ("staff-user", "staff"),
            ]  # fmt: skip
            limits = rows(conn, "SELECT phone, code_hash, tries, sent FROM onetimecode ORDER BY phone")
            # Added together (the stricter), the newest code kept; the unreadable number left alone.
            assert limits == [("+41780000005", "hash-+41780000005", 3, 3), ("call me", "hash-call me", 1, 1)]
            audit = rows(conn, "SELECT actor, action, subject_id, detail FROM audit_log ORDER BY id")
            assert audit[0] == ("staff-user", "resident.note", "R-BBB", "{}")  # history stays as written
            assert [(a, s, json.loads(str(d))) for _, a, s, d in audit[1:]] == [
                ("resident.merge", "R-AAA", {"merged": "R-BBB", "into": "R-AAA"}),
                ("resident.merge", "R-AAA", {"merged": "R-CCC", "into": "R-AAA"}),
            ]
            assert rows(conn, "SELECT subject_id, resolved_at IS NULL, status FROM alert ORDER BY id") == [
                ("R-AAA", True, "open"),
                ("R-AAA", False, "resolved"),  # the merged copy, resolved: one open alert per kind and subject
            ]
    finally:
        engine.dispose()
    assert any(
        "resident R-EEE's number" in r.getMessage() and "left as it is" in r.getMessage() for r in caplog.records
    )

    with TestClient(create_app(settings)) as api:
        # The merged account's sign-in still works, as the survivor; the number in its local form too.
        before = {"Authorization": f"Bearer {tokens['R-BBB']}"}
        me = api.get("/api/me", headers=before).json()
        assert (me["id"], me["phone"], me["helmets_out"]) == ("R-AAA", "+41780000005", 1)
        assert [p["pass_id"] for p in me["open_passes"]] == ["P-3"]
        staff = {"Authorization": f"Bearer {tokens['staff-user']}"}
        found = api.get("/api/loans", headers=staff, params={"resident_id": "078 000 00 05", "status": "open"})
        assert [ln["id"] for ln in found.json()] == ["E-2"]
        # A locker honours the pass issued to R-CCC after the merge: the loan is the survivor's.
        engine = make_engine(settings.database_url)
        try:
            Ingestor(engine, Recorder()).handle(
                inbound(
                    [
                        status("LK-0001", NOW, online=True),
                        event(
                            "LK-0001",
                            8,
                            NOW,
                            "helmet.borrowed",
                            slot=3,
                            helmet_id="H-3",
                            pass_id="P-3",
                            resident_id="R-CCC",
                        ),
                    ]
                )
            )
        finally:
            engine.dispose()
        mine = api.get("/api/loans", headers=before, params={"status": "open"}).json()
        assert sorted(ln["helmet_id"] for ln in mine) == ["H-2", "H-3"]
        assert api.get("/api/me", headers=before).json()["helmets_out"] == 2


def test_the_downgrade_keeps_the_merged_accounts_and_upgrades_again(database_url: str) -> None:
    cfg = alembic_config(database_url)
    command.upgrade(cfg, "0014")
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            the_town_before(conn, {})
        command.upgrade(cfg, "0015")
        command.downgrade(cfg, "0014")
        with engine.connect() as conn:
            assert rows(conn, "SELECT id, phone FROM resident ORDER BY id")[0] == ("R-AAA", "+41780000005")
        command.upgrade(cfg, "head")
        with engine.connect() as conn:
            assert rows(conn, "SELECT count(*) FROM resident") == [(3,)]
            assert rows(conn, "SELECT count(*) FROM merged_resident") == [(0,)]  # merged before: nothing to merge
    finally:
        engine.dispose()


def test_every_column_that_names_a_resident_is_merged() -> None:
    """A table added later with a resident's id in it must join the merge's list, or a merge would strand its
    rows under an account that no longer signs in."""
    import importlib

    from sqlmodel import SQLModel

    import helmet_cloud.models  # noqa: F401 (the tables)

    merge = importlib.import_module("helmet_cloud.migrations.versions.0015_phone_numbers_in_e164")
    listed = {(table, column) for table, column, _ in merge.RESIDENT_COLUMNS}
    # Columns that name a resident, or anyone (a subject, an actor): by name, as the models spell them.
    naming = {"resident_id", "holder_id", "subject", "requested_by"}
    found = {
        (table.name, column.name)
        for table in SQLModel.metadata.sorted_tables
        for column in table.columns
        if column.name in naming and table.name not in {"audit_log", "alert", "resident", "merged_resident"}
    }
    assert len(found) >= 5 and found - listed == set()
