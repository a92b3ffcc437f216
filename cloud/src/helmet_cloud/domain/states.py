"""The states the cloud records, each spelled once; the database holds exactly these values.

Slot states are the wire's (:class:`helmet_protocol.events.SlotState`), roles
are in :mod:`.roles`.
"""

from __future__ import annotations

from enum import StrEnum


class HelmetStatus(StrEnum):
    """Where a helmet is, by the last event about it."""

    IN_SLOT = "in_slot"
    ON_LOAN = "on_loan"
    REMOVED = "removed"  # taken out of a slot by a technician
    UNKNOWN = "unknown"  # registered, never seen in an event


class LoanStatus(StrEnum):
    OPEN = "open"
    RETURNED = "returned"


class AlertSeverity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class AlertStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"  # someone is on it; it stays until its condition ends or it is resolved
    RESOLVED = "resolved"


class CommandStatus(StrEnum):
    SENT = "sent"
    OK = "ok"
    FAILED = "failed"
