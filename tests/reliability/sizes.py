"""How big each scenario runs: the CI size, or the documented full size from the environment."""

from __future__ import annotations

import os


def scale(name: str, ci: int) -> int:
    """``HELMET_<NAME>`` from the environment if set (docs/reliability.md gives the full sizes), else ``ci``."""
    return int(os.environ.get(f"HELMET_{name.upper()}", ci))
