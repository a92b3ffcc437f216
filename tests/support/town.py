"""A simulated town on its own embedded cloud and broker, for the simulator's tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from helmet_sim.broker import free_port
from helmet_sim.cloud_client import CloudClient
from helmet_sim.embedded import ADMIN, start_embedded
from helmet_sim.runner import cloud_settings
from helmet_sim.town import Town, TownOptions


@contextmanager
def embedded_town(tmp_path: Path, options: TownOptions) -> Iterator[Town]:
    """The town (not built yet), its cloud as its own process, signed in as the cloud's admin; all stopped after."""
    embedded = start_embedded(tmp_path / "cloud", port=free_port(), settings=cloud_settings(options))
    try:
        admin = CloudClient(embedded.base_url).login(ADMIN, embedded.admin_password)
        try:
            town = Town(
                options,
                workdir=tmp_path,
                cloud_url=embedded.base_url,
                admin=admin,
                sms_file=embedded.sms_file,
                mqtt_port=embedded.broker.port,
            )
            try:
                yield town
            finally:
                town.close()
        finally:
            admin.close()
    finally:
        embedded.stop()
