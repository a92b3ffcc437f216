"""Typed payloads of protocol v1: one frozen pydantic model per topic.

Every payload is a UTF-8 JSON object of at most :data:`MAX_PAYLOAD_BYTES`
with ``"v": 1``. Unknown fields are ignored so that newer senders do not break
older receivers; an unknown ``v`` is refused with :class:`PayloadError`.

:func:`decode` reads a payload in pydantic's strict JSON mode: a value of the
wrong JSON type is refused, never converted (``"seq": "3"``, ``"slot": "1"``,
``"online": "yes"`` or ``0``), and a timestamp is ISO 8601 text. Sequence
numbers are at most :data:`MAX_SEQ`, what a database's 64-bit integer holds.
(Models built in Python, from trusted values, are not strict.)
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Annotated, Any, Literal, Self, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    field_validator,
    model_validator,
)

from helmet_protocol.errors import PayloadError
from helmet_protocol.events import EventKind, SlotState
from helmet_protocol.topics import LOCKER_ID_RE

MAX_PAYLOAD_BYTES = 16 * 1024
ID_PATTERN = r"^[A-Za-z0-9._:-]{1,64}$"


def format_ts(value: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and a ``Z``: ``2026-11-28T09:00:00.123Z``."""
    if value.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_cmd_id() -> str:
    """A command's id (``c-`` and 32 hex digits): its ack and any retry carry it."""
    return f"c-{uuid.uuid4().hex}"


def new_event_id() -> str:
    """A UUIDv7: globally unique and sortable by creation time (RFC 9562)."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | (rand >> 68 & 0xFFF) << 64
    value |= 0b10 << 62 | rand & ((1 << 62) - 1)
    return str(uuid.UUID(int=value))


def _require_aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("timestamp must carry a timezone (use Z for UTC)")
    return value.astimezone(UTC)


_ISO_TS = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def _wire_ts(value: object) -> object:
    """A timestamp is a datetime (built in Python) or ISO 8601 text; pydantic alone would read "12345" as Unix
    seconds, and its strict mode no ISO text at all once a validator has run, so the text is parsed here."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and _ISO_TS.match(value):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError("timestamp must be ISO 8601 text, like 2026-11-28T09:00:00.123Z")


Timestamp = Annotated[datetime, BeforeValidator(_wire_ts), PlainSerializer(format_ts, return_type=str)]
LockerId = Annotated[str, Field(pattern=LOCKER_ID_RE.pattern)]
Id = Annotated[str, Field(pattern=ID_PATTERN)]
MAX_SLOTS = 256
"""The most slots one locker may have; slot numbers run from 1 to this."""
SlotNo = Annotated[int, Field(ge=1, le=MAX_SLOTS)]
MAX_SEQ = 2**63 - 1
"""The largest ``seq``: a signed 64-bit integer, as PostgreSQL's ``bigint`` and SQLite hold it."""
Seq = Annotated[int, Field(ge=1, le=MAX_SEQ)]
"""An event's sequence number (and ``resend``'s ``from_seq``)."""
SeqCovered = Annotated[int, Field(ge=0, le=MAX_SEQ)]
"""The ``seq`` an ``ack`` or a ``state`` covers: 0 before the first event."""


class Message(BaseModel):
    """Base of every payload: frozen, unknown fields ignored, ``v`` must be 1."""

    model_config = ConfigDict(frozen=True, extra="ignore", str_max_length=4096)

    v: Literal[1] = 1

    @field_validator("ts", mode="after", check_fields=False)
    @classmethod
    def _aware_ts(cls, value: datetime | None) -> datetime | None:
        return None if value is None else _require_aware(value)

    def to_json(self) -> bytes:
        """Serialise compactly, omitting absent optional fields."""
        return self.model_dump_json(exclude_none=True).encode()


class Status(Message):
    """``status`` (retained): is the locker online; the Last Will says it is not."""

    locker_id: LockerId
    online: bool
    boot_id: Id
    fw: str = Field(max_length=64)
    ts: Timestamp
    camera_ok: bool | None = None


class Event(Message):
    """One thing that happened at a locker. ``event_id`` never changes across retries."""

    event_id: Id
    locker_id: LockerId
    seq: Seq
    ts: Timestamp
    kind: str = Field(max_length=64)
    slot: SlotNo | None = None
    helmet_id: Id | None = None
    pass_id: Id | None = None
    resident_id: Id | None = None
    reason: str | None = Field(default=None, max_length=128)
    detail: str | None = Field(default=None, max_length=1024)

    @property
    def known_kind(self) -> EventKind | None:
        """The kind as an :class:`EventKind`, or ``None`` for a kind we do not know."""
        try:
            return EventKind(self.kind)
        except ValueError:
            return None


class SlotReport(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    slot: SlotNo
    state: SlotState
    helmet_id: Id | None = None


class State(Message):
    """``state`` (retained): the locker's view of every slot at ``seq``."""

    locker_id: LockerId
    seq: SeqCovered
    ts: Timestamp
    slots: list[SlotReport] = Field(max_length=MAX_SLOTS)


CmdOp = Literal["borrow", "unlock", "disable_slot", "enable_slot", "selftest", "resend", "reboot"]
COMMAND_ARGS: Mapping[CmdOp, tuple[str, ...]] = MappingProxyType(
    {
        "borrow": ("pass_text",),
        "unlock": ("slot",),
        "disable_slot": ("slot",),
        "enable_slot": ("slot",),
        "selftest": (),
        "resend": ("from_seq",),
        "reboot": (),
    }
)
"""Every command op and the :class:`Command` fields it needs: the one list the cloud, its pages and the edge use."""
CMD_OPS: tuple[CmdOp, ...] = tuple(COMMAND_ARGS)


class Command(Message):
    """``cmd``: an operation for one locker, executed at most once per ``cmd_id``."""

    cmd_id: Id
    op: CmdOp
    slot: SlotNo | None = None
    pass_text: str | None = Field(default=None, max_length=1024)
    from_seq: Seq | None = None
    ts: Timestamp | None = None

    @model_validator(mode="after")
    def _args_present(self) -> Self:
        missing = [a for a in COMMAND_ARGS[self.op] if getattr(self, a) is None]
        if missing:
            raise ValueError(f"op {self.op!r} needs {', '.join(missing)}")
        return self


class CommandAck(Message):
    """``cmd/ack``: the result of one command."""

    cmd_id: Id
    ok: bool
    error: str | None = Field(default=None, max_length=512)
    data: dict[str, Any] | None = None
    ts: Timestamp


LanguageCode = Annotated[str, Field(pattern=r"^[a-z]{2}(-[A-Z]{2})?$")]


class LockerConfig(Message):
    """``config`` (retained): what the cloud tells a locker to use."""

    locker_id: LockerId
    slot_count: int = Field(ge=1, le=MAX_SLOTS)
    pass_keys: dict[str, str] = Field(max_length=16)
    max_quantity: int = Field(default=4, ge=1, le=16)
    revoked_pass_ids: list[Id] = Field(default_factory=list, max_length=256)
    # Passes already honoured at another locker (or sent there by "open now"): refused as used_elsewhere.
    used_pass_ids: list[Id] = Field(default_factory=list, max_length=256)
    helmet_url_host: str | None = Field(default=None, max_length=253)
    # For the locker's screen (additive; older lockers ignore them): the station it stands at, its names by
    # language ("en", "zh", as the cloud's pages name languages) and the poster's address (/s/{station}).
    station_id: Id | None = None
    station_names: dict[
        Annotated[str, Field(pattern=r"^[a-z]{2}(-[A-Z]{2})?$")], Annotated[str, Field(max_length=120)]
    ] = Field(default_factory=dict, max_length=8)
    poster_url: str | None = Field(default=None, max_length=300, pattern=r"^https://[^\s]+$")
    ts: Timestamp


class Ack(Message):
    """``ack`` (retained): every event of this locker up to ``seq`` is stored."""

    locker_id: LockerId
    seq: SeqCovered


M = TypeVar("M", bound=Message)


def decode(model: type[M], payload: bytes | str) -> M:
    """Parse and validate one payload (strictly: no value of the wrong JSON type is converted), or raise
    :class:`PayloadError` saying why."""
    raw = payload.encode() if isinstance(payload, str) else payload
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise PayloadError(f"payload is {len(raw)} bytes; the limit is {MAX_PAYLOAD_BYTES}")
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise PayloadError("payload is not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise PayloadError(f"payload is not JSON: {exc.msg} at char {exc.pos}") from None
    except ValueError as exc:  # a number of more than 4300 digits (Python's int conversion limit)
        raise PayloadError(f"payload is not usable JSON: {exc}"[:200]) from None
    if not isinstance(data, dict):
        raise PayloadError(f"payload must be a JSON object, got {type(data).__name__}")
    if type(data.get("v")) is not int or data["v"] != 1:
        raise PayloadError(f"unsupported protocol version v={data.get('v')!r}; this side speaks v=1")
    try:
        # Strict JSON mode: strings stay strings, numbers numbers, booleans booleans (an int is still a float).
        return model.model_validate_json(raw, strict=True)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'payload'}: {err['msg']}" for err in exc.errors()
        )
        raise PayloadError(f"invalid {model.__name__}: {problems}") from None
