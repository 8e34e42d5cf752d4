"""Run Alembic programmatically, so that an installed `dealgraph` can migrate any database."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

import migrations


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str) -> None:
    """Bring the database to the latest revision (blocking; call from a thread)."""
    command.upgrade(alembic_config(database_url), "head")


def is_at_head(connection: Connection, database_url: str) -> bool:
    script = ScriptDirectory.from_config(alembic_config(database_url))
    current = MigrationContext.configure(connection).get_current_heads()
    return set(current) == set(script.get_heads())
