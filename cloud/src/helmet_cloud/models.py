"""Tables. ``XBase`` holds the fields an API client may set; ``X`` is the table."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from helmet_cloud.domain.states import AlertStatus, CommandStatus, HelmetStatus, LoanStatus
from helmet_protocol.messages import MAX_SLOTS


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """A UTC timestamp that reads back aware on every database.

    SQLite keeps no offset and hands datetimes back naive; everything stored is
    UTC, so a naive value read back is UTC. Without this, each API model had to
    remember ``aware()`` or its JSON lost the offset the OpenAPI spec promises.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


TS = UtcDateTime()


DEFAULT_TOWN = "default"


# A slippy-map tile template (or '' for none): an http(s) or site-relative URL with {z}, {x} and {y}.
TILE_URL = r"^$|^(https?://|/)\S*\{z\}\S*\{x\}\S*\{y\}"


class TownBase(SQLModel):
    name: str = Field(max_length=120)
    timezone: str = Field(default="UTC", max_length=64, description="IANA zone: loan ages, charts per hour and day")
    # The staff map's streets (docs/deployment.md, "The staff map"): None takes the deployment's setting.
    map_tile_url: str | None = Field(
        default=None,
        max_length=500,
        regex=TILE_URL,
        description="slippy-map tiles with {z}, {x} and {y}; '' for the offline map; null: HELMET_MAP_TILE_URL",
    )
    map_attribution: str | None = Field(
        default=None, max_length=300, description="the credit the tile server asks for; null: HELMET_MAP_ATTRIBUTION"
    )
    # Residents' numbers typed without a country code are read as this region's (domain/phones).
    phone_region: str | None = Field(
        default=None,
        max_length=2,
        regex=r"^[A-Z]{2}$",
        description="ISO 3166 alpha-2 region for numbers without a country code; null: HELMET_DEFAULT_PHONE_REGION",
    )


class Town(TownBase, table=True):
    """A programme: the stations one operator runs. One deployment may serve several towns."""

    id: str = Field(primary_key=True, max_length=32)


class StationBase(SQLModel):
    town_id: str = Field(default=DEFAULT_TOWN, foreign_key="town.id", index=True, max_length=32)
    name: str = Field(max_length=120)
    address: str = Field(default="", max_length=240)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    names: dict[str, str] = Field(
        default_factory=dict,
        sa_type=sa.JSON,
        sa_column_kwargs={"nullable": False, "server_default": "{}"},
        description='the name in the pages\' other languages, e.g. {"zh": "市政厅"}; "name" is the English one',
    )
    low_threshold: int = Field(default=1, ge=0, le=10_000)
    high_threshold: int = Field(default=1, ge=0, le=10_000, description="alert when fewer free slots than this")


class Station(StationBase, table=True):
    id: str = Field(primary_key=True, max_length=32)


class LockerBase(SQLModel):
    station_id: str = Field(foreign_key="station.id", index=True)
    slot_count: int = Field(ge=1, le=MAX_SLOTS)
    pin_profile: str = Field(default="pi-gpio-6", max_length=64)


class Locker(LockerBase, table=True):
    id: str = Field(primary_key=True, max_length=16)
    online: bool = False
    boot_id: str | None = None
    fw: str | None = None
    last_seen: datetime | None = Field(default=None, sa_type=TS)
    acked_seq: int = 0
    resend_asked_at: datetime | None = Field(default=None, sa_type=TS)
    snapshot_mismatch: str | None = None
    last_heard_at: datetime | None = Field(default=None, sa_type=TS, description="cloud time of its latest message")
    # The cloud's clock minus the locker's, from live status messages (helmet_cloud.ingest.clocks).
    clock_offset_ms: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    clock_offset_at: datetime | None = Field(default=None, sa_type=TS)
    clock_offset_boot: str | None = Field(default=None, max_length=64)


class EnrolmentCode(SQLModel, table=True):
    """A one-time code a Pi exchanges for its locker's config bundle; only the code's SHA-256 is kept."""

    code_hash: str = Field(primary_key=True, max_length=64)
    locker_id: str = Field(foreign_key="locker.id", index=True, max_length=16)
    created_by: str = Field(max_length=64)
    created_at: datetime = Field(sa_type=TS)
    expires_at: datetime = Field(sa_type=TS)
    used_at: datetime | None = Field(default=None, sa_type=TS)
    used_from: str | None = Field(default=None, max_length=64, description="client address of the exchange")
    revoked_at: datetime | None = Field(default=None, sa_type=TS, description="a newer code or decommissioning")


class Slot(SQLModel, table=True):
    """The cloud's view of one slot, derived from that locker's events in seq order."""

    locker_id: str = Field(foreign_key="locker.id", primary_key=True)
    slot: int = Field(primary_key=True)
    state: str = "empty"
    helmet_id: str | None = None
    reported_state: str | None = None
    applied_seq: int | None = Field(default=None, description="seq of the last event folded in; None: fold all again")


class Helmet(SQLModel, table=True):
    """Where a helmet is, derived from every event about it in time order."""

    id: str = Field(primary_key=True, max_length=16)
    status: str = HelmetStatus.UNKNOWN
    locker_id: str | None = Field(default=None, index=True)
    slot: int | None = None
    holder_id: str | None = None
    since: datetime | None = Field(default=None, sa_type=TS)
    # Sort key (ts, locker_id, seq) of the last event folded in; None: fold all its events again.
    applied_ts: datetime | None = Field(default=None, sa_type=TS)
    applied_locker_id: str | None = None
    applied_seq: int | None = None
    # The registry (helmet_cloud.services.helmets): set by people, never by events. A helmet first seen in an event
    # before it was registered has no registered_at.
    registered_at: datetime | None = Field(default=None, sa_type=TS)
    registered_by: str | None = Field(default=None, max_length=64)
    retired_at: datetime | None = Field(default=None, sa_type=TS, index=True)
    retired_by: str | None = Field(default=None, max_length=64)
    retired_reason: str | None = Field(default=None, max_length=200)


class Resident(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=16)
    phone: str = Field(unique=True, max_length=20, description="E.164 (domain/phones), e.g. +41780000005")
    created_at: datetime = Field(sa_type=TS)


class MergedResident(SQLModel, table=True):
    """An account merged into an older one with the same number (migration 0015): events from passes issued to
    it before the merge, which lockers may still send, are counted for the surviving account."""

    __tablename__ = "merged_resident"

    id: str = Field(primary_key=True, max_length=16, description="the merged account's id")
    resident_id: str = Field(max_length=16, index=True, description="the account it was merged into")
    phone: str = Field(max_length=20, description="its number as stored before the merge")
    merged_at: datetime = Field(sa_type=TS)


class User(SQLModel, table=True):
    """Staff, technicians and admins, who sign in with a password."""

    username: str = Field(primary_key=True, max_length=64)
    password_hash: str
    role: str = Field(description="a Role other than resident")


class OneTimeCode(SQLModel, table=True):
    """A phone number's sign-in code and its two limits (services/auth): tries at a code and codes sent, each
    counted in a window that starts with the first one after the last window ended. A new code keeps the tries."""

    phone: str = Field(primary_key=True, max_length=20)
    code_hash: str = Field(description="empty once used")
    expires_at: datetime = Field(sa_type=TS)
    tries: int = 0
    tries_since: datetime = Field(sa_type=TS)
    sent: int = 0
    sent_since: datetime = Field(sa_type=TS)


class ApiToken(SQLModel, table=True):
    token_hash: str = Field(primary_key=True)
    role: str
    subject: str
    expires_at: datetime = Field(sa_type=TS)


class IssuedPass(SQLModel, table=True):
    """A signed pass and, fleet-wide, whether it is still good: used somewhere or withdrawn (services/pass_refusals)."""

    id: str = Field(primary_key=True, max_length=36)
    holder_id: str = Field(index=True)
    role: str
    quantity: int
    kid: str
    issued_at: datetime = Field(sa_type=TS)
    expires_at: datetime = Field(sa_type=TS, index=True)
    station_id: str | None = None
    text: str | None = Field(default=None, description="the QR text, for the online 'open now' path")
    # The first use the cloud heard of: a locker's borrow event for it, or "open now" sending it to a locker.
    used_at: datetime | None = Field(default=None, sa_type=TS)
    used_locker_id: str | None = Field(default=None, max_length=16)
    used_cmd_id: str | None = Field(
        default=None, max_length=64, description="the 'open now' borrow command that claimed it, until an event says"
    )
    withdrawn_at: datetime | None = Field(default=None, sa_type=TS)
    withdrawn_by: str | None = Field(default=None, max_length=64)


class LockerCommand(SQLModel, table=True):
    """A command sent to a locker and, once it answers on cmd/ack, its result."""

    id: str = Field(primary_key=True, max_length=64, description="cmd_id")
    locker_id: str = Field(foreign_key="locker.id", index=True)
    op: str
    slot: int | None = None
    pass_id: str | None = Field(default=None, max_length=36, description="the pass a borrow command carries")
    requested_by: str
    reason: str | None = Field(default=None, max_length=200, description="why it was sent by hand (remote open)")
    requested_at: datetime = Field(sa_type=TS)
    status: str = Field(default=CommandStatus.SENT, index=True)
    error: str | None = None
    result: str | None = Field(default=None, description="the ack's data, as JSON")
    answered_at: datetime | None = Field(default=None, sa_type=TS)


class Loan(SQLModel, table=True):
    """One helmet out with one resident; keyed by the event that opened it."""

    id: str = Field(primary_key=True, max_length=64, description="event id of the helmet.borrowed")
    helmet_id: str = Field(index=True)
    resident_id: str | None = Field(default=None, index=True)
    pass_id: str | None = None
    borrowed_at: datetime = Field(sa_type=TS)
    borrow_locker_id: str
    returned_at: datetime | None = Field(default=None, sa_type=TS)
    return_locker_id: str | None = None
    status: str = Field(default=LoanStatus.OPEN, index=True)
    # When the cloud saw the open loan pass each age threshold (settings loan_*); kept after the return.
    overdue_at: datetime | None = Field(default=None, sa_type=TS)
    missing_at: datetime | None = Field(default=None, sa_type=TS)
    lost_at: datetime | None = Field(default=None, sa_type=TS)
    found_at: datetime | None = Field(default=None, sa_type=TS, description="when a lost helmet turned up again")


class RawEvent(SQLModel, table=True):
    """Every event exactly as a locker sent it; the source of all derived state.

    Its columns are :class:`helmet_cloud.ingest.records.StoredEvent`'s fields, which ingest inserts.
    """

    __table_args__ = (sa.UniqueConstraint("locker_id", "seq"),)

    event_id: str = Field(primary_key=True, max_length=64)
    locker_id: str = Field(index=True)
    seq: int
    ts: datetime = Field(sa_type=TS, index=True, description="when it happened: the locker's ts + clock_offset_ms")
    clock_offset_ms: int = Field(
        default=0,
        sa_column_kwargs={"server_default": "0"},
        description="correction added to the locker's own ts (in payload)",
    )
    kind: str
    known: bool = True
    slot: int | None = None
    helmet_id: str | None = Field(default=None, index=True)
    pass_id: str | None = Field(default=None, index=True)
    resident_id: str | None = None
    reason: str | None = Field(default=None, max_length=128, description="why it was refused or faulted, if it says")
    payload: str
    received_at: datetime = Field(sa_type=TS)


class DeadLetter(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    topic: str
    payload: str
    reason: str
    received_at: datetime = Field(sa_type=TS)


class Alert(SQLModel, table=True):
    """Something staff should see. At most one unresolved alert per (kind, subject)."""

    __table_args__ = (
        sa.Index(
            "uq_alert_unresolved",
            "kind",
            "subject_type",
            "subject_id",
            unique=True,
            sqlite_where=sa.text("resolved_at IS NULL"),
            postgresql_where=sa.text("resolved_at IS NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32, index=True)
    severity: str = Field(max_length=16, description="an AlertSeverity")
    subject_type: str = Field(max_length=16)  # station, locker, slot, helmet, pass, resident
    subject_id: str = Field(max_length=80)
    message: str = Field(max_length=500, description="in English, filled in from template and params")
    template: str | None = Field(default=None, max_length=200, description="the catalogue's message; None: old row")
    params: str | None = Field(default=None, description="JSON: the template's fields")
    status: str = Field(default=AlertStatus.OPEN, max_length=16, index=True)
    opened_at: datetime = Field(sa_type=TS, index=True)
    last_seen_at: datetime = Field(sa_type=TS)
    acknowledged_at: datetime | None = Field(default=None, sa_type=TS)
    acknowledged_by: str | None = Field(default=None, max_length=64)
    resolved_at: datetime | None = Field(default=None, sa_type=TS)
    resolved_by: str | None = Field(default=None, max_length=64, description="None when the condition ended")


class AuditEntry(SQLModel, table=True):
    """Who did what, when: every staff, technician and admin action, written in the action's transaction."""

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_type=TS, index=True)
    actor: str = Field(max_length=64, index=True, description="username, or cli:<os user> for the command line")
    role: str | None = Field(default=None, max_length=16)
    action: str = Field(max_length=48, index=True)
    subject_type: str = Field(max_length=16)
    subject_id: str = Field(max_length=80)
    detail: str | None = Field(default=None, description="JSON; never a secret")


class RebalanceMove(SQLModel, table=True):
    """A rebalancing move someone recorded as done: one per (round, from, to); correcting it updates the row."""

    __tablename__ = "rebalance_move"
    __table_args__ = (
        sa.UniqueConstraint("round_day", "source_station_id", "target_station_id", name="uq_rebalance_move_round"),
    )

    id: int | None = Field(default=None, primary_key=True)
    round_day: date = Field(index=True, description="the round: its day in the town's time zone")
    source_station_id: str = Field(foreign_key="station.id", max_length=32)
    target_station_id: str = Field(foreign_key="station.id", max_length=32)
    moved: int = Field(ge=0, description="helmets moved, as the person who did it says")
    advised: int | None = Field(default=None, description="what the advice asked when it was recorded")
    done_by: str = Field(max_length=64)
    done_at: datetime = Field(sa_type=TS)
