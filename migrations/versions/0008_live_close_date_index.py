"""live deals' close-date index

The pipeline page lists the deals that are not in the recycle bin by expected close date
(then id) and counts them: a partial index on (expected_close_date, id) WHERE deleted_at IS
NULL serves both the page (no sort, no filter on the rows) and the count (an index-only scan
on PostgreSQL), in place of the full index on the same columns.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27 20:20:00.000000
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision: str = '0008'
down_revision: Union[str, Sequence[str], None] = '0007'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

LIVE = sa.text('deleted_at IS NULL')


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('opportunities', schema=None) as batch_op:
        batch_op.drop_index('ix_opportunities_close_date_id')
        batch_op.create_index(
            'ix_opportunities_live_close_date', ['expected_close_date', 'id'], unique=False,
            postgresql_where=LIVE, sqlite_where=LIVE,
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('opportunities', schema=None) as batch_op:
        batch_op.drop_index('ix_opportunities_live_close_date')
        batch_op.create_index(
            'ix_opportunities_close_date_id', ['expected_close_date', 'id'], unique=False
        )
