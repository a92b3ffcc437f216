"""Schema changes go through Alembic: every revision upgrades and downgrades cleanly."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect
from sqlmodel import SQLModel

import helmet_cloud.models  # noqa: F401
from helmet_cloud.adapters.database import alembic_config, make_engine


def test_upgrade_downgrade_upgrade_matches_the_models(database_url: str) -> None:
    cfg = alembic_config(database_url)
    command.upgrade(cfg, "head")
    command.downgrade(cfg, "base")
    command.upgrade(cfg, "head")
    engine = make_engine(database_url)
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert set(SQLModel.metadata.tables) <= tables


def test_the_migrations_describe_the_models_exactly(database_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    command.upgrade(alembic_config(database_url), "head")
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    finally:
        engine.dispose()
    assert diff == [], "models changed without a migration: run alembic revision --autogenerate"
