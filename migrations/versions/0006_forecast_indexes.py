"""forecast indexes

A covering index for the forecasts and the budget attainment of a rep or a team: the owner,
then the expected close date, then every other column those grouped queries filter, group or
sum on, so that they read the index alone (SQLite: COVERING INDEX; PostgreSQL: Index Only
Scan) instead of one table row per deal. Measured in bench/forecast.py (bench/README.md).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 18:30:00.000000
"""
from typing import Sequence, Union

from alembic import op


# revision identifiers, used by Alembic.
revision: str = '0006'
down_revision: Union[str, Sequence[str], None] = '0005'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

COLUMNS = [
    'assigned_to_id', 'expected_close_date', 'sales_stage', 'currency', 'amount',
    'probability', 'actual_close_date', 'deleted_at',
]


def upgrade() -> None:
    """Upgrade schema."""
    op.create_index('ix_opportunities_owner_forecast', 'opportunities', COLUMNS, unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index('ix_opportunities_owner_forecast', table_name='opportunities')
