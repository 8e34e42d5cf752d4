"""tokens: every change that may refuse a token is announced (PostgreSQL)

The server keeps the viewers of the tokens it has verified for a few seconds
(resolvers/tokens.py). So that a revoked token, or a deactivated user, is refused at once in
every process, whatever made the change (a mutation, the CLI, psql), these triggers NOTIFY on
the channel `dealgraph_tokens`: the token's hash when an api_tokens row changes or goes, "*"
for any change to users (a user's fields, role, activity or place in the hierarchy: the
viewers of a manager's team). SQLite has no NOTIFY: there the cache's lifetime bounds what a
process misses of another's writes.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 11:00:00.000000
"""
from typing import Sequence, Union

from alembic import op


# revision identifiers, used by Alembic.
revision: str = '0014'
down_revision: Union[str, Sequence[str], None] = '0013'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

FUNCTION = """
    CREATE FUNCTION dealgraph_tokens_changed() RETURNS trigger AS $$
    BEGIN
        IF TG_LEVEL = 'ROW' THEN
            PERFORM pg_notify('dealgraph_tokens', OLD.token_hash);
        ELSE
            PERFORM pg_notify('dealgraph_tokens', '*');
        END IF;
        RETURN NULL;
    END
    $$ LANGUAGE plpgsql
"""
TRIGGERS = [
    """CREATE TRIGGER api_tokens_changed AFTER UPDATE OR DELETE ON api_tokens
       FOR EACH ROW EXECUTE FUNCTION dealgraph_tokens_changed()""",
    """CREATE TRIGGER api_tokens_truncated AFTER TRUNCATE ON api_tokens
       FOR EACH STATEMENT EXECUTE FUNCTION dealgraph_tokens_changed()""",
    """CREATE TRIGGER users_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON users
       FOR EACH STATEMENT EXECUTE FUNCTION dealgraph_tokens_changed()""",
]


def upgrade() -> None:
    """Upgrade schema."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(FUNCTION)
    for statement in TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    """Downgrade schema."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER users_changed ON users")
    op.execute("DROP TRIGGER api_tokens_truncated ON api_tokens")
    op.execute("DROP TRIGGER api_tokens_changed ON api_tokens")
    op.execute("DROP FUNCTION dealgraph_tokens_changed()")
