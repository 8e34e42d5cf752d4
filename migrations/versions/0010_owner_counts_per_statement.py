"""owner counts kept per statement on PostgreSQL

0009 kept `opportunity_owner_counts` with a row-level trigger: every inserted deal updated its
owner's row once. In one transaction those updates pile up row versions of the same few rows
that nothing can prune before the commit, and each update walks them all: a
1,000,000-deal load (one transaction) slowed to a crawl. A statement-level trigger with
transition tables updates each owner's row once per statement instead (an INSERT of a
thousand rows: one update per owner). SQLite keeps 0009's triggers (no row versions there).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-28 00:40:00.000000
"""
from typing import Sequence, Union

from alembic import op


# revision identifiers, used by Alembic.
revision: str = '0010'
down_revision: Union[str, Sequence[str], None] = '0009'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# Each branch names only the transition tables its trigger has (plpgsql plans a statement
# when it first runs it).
CHANGES = {
    "INSERT": "SELECT assigned_to_id, count(*) FROM new_rows WHERE deleted_at IS NULL "
              "GROUP BY assigned_to_id",
    "DELETE": "SELECT assigned_to_id, -count(*) FROM old_rows WHERE deleted_at IS NULL "
              "GROUP BY assigned_to_id",
    "UPDATE": "SELECT owner_id, sum(change) FROM ("
              "SELECT assigned_to_id AS owner_id, -1 AS change FROM old_rows "
              "WHERE deleted_at IS NULL UNION ALL "
              "SELECT assigned_to_id, 1 FROM new_rows WHERE deleted_at IS NULL"
              ") AS changes GROUP BY owner_id HAVING sum(change) <> 0",
}
UPSERT = (
    "INSERT INTO opportunity_owner_counts AS counts (owner_id, live) {changes} "
    "ON CONFLICT (owner_id) DO UPDATE SET live = counts.live + EXCLUDED.live;"
)
FUNCTION = f"""
    CREATE FUNCTION dealgraph_count_live_opportunity_rows() RETURNS trigger AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN {UPSERT.format(changes=CHANGES["INSERT"])}
        ELSIF TG_OP = 'DELETE' THEN {UPSERT.format(changes=CHANGES["DELETE"])}
        ELSE {UPSERT.format(changes=CHANGES["UPDATE"])}
        END IF;
        RETURN NULL;
    END
    $$ LANGUAGE plpgsql
"""


def _triggers(function: str) -> list[str]:
    # transition tables: OLD TABLE where there are old rows, NEW TABLE where there are new ones
    return [
        f"""
        CREATE TRIGGER opportunities_count_live_{event.lower()}
        AFTER {event} ON opportunities REFERENCING {tables}
        FOR EACH STATEMENT EXECUTE FUNCTION {function}()
        """
        for event, tables in (
            ("INSERT", "NEW TABLE AS new_rows"),
            ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
            ("DELETE", "OLD TABLE AS old_rows"),
        )
    ]


def upgrade() -> None:
    """Upgrade schema."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER opportunities_count_live ON opportunities")
    op.execute("DROP FUNCTION dealgraph_count_live_opportunities()")
    op.execute(FUNCTION)
    for statement in _triggers("dealgraph_count_live_opportunity_rows"):
        op.execute(statement)


def downgrade() -> None:
    """Downgrade schema."""
    if op.get_bind().dialect.name != "postgresql":
        return
    for event in ("insert", "update", "delete"):
        op.execute(f"DROP TRIGGER opportunities_count_live_{event} ON opportunities")
    op.execute("DROP FUNCTION dealgraph_count_live_opportunity_rows()")
    from importlib import import_module

    previous = import_module("migrations.versions.0009_opportunity_owner_counts")
    for statement in previous.POSTGRESQL:
        op.execute(statement)
