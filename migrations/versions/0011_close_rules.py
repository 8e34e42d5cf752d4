"""close rules: stage changes keep the actual close date; repair forced probabilities

Before 0.2, closing a deal forced its probability to 100 (won) or 0 (lost) but left a
manual probability flagged as manual, so a reopened deal kept the forced figure as if a
person had chosen it. This revision:

- adds `stage_changes.actual_close_date` (the deal's actual close date after the change),
  filled for the existing moves into a closed stage with the date they were made;
- clears the manual flag of closed deals (their probability is the stage's);
- gives the open deals that were reopened after a close and still carry a forced 0 or 100
  with the manual flag their stage's default probability again (version + 1).

It logs how many deals it repaired (a warning of the "alembic.runtime.migration" logger when
it changed any).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 18:00:00.000000
"""
import logging
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision: str = '0011'
down_revision: Union[str, Sequence[str], None] = '0010'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

log = logging.getLogger("alembic.runtime.migration")

CLOSED = "SELECT key FROM sales_stages WHERE is_closed"
OPEN = "SELECT key FROM sales_stages WHERE NOT is_closed"
REOPENED = (
    "SELECT 1 FROM stage_changes sc WHERE sc.opportunity_id = opportunities.id "
    f"AND sc.from_stage IN ({CLOSED})"
)


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('stage_changes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('actual_close_date', sa.Date(), nullable=True))
    bind = op.get_bind()
    day = "DATE(changed_at)" if bind.dialect.name == "sqlite" else "CAST(changed_at AS DATE)"
    bind.execute(sa.text(
        f"UPDATE stage_changes SET actual_close_date = {day} WHERE to_stage IN ({CLOSED})"
    ))
    closed = bind.execute(sa.text(
        "UPDATE opportunities SET probability_is_manual = false "
        f"WHERE probability_is_manual AND sales_stage IN ({CLOSED})"
    )).rowcount
    reopened = bind.execute(sa.text(
        "UPDATE opportunities SET probability_is_manual = false, version = version + 1, "
        "probability = (SELECT s.probability FROM sales_stages s "
        "WHERE s.key = opportunities.sales_stage) "
        f"WHERE probability_is_manual AND probability IN (0, 100) AND sales_stage IN ({OPEN}) "
        f"AND EXISTS ({REOPENED})"
    )).rowcount
    # a warning, so that `dealgraph migrate` and `serve` show it whenever rows changed
    (log.warning if reopened or closed else log.info)(
        "0011: %d reopened deals got their stage's probability back; %d closed deals "
        "lost a manual flag", reopened, closed,
    )


def downgrade() -> None:
    """Downgrade schema (the repaired probabilities stay repaired)."""
    with op.batch_alter_table('stage_changes', schema=None) as batch_op:
        batch_op.drop_column('actual_close_date')
