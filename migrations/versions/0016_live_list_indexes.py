"""live list indexes

A list's page and its totalCount read only the rows not in the recycle bin (deleted_at IS
NULL). A partial index on those rows in the list's usual order (accounts, contacts, leads and
products by name, quotes by creation, with their deal: the quote's visibility) reads the
page without sorting and counts without touching the table (an index-only scan on PostgreSQL, a covering index on SQLite), where the
count read every row of the table.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 19:40:00.000000
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision: str = '0016'
down_revision: Union[str, Sequence[str], None] = '0015'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

LIVE = sa.text('deleted_at IS NULL')
INDEXES = (
    ('accounts', 'ix_accounts_live_name', ['name', 'id']),
    ('contacts', 'ix_contacts_live_name', ['last_name', 'id']),
    ('leads', 'ix_leads_live_name', ['last_name', 'id']),
    ('products', 'ix_products_live_name', ['name', 'id']),
    ('quotes', 'ix_quotes_live_created_at', ['created_at', 'id', 'opportunity_id']),
)


def upgrade() -> None:
    """Upgrade schema."""
    for table, name, columns in INDEXES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(
                name, columns, unique=False, postgresql_where=LIVE, sqlite_where=LIVE)


def downgrade() -> None:
    """Downgrade schema."""
    for table, name, _columns in reversed(INDEXES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(name)
