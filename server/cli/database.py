"""The database: migrations."""

from __future__ import annotations

from server import migrate as migrations
from server.cli.common import DatabaseUrl, err, settings_for


def migrate(database_url: DatabaseUrl = None) -> None:
    """Migrate the database to the latest schema."""
    settings = settings_for(database_url)
    migrations.upgrade(settings.database_url)
    err.print("database is at the latest revision")
