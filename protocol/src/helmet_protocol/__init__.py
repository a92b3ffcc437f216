"""helmet-station wire contract shared by the locker (edge) and the cloud.

Nothing here performs I/O: topics, message models, event kinds and borrow
passes are pure data and pure functions, so both sides agree by construction.
"""

from helmet_protocol.errors import PassRejectedError, PayloadError, ProtocolError

PROTOCOL_VERSION = 1

__all__ = ["PROTOCOL_VERSION", "PassRejectedError", "PayloadError", "ProtocolError"]
