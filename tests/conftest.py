"""Fixtures: one migrated database per session (SQLite, or PostgreSQL when
DEALGRAPH_TEST_DATABASE_URL is set), emptied before every test; the ASGI app; role clients."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import time
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

import models
from models.base import Base
from models.seed import insert_defaults
from resolvers.auth import create_token
from resolvers.numbering import next_number
from server.app import create_app
from server.migrate import upgrade
from server.settings import Settings

TEST_DATABASE_URL = os.environ.get("DEALGRAPH_TEST_DATABASE_URL")


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    if TEST_DATABASE_URL:
        return TEST_DATABASE_URL
    return f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"


@pytest.fixture(scope="session")
def is_postgres(database_url: str) -> bool:
    return database_url.startswith("postgresql")


async def _reset_postgres_schema(url: str) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    async with engine.begin() as connection:
        await connection.execute(text("DROP SCHEMA public CASCADE"))
        await connection.execute(text("CREATE SCHEMA public"))
    await engine.dispose()


@pytest.fixture(scope="session")
async def migrated_url(database_url: str) -> str:
    if database_url.startswith("postgresql"):
        await _reset_postgres_schema(database_url)
    await asyncio.to_thread(upgrade, database_url)
    return database_url


@pytest.fixture(scope="session")
def settings(migrated_url: str) -> Settings:
    # planner="verify": every query the planner covers also runs through graphql-core, and any
    # difference is recorded (see no_planner_mismatches below).
    # token_cache_seconds=0: every request looks its token up, whatever the database (the
    # cache is tested in tests/test_tokens.py), so statement counts do not depend on the order
    return Settings(database_url=migrated_url, planner="verify", token_cache_seconds=0)


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[Any]:
    application = create_app(settings)
    yield application
    await application.state.broker.close()
    await application.state.engine.dispose()


# --- planner verification (added with tests/test_planner.py) ----------------------------


def graphql_schema(app: Any) -> Any:
    """The Strawberry schema behind an app's /graphql route (AuthMiddleware → GraphQLApp)."""
    route = next(r for r in app.routes if getattr(r, "path", None) == "/graphql")
    return route.endpoint.app.schema


@pytest.fixture(autouse=True)
def no_planner_mismatches(request: pytest.FixtureRequest) -> Iterator[None]:
    """In "verify" mode every planned query is also resolved by graphql-core; a test fails if
    any of its queries came out differently (the list is emptied first: no cascading)."""
    if "app" not in request.fixturenames:  # no requests to the suite's app
        yield
        return
    plans = getattr(graphql_schema(request.getfixturevalue("app")), "plans", None)
    if plans is None:
        yield
        return
    plans.mismatches.clear()
    yield
    mismatches = list(plans.mismatches)
    plans.mismatches.clear()
    assert not mismatches, f"planned execution differs from graphql-core: {mismatches}"


@pytest.fixture
async def public_app(settings: Settings) -> AsyncIterator[Any]:
    """A second app over the same database with DEALGRAPH_SHARING=PUBLIC (its planned queries
    verified too)."""
    application = create_app(settings.model_copy(update={"sharing": "PUBLIC"}))
    plans = graphql_schema(application).plans
    yield application
    await application.state.engine.dispose()
    assert not plans.mismatches, f"planned execution differs from graphql-core: {plans.mismatches}"


# -------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def engine(app: Any) -> AsyncEngine:
    return app.state.engine  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def sessions(app: Any) -> async_sessionmaker[AsyncSession]:
    return app.state.sessions  # type: ignore[no-any-return]


DATA_TABLES = [t.name for t in reversed(Base.metadata.sorted_tables)]


@pytest.fixture(autouse=True)
async def clean_database(request: pytest.FixtureRequest) -> None:
    """Every test starts from the reference data of a freshly migrated database."""
    if "no_database" in request.keywords:
        return
    engine: AsyncEngine = request.getfixturevalue("engine")
    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            await connection.execute(
                text(f"TRUNCATE {', '.join(DATA_TABLES)} RESTART IDENTITY CASCADE")
            )
        else:
            for table in DATA_TABLES:
                await connection.execute(text(f"DELETE FROM {table}"))
        await connection.run_sync(insert_defaults)


@pytest.fixture
async def db(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session for arranging data and checking results; commit to make data visible."""
    async with sessions() as session:
        yield session


class Statements:
    """Counts SQL statements sent by the engine."""

    def __init__(self) -> None:
        self.count = 0
        self.sql: list[str] = []

    def __call__(self, *args: Any) -> None:
        self.count += 1
        self.sql.append(args[2])


@pytest.fixture
def statements(engine: AsyncEngine) -> Iterator[Statements]:
    counter = Statements()
    event.listen(engine.sync_engine, "before_cursor_execute", counter)
    yield counter
    event.remove(engine.sync_engine, "before_cursor_execute", counter)


# --- arranging data --------------------------------------------------------------


class Factory:
    """Inserts records directly (the rules under test live in resolvers/)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def _add(self, obj: Any) -> Any:
        self.session.add(obj)
        await self.session.flush()
        return obj

    async def user(
        self, username: str, role: str = "SALES_REP", manager: models.User | None = None
    ) -> models.User:
        return await self._add(  # type: ignore[no-any-return]
            models.User(
                username=username, role=role, full_name=username.title(),
                email=f"{username}@example.com", manager_id=manager.id if manager else None,
            )
        )

    async def token(self, user: models.User) -> str:
        return await create_token(self.session, user, "test")

    async def account(self, owner: models.User, name: str = "Acme", **kw: Any) -> models.Account:
        return await self._add(  # type: ignore[no-any-return]
            models.Account(
                number=await next_number(self.session, "Account"), name=name,
                assigned_to_id=owner.id, created_by_id=owner.id, **kw,
            )
        )

    async def contact(
        self, owner: models.User, last_name: str = "Rossi", **kw: Any
    ) -> models.Contact:
        return await self._add(  # type: ignore[no-any-return]
            models.Contact(
                number=await next_number(self.session, "Contact"), last_name=last_name,
                assigned_to_id=owner.id, created_by_id=owner.id, **kw,
            )
        )

    async def lead(self, owner: models.User, last_name: str = "Bianchi", **kw: Any) -> models.Lead:
        kw.setdefault("company", "Bianchi S.r.l.")
        return await self._add(  # type: ignore[no-any-return]
            models.Lead(
                number=await next_number(self.session, "Lead"), last_name=last_name,
                assigned_to_id=owner.id, created_by_id=owner.id, **kw,
            )
        )

    async def campaign(
        self, owner: models.User, name: str = "Spring Expo", **kw: Any
    ) -> models.Campaign:
        return await self._add(  # type: ignore[no-any-return]
            models.Campaign(
                number=await next_number(self.session, "Campaign"), name=name,
                assigned_to_id=owner.id, created_by_id=owner.id, **kw,
            )
        )

    async def product(
        self, name: str = "Widget", unit_price: str = "100.00", **kw: Any
    ) -> models.Product:
        return await self._add(  # type: ignore[no-any-return]
            models.Product(
                number=await next_number(self.session, "Product"), name=name,
                unit_price=Decimal(unit_price), **kw,
            )
        )

    async def opportunity(
        self,
        owner: models.User,
        name: str = "Deal",
        stage: str = "PROSPECTING",
        amount: str = "1000.00",
        probability: str | None = None,
        close: dt.date | None = None,
        **kw: Any,
    ) -> models.Opportunity:
        stage_row = await self.session.get(models.SalesStage, stage)
        assert stage_row is not None
        opp = await self._add(
            models.Opportunity(
                number=await next_number(self.session, "Opportunity"), name=name,
                amount=Decimal(amount), sales_stage=stage,
                probability=Decimal(probability) if probability else stage_row.probability,
                expected_close_date=close or dt.date.today() + dt.timedelta(days=30),
                assigned_to_id=owner.id, created_by_id=owner.id, **kw,
            )
        )
        await self._add(
            models.StageChange(
                opportunity_id=opp.id, from_stage=None, to_stage=stage, amount=opp.amount,
                probability=opp.probability, expected_close_date=opp.expected_close_date,
                changed_by_id=owner.id,
            )
        )
        return opp  # type: ignore[no-any-return]

    async def quote(
        self, opp: models.Opportunity, lines: list[tuple[models.Product, str, str, str, str]],
        subject: str = "Offer", **kw: Any,
    ) -> models.Quote:
        """lines: (product, quantity, list price, discount %, tax %)."""
        quote = await self._add(
            models.Quote(
                number=await next_number(self.session, "Quote"), subject=subject,
                opportunity_id=opp.id, account_id=opp.account_id,
                created_by_id=opp.created_by_id, **kw,
            )
        )
        for position, (product, qty, price, discount, tax) in enumerate(lines):
            await self._add(
                models.QuoteLine(
                    quote_id=quote.id, position=position, product_id=product.id,
                    quantity=Decimal(qty), list_price=Decimal(price),
                    discount_percent=Decimal(discount), tax_percent=Decimal(tax),
                )
            )
        return quote  # type: ignore[no-any-return]


@pytest.fixture
def factory(db: AsyncSession) -> Factory:
    return Factory(db)


# --- clients -----------------------------------------------------------------------


class GraphQLClient:
    def __init__(self, app: Any, token: str | None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test", headers=headers
        )

    async def post(self, query: str, variables: dict[str, Any] | None = None) -> httpx.Response:
        return await self.http.post("/graphql", json={"query": query, "variables": variables or {}})

    async def query(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The response body; fails the test on HTTP errors."""
        response = await self.post(query, variables)
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    async def data(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """`data` of a response that must have no errors."""
        body = await self.query(query, variables)
        assert "errors" not in body, body["errors"]
        return body["data"]  # type: ignore[no-any-return]


@pytest.fixture
def client_for(app: Any, factory: Factory, db: AsyncSession) -> Any:
    async def make(user: models.User) -> GraphQLClient:
        token = await factory.token(user)
        await db.commit()
        return GraphQLClient(app, token)

    return make


@pytest.fixture
def anonymous_client(app: Any) -> GraphQLClient:
    return GraphQLClient(app, None)


@pytest.fixture
async def team(factory: Factory, db: AsyncSession) -> dict[str, models.User]:
    """admin; manager ← rep (+ rep2 below rep's colleague chain); other_manager ← other_rep."""
    admin = await factory.user("admin", "ADMIN")
    manager = await factory.user("manager", "MANAGER")
    rep = await factory.user("rep", "SALES_REP", manager)
    rep2 = await factory.user("rep2", "SALES_REP", manager)
    other_manager = await factory.user("other_manager", "MANAGER")
    other_rep = await factory.user("other_rep", "SALES_REP", other_manager)
    await db.commit()
    return {
        "admin": admin, "manager": manager, "rep": rep, "rep2": rep2,
        "other_manager": other_manager, "other_rep": other_rep,
    }


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "no_database: the test needs no database reset")


def root() -> Path:
    return Path(__file__).resolve().parent.parent


# --- an app that keeps verified tokens -----------------------------------------------------


async def cached_app(settings: Settings, seconds: float = 10, **updates: Any) -> Any:
    """An app with the token cache, in use (on PostgreSQL once its broker listens, which its
    lifespan starts in a server)."""
    application = create_app(
        settings.model_copy(update={"token_cache_seconds": seconds, **updates}))
    application.state.broker.start()
    deadline = time.monotonic() + 10
    while not application.state.tokens.active:
        assert time.monotonic() < deadline, "the broker does not listen"
        await asyncio.sleep(0.02)
    return application


async def stop_app(application: Any) -> None:
    await application.state.broker.close()
    await application.state.engine.dispose()
