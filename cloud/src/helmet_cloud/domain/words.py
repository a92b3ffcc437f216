"""The words a person reads for each stored code: one vocabulary per enum, in English.

The database and the wire keep codes (``empty``, ``door_ajar``, ``helmet.borrowed``,
``on_loan``); pages show these English words, translated by the message catalogue,
never the codes. Each vocabulary is built from its enum, so a new value without a
word fails at import (and tests/cloud/test_words.py says which one).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import get_args

from helmet_cloud.domain.alert_rules import AlertKind
from helmet_cloud.domain.roles import Role
from helmet_cloud.domain.states import AlertSeverity, AlertStatus, CommandStatus, HelmetStatus, LoanStatus
from helmet_protocol.events import EventKind, FaultReason, RejectReason, SlotState
from helmet_protocol.messages import CmdOp


def vocabulary(codes: type[StrEnum] | tuple[str, ...], words: Mapping[str, str]) -> Mapping[str, str]:
    """``words`` checked to name every code of ``codes`` and nothing else."""
    values = {str(c) for c in codes}
    missing, extra = sorted(values - set(words)), sorted(set(words) - values)
    if missing or extra:
        raise ValueError(f"vocabulary of {codes!r}: no word for {missing}, words for unknown codes {extra}")
    return MappingProxyType(dict(words))


SLOT_STATES = vocabulary(
    SlotState,
    {
        "occupied": "Helmet in",
        "empty": "Empty",
        "unlocking": "Opening",
        "open": "Door open",
        "disabled": "Disabled",
        "fault": "Fault",
    },
)
FAULT_REASONS = vocabulary(
    FaultReason,
    {"door_ajar": "door left open", "lock_jammed": "lock jammed", "sensor_conflict": "sensors disagree"},
)
REJECT_REASONS = vocabulary(
    RejectReason,
    {
        "bad_signature": "bad signature",
        "expired": "expired",
        "not_yet_valid": "not valid yet",
        "unknown_key": "unknown key",
        "replayed": "shown again",
        "revoked": "withdrawn",
        "used_elsewhere": "used at another locker",
        "malformed": "unreadable",
        "over_quantity": "more helmets than the pass allows",
        "no_helmets": "no helmets in the locker",
        "no_free_slot": "no free slot",
    },
)
SELFTEST_RESULTS = vocabulary(("ok", "problems"), {"ok": "all checks passed", "problems": "problems found"})
# An event's reason: a fault's, a refusal's or a self-test's (helmet_edge writes these codes).
EVENT_REASONS: Mapping[str, str] = MappingProxyType({**FAULT_REASONS, **REJECT_REASONS, **SELFTEST_RESULTS})
EVENT_KINDS = vocabulary(
    EventKind,
    {
        "helmet.borrowed": "Helmet borrowed",
        "helmet.returned": "Helmet returned",
        "helmet.stocked": "Helmet stocked",
        "helmet.removed": "Helmet removed",
        "unlock.timeout": "Door opened, nothing taken",
        "borrow.cancelled": "Borrow cancelled",
        "return.cancelled": "Return cancelled",
        "slot.fault": "Slot fault",
        "slot.cleared": "Slot fault cleared",
        "slot.disabled": "Slot disabled",
        "slot.enabled": "Slot enabled",
        "pass.rejected": "Pass refused",
        "locker.selftest": "Self-test",
    },
)
HELMET_STATUSES = vocabulary(
    HelmetStatus,
    {"in_slot": "In a slot", "on_loan": "On loan", "removed": "Removed", "unknown": "Not seen yet"},
)
LOAN_STATUSES = vocabulary(LoanStatus, {"open": "Out", "returned": "Returned"})
ALERT_SEVERITIES = vocabulary(AlertSeverity, {"info": "Info", "warning": "Warning", "critical": "Critical"})
ALERT_STATUSES = vocabulary(AlertStatus, {"open": "New", "acknowledged": "Acknowledged", "resolved": "Resolved"})
ALERT_KINDS = vocabulary(
    AlertKind,
    {
        "locker_offline": "Locker offline",
        "station_empty": "Station empty",
        "station_low": "Few helmets",
        "station_full": "Station full",
        "door_ajar": "Door left open",
        "slot_fault": "Slot fault",
        "pass_overuse": "Pass used too often",
        "forged_passes": "Forged passes",
        "helmet_overdue": "Helmet overdue",
        "helmet_lost": "Helmet lost",
        "helmet_found": "Lost helmet found",
        "helmet_retired": "Retired helmet in a slot",
    },
)
COMMAND_OPS = vocabulary(
    get_args(CmdOp),
    {
        "borrow": "Open now (resident)",
        "unlock": "Open slot",
        "disable_slot": "Disable slot",
        "enable_slot": "Enable slot",
        "selftest": "Self-test",
        "resend": "Resend events",
        "reboot": "Restart",
    },
)
COMMAND_STATUSES = vocabulary(CommandStatus, {"sent": "Waiting for the locker", "ok": "Done", "failed": "Failed"})
ROLES = vocabulary(Role, {"resident": "Resident", "technician": "Technician", "staff": "Staff", "admin": "Admin"})
SUBJECT_TYPES = vocabulary(
    ("station", "locker", "slot", "helmet", "pass", "resident"),
    {
        "station": "Station",
        "locker": "Locker",
        "slot": "Slot",
        "helmet": "Helmet",
        "pass": "Pass",
        "resident": "Resident",
    },
)

VOCABULARIES: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        "slot_state": SLOT_STATES,
        "fault": FAULT_REASONS,
        "reject": REJECT_REASONS,
        "reason": EVENT_REASONS,
        "event": EVENT_KINDS,
        "helmet_status": HELMET_STATUSES,
        "loan_status": LOAN_STATUSES,
        "severity": ALERT_SEVERITIES,
        "alert_status": ALERT_STATUSES,
        "alert_kind": ALERT_KINDS,
        "command_op": COMMAND_OPS,
        "command_status": COMMAND_STATUSES,
        "role": ROLES,
        "subject": SUBJECT_TYPES,
    }
)


def word(vocab: str, code: str | None) -> str:
    """The English word for ``code`` in vocabulary ``vocab``; a code it does not know stays as it is."""
    if code is None:
        return ""
    return VOCABULARIES[vocab].get(str(code), str(code))


def all_words() -> tuple[str, ...]:
    """Every word of every vocabulary, once: the catalogue must translate each."""
    return tuple(dict.fromkeys(w for v in VOCABULARIES.values() for w in v.values()))
