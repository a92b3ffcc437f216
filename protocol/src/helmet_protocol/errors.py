"""Errors raised by the wire contract. All derive from :class:`ProtocolError`."""

from __future__ import annotations


class ProtocolError(ValueError):
    """Root of every error in :mod:`helmet_protocol`; input that breaks the contract."""


class PayloadError(ProtocolError):
    """An MQTT payload that cannot be accepted (size, JSON, version, fields)."""


class TopicError(ProtocolError):
    """A topic string that is not one of ours, or an unsafe locker id."""


class PassRejectedError(ProtocolError):
    """A borrow pass that must not open anything.

    ``reason`` is the machine-readable code that goes into a ``pass.rejected``
    event (see :class:`helmet_protocol.events.RejectReason`).
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
