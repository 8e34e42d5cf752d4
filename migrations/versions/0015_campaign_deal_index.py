"""a campaign's live deals by close date

A campaign's deals are read as pages by close date (Campaign.opportunities, one LATERAL
subquery per campaign), counted (its totalCount and opportunityCount) and summed (its
pipeline and won amounts). A partial index on (campaign_id, expected_close_date, id) WHERE
deleted_at IS NULL reads each page without sorting and counts without touching the table; on
PostgreSQL it also carries (INCLUDE) the owner, stage, currency and amount, so that the
figures, visibility included, read only the index.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 18:40:00.000000
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision: str = '0015'
down_revision: Union[str, Sequence[str], None] = '0014'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

LIVE = sa.text('deleted_at IS NULL')


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('opportunities', schema=None) as batch_op:
        batch_op.create_index(
            'ix_opportunities_live_campaign', ['campaign_id', 'expected_close_date', 'id'],
            unique=False, postgresql_where=LIVE, sqlite_where=LIVE,
            postgresql_include=['assigned_to_id', 'sales_stage', 'currency', 'amount'],
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('opportunities', schema=None) as batch_op:
        batch_op.drop_index('ix_opportunities_live_campaign')
