"""How many more helmets a resident may take: the limit, less helmets out and helmets on unused passes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Allowance:
    limit: int
    held: int  # helmets out now (open loans)
    pending: int  # helmets on unexpired passes that no locker has used yet (a used pass is good nowhere)

    @property
    def room(self) -> int:
        return max(0, self.limit - self.held - self.pending)

    def refusal(self, quantity: int) -> str | None:
        """Why a pass for ``quantity`` helmets cannot be issued, or ``None`` when it can."""
        if quantity <= self.room:
            return None
        return (
            f"you may hold {self.limit} helmets; "
            f"{self.held} out and {self.pending} on unused passes leave room for {self.room}"
        )
