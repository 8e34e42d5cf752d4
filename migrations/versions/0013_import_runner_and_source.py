"""import jobs: their runner and their file

An import job records the process that runs it (pid, host, the process's start) so that one
left RUNNING by a killed process is marked INTERRUPTED, and its file (the command's path or
a kept copy of the upload, with its SHA-256) so that it can be resumed.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 18:00:00.000000
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision: str = '0013'
down_revision: Union[str, Sequence[str], None] = '0012'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('import_jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('runner_pid', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('runner_host', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('runner_started', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('source_path', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('source_sha256', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('source_kept', sa.Boolean(), server_default=sa.false(),
                                      nullable=False))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('import_jobs', schema=None) as batch_op:
        for column in ('source_kept', 'source_sha256', 'source_path', 'runner_started',
                       'runner_host', 'runner_pid'):
            batch_op.drop_column(column)
