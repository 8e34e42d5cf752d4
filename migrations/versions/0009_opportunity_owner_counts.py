"""live deals counted per owner

`opportunity_owner_counts` holds, per owner, the number of deals outside the recycle bin,
kept by triggers on `opportunities` (insert, delete, and updates of the owner or of
deleted_at). The total of an unfiltered deal list (the pipeline page's totalCount) then
sums one row per visible owner instead of counting every deal: constant as the table grows.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27 21:05:00.000000
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision: str = '0009'
down_revision: Union[str, Sequence[str], None] = '0008'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

POSTGRESQL = [
    """
    CREATE FUNCTION dealgraph_count_live_opportunities() RETURNS trigger AS $$
    BEGIN
        IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.deleted_at IS NULL THEN
            UPDATE opportunity_owner_counts SET live = live - 1
            WHERE owner_id = OLD.assigned_to_id;
        END IF;
        IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.deleted_at IS NULL THEN
            INSERT INTO opportunity_owner_counts (owner_id, live) VALUES (NEW.assigned_to_id, 1)
            ON CONFLICT (owner_id) DO UPDATE SET live = opportunity_owner_counts.live + 1;
        END IF;
        RETURN NULL;
    END
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER opportunities_count_live
    AFTER INSERT OR DELETE OR UPDATE OF assigned_to_id, deleted_at ON opportunities
    FOR EACH ROW EXECUTE FUNCTION dealgraph_count_live_opportunities()
    """,
]

SQLITE = [
    """
    CREATE TRIGGER opportunities_count_live_insert AFTER INSERT ON opportunities
    WHEN NEW.deleted_at IS NULL
    BEGIN
        INSERT INTO opportunity_owner_counts (owner_id, live) VALUES (NEW.assigned_to_id, 1)
        ON CONFLICT (owner_id) DO UPDATE SET live = live + 1;
    END
    """,
    """
    CREATE TRIGGER opportunities_count_live_delete AFTER DELETE ON opportunities
    WHEN OLD.deleted_at IS NULL
    BEGIN
        UPDATE opportunity_owner_counts SET live = live - 1 WHERE owner_id = OLD.assigned_to_id;
    END
    """,
    """
    CREATE TRIGGER opportunities_count_live_update
    AFTER UPDATE OF assigned_to_id, deleted_at ON opportunities
    BEGIN
        UPDATE opportunity_owner_counts SET live = live - 1
        WHERE OLD.deleted_at IS NULL AND owner_id = OLD.assigned_to_id;
        INSERT INTO opportunity_owner_counts (owner_id, live)
        SELECT NEW.assigned_to_id, 1 WHERE NEW.deleted_at IS NULL
        ON CONFLICT (owner_id) DO UPDATE SET live = live + 1;
    END
    """,
]


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        'opportunity_owner_counts',
        sa.Column('owner_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('live', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('owner_id', name=op.f('pk_opportunity_owner_counts')),
    )
    op.execute(
        "INSERT INTO opportunity_owner_counts (owner_id, live) "
        "SELECT assigned_to_id, count(*) FROM opportunities WHERE deleted_at IS NULL "
        "GROUP BY assigned_to_id"
    )
    for statement in POSTGRESQL if op.get_bind().dialect.name == "postgresql" else SQLITE:
        op.execute(statement)


def downgrade() -> None:
    """Downgrade schema."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER opportunities_count_live ON opportunities")
        op.execute("DROP FUNCTION dealgraph_count_live_opportunities()")
    else:
        for event in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER opportunities_count_live_{event}")
    op.drop_table('opportunity_owner_counts')
