"""resolvers/raw.py: statements compiled once and run on the driver's connection give what
SQLAlchemy gives, open no transaction, and are seen by the engine's statement listeners; the
token lookup built on them."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import Numeric, bindparam, cast, event, select

import models
from resolvers import raw
from resolvers.auth import authenticate
from tests.conftest import Statements


async def in_transaction(connection: raw.Connection) -> bool:
    driver = connection.driver
    if connection.dialect.name == "postgresql":
        return bool(driver.is_in_transaction())
    return bool(driver.in_transaction)


async def test_compiled_rows_are_sqlalchemys(factory, team, db):
    # given: deals with decimals, dates and instants, read with IN lists (one of decimals, a
    # type SQLite's driver needs converted) and the ids parameter
    deals = [
        await factory.opportunity(team["rep"], f"Deal {i}", amount=f"{1000 + i}.25",
                                  close=dt.date(2027, 1, 1 + i))
        for i in range(4)
    ]
    await db.commit()
    model = models.Opportunity
    statement = (
        select(model.id, model.amount, model.probability, model.expected_close_date,
               model.created_at, model.name)
        .where(model.id.in_(raw.IDS[db.bind.dialect.name]),
               cast(model.amount, Numeric(18, 2)).in_([Decimal("1000.25"), Decimal("1002.25")]),
               model.assigned_to_id.in_([team["rep"].id, team["rep2"].id]))
        .order_by(model.id)
    )
    ids = [deal.id for deal in deals[:3]]

    # when
    connection = await raw.Connection.of(db)
    assert connection is not None
    compiled = raw.Compiled.of(statement, connection.dialect)
    rows = [tuple(row) for row in await compiled.fetch(connection, ids=ids)]
    expected = [
        tuple(row) for row in await db.execute(statement.params(ids=raw_ids(db, ids)))
    ]

    # then: the same values, of the same types (Decimal, date, aware datetime)
    assert [row[0] for row in rows] == [deals[0].id, deals[2].id]
    assert rows == expected
    assert [[type(value) for value in row] for row in rows] == [
        [type(value) for value in row] for row in expected
    ]
    assert rows[0][1] == Decimal("1000.25") and rows[0][4].tzinfo is not None


def raw_ids(db: Any, ids: list[int]) -> Any:
    """The ids parameter's value as SQLAlchemy's own execution takes it."""
    return ids if db.bind.dialect.name == "postgresql" else f"[{', '.join(map(str, ids))}]"


async def test_a_raw_read_opens_no_transaction_and_is_announced(engine, sessions, team, db):
    # given
    seen = Statements()
    statement = select(models.User.username).where(models.User.id == bindparam("user", 0))

    # when / then
    event.listen(engine.sync_engine, "before_cursor_execute", seen)
    try:
        async with sessions() as session:
            connection = await raw.Connection.of(session)
            assert connection is not None
            compiled = raw.Compiled.of(statement, connection.dialect, ("user",))
            rows = await compiled.fetch(connection, user=team["rep"].id)
            assert [tuple(row) for row in rows] == [("rep",)]
            assert not await in_transaction(connection)  # no BEGIN was sent for it
            assert seen.sql == [compiled.sql]

            await session.execute(select(models.User.id))  # SQLAlchemy's own: it begins
            assert await in_transaction(connection)
            await session.rollback()
            assert not await in_transaction(connection)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", seen)


async def test_the_token_lookup_gives_the_sessions_user(factory, team, sessions, db):
    # given
    token = await factory.token(team["rep"])
    await db.commit()

    async with sessions() as session:
        # when
        user = await authenticate(session, token)
        again = await authenticate(session, token)

        # then: a persistent User of this session, loaded, and the same one when asked again
        assert user is not None and user is again
        assert user.username == "rep" and user.created_at.tzinfo is not None
        assert await session.get(models.User, team["rep"].id) is user
        assert not session.dirty and not session.new
        assert await authenticate(session, token + "x") is None


async def test_a_revoked_token_or_an_inactive_user_is_refused(factory, team, sessions, db):
    # given
    revoked, inactive = await factory.token(team["rep"]), await factory.token(team["rep2"])
    await db.commit()
    async with sessions() as session:
        assert await authenticate(session, revoked) is not None

    # when
    for token_row in (await db.scalars(select(models.ApiToken))).all():
        if token_row.user_id == team["rep"].id:
            token_row.revoked_at = dt.datetime.now(dt.UTC)
    (await db.get(models.User, team["rep2"].id)).is_active = False  # type: ignore[union-attr]
    await db.commit()

    # then
    async with sessions() as session:
        assert await authenticate(session, revoked) is None
        assert await authenticate(session, inactive) is None
