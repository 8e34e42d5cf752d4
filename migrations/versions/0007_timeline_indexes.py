"""timeline indexes

The timelines of a deal and of an account find the lead conversion that made them by the
lead's converted_opportunity_id / converted_account_id: indexed, so that this costs no scan
of every lead.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 18:50:00.000000
"""
from typing import Sequence, Union

from alembic import op


# revision identifiers, used by Alembic.
revision: str = '0007'
down_revision: Union[str, Sequence[str], None] = '0006'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f('ix_leads_converted_opportunity_id'), ['converted_opportunity_id'],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f('ix_leads_converted_account_id'), ['converted_account_id'], unique=False
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_leads_converted_account_id'))
        batch_op.drop_index(batch_op.f('ix_leads_converted_opportunity_id'))
