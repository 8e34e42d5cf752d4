"""recycle bin indexes

`deletedOpportunities` pages the deals in the recycle bin newest deletion first: a partial
index on (deleted_at, id) WHERE deleted_at IS NOT NULL serves that page however many live
deals there are. `purgeOpportunity` removes the import records naming the purged deal: an
index on import_items (kind, record_id) finds them without reading every import's items.

opportunity_contacts already has created_at (set when a contact is linked, on every row):
removing the primary contact promotes the oldest remaining link by it, so nothing is
backfilled here.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 17:50:00.000000
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision: str = '0012'
down_revision: Union[str, Sequence[str], None] = '0011'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

IN_BIN = sa.text('deleted_at IS NOT NULL')


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('opportunities', schema=None) as batch_op:
        batch_op.create_index(
            'ix_opportunities_recycle_bin', ['deleted_at', 'id'], unique=False,
            postgresql_where=IN_BIN, sqlite_where=IN_BIN,
        )
    with op.batch_alter_table('import_items', schema=None) as batch_op:
        batch_op.create_index('ix_import_items_record', ['kind', 'record_id'], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('import_items', schema=None) as batch_op:
        batch_op.drop_index('ix_import_items_record')
    with op.batch_alter_table('opportunities', schema=None) as batch_op:
        batch_op.drop_index('ix_opportunities_recycle_bin')
