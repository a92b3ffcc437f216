"""Who may do what: the four roles and the signed-in caller."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    """Stored as these values in ``user.role`` and ``apitoken.role``."""

    RESIDENT = "resident"
    TECHNICIAN = "technician"
    STAFF = "staff"
    ADMIN = "admin"


ROLES = tuple(Role)
# Higher staff roles may do what lower ones may; residents are apart.
_RANK = {Role.TECHNICIAN: 1, Role.STAFF: 2, Role.ADMIN: 3}


@dataclass(frozen=True, slots=True)
class Caller:
    """The signed-in person a request or a command acts for."""

    role: str
    subject: str


def admits(caller_role: str, *roles: Role) -> bool:
    """``caller_role`` is one of ``roles``, or a staff role at least as high as the lowest staff role listed."""
    if caller_role in roles:
        return True
    floor = min((_RANK[r] for r in roles if r in _RANK), default=None)
    rank = _RANK.get(Role(caller_role)) if caller_role in ROLES else None
    return floor is not None and rank is not None and rank >= floor
