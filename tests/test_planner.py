"""Planned execution (planner/) against graphql-core: the same request must give the
same response, byte for byte (key order included), whether the planner answers it or not.

Two apps share the test database: one with `planner="on"`, one with `planner="off"`. Every
request goes to both and the bodies must be identical; the planner's `stats` show that it did
answer (or, for errors and uncovered operations, that it stepped aside). Most requests go to
the planner's app twice: the first request of a query text is parsed, validated and planned,
the next ones run their cached plan; both through the one door (planner/door.py).

Most of the queries come from `QueryGenerator`: random selections over the `opportunities`
connection (fields, relations, aliases, fragments, @include/@skip, paging, filters, ordering),
reproducible from a seed. A failing case names its seed; `QueryGenerator(seed).case()`
rebuilds it. tests/test_planner_schema.py generates queries over the whole read schema (every
root field, every role, PRIVATE and PUBLIC sharing) with these apps and `compare`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import event, update

import models
from server.app import create_app
from server.settings import Settings
from tests.conftest import GraphQLClient, Statements, graphql_schema
from tests.test_query_count import seed_deals

PIPELINE = (Path(__file__).parent / "queries" / "pipeline.graphql").read_text()

ROLES = ("admin", "manager", "rep", "rep2", "other_rep")
NOW = dt.datetime.now(dt.UTC)
TODAY = dt.date.today()
NAMES = ["Alpha", "beta deal", "Gamma", "DELTA", "Épsilon", "alpha two"]


# --- the two apps ---------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def open_apps(settings: Settings) -> AsyncIterator[dict[str, Any]]:
    """The same database behind the planner ("on") and graphql-core alone ("off")."""
    found = {
        mode: create_app(settings.model_copy(update={"planner": mode})) for mode in ("on", "off")
    }
    try:
        yield found
    finally:
        for application in found.values():
            await application.state.broker.close()
            await application.state.engine.dispose()


@pytest.fixture(scope="module")
async def apps(settings: Settings) -> AsyncIterator[dict[str, Any]]:
    async with open_apps(settings) as found:
        yield found


@dataclass
class Both:
    """One viewer's clients of both apps."""

    on: GraphQLClient
    off: GraphQLClient
    role: str


@pytest.fixture
def clients(apps, team, factory, db) -> Any:
    tokens: dict[str, str] = {}

    async def make(role: str, pair: dict[str, Any] | None = None) -> Both:
        """`role`'s clients of `apps`, or of another pair from `open_apps`."""
        if role not in tokens:
            tokens[role] = await factory.token(team[role])
            await db.commit()
        token, pair = tokens[role], pair or apps
        return Both(GraphQLClient(pair["on"], token), GraphQLClient(pair["off"], token), role)

    return make


def plans_of(apps: dict[str, Any]) -> Any:
    plans = graphql_schema(apps["on"]).plans
    assert plans.mode == "on"
    assert getattr(graphql_schema(apps["off"]), "plans", None) is None
    return plans


def first_difference(a: Any, b: Any, path: str = "$") -> str | None:
    """Where two JSON values first differ (key order counts), or None."""
    if isinstance(a, dict) and isinstance(b, dict):
        if list(a) != list(b):
            return f"{path}: keys {list(a)} != {list(b)}"
        for key in a:
            found = first_difference(a[key], b[key], f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} items != {len(b)} items"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            found = first_difference(x, y, f"{path}[{i}]")
            if found:
                return found
        return None
    if a != b or type(a) is not type(b):
        return f"{path}: {a!r} != {b!r}"
    return None


def describe(response: httpx.Response) -> str:
    text = response.text
    return text if len(text) < 3000 else text[:3000] + "…"


async def compare(
    both: Both, query: str, variables: dict[str, Any] | None = None, times: int = 1
) -> tuple[httpx.Response, httpx.Response, str | None]:
    """Both apps' responses, and how they differ (None: byte-identical). The planner's app gets
    the request `times` times: the first request of a query text is planned, later ones run
    the cached plan (planner/door.py)."""
    off = await both.off.post(query, variables)
    expected = (off.status_code, off.headers.get("content-type"), off.content)
    for attempt in range(1, times + 1):
        on = await both.on.post(query, variables)
        if (on.status_code, on.headers.get("content-type"), on.content) == expected:
            continue
        try:
            where = first_difference(on.json(), off.json())
        except ValueError:
            where = "not JSON"
        return on, off, (
            f"as {both.role}, request {attempt} of {times}: {where}\n"
            f"status {on.status_code} / {off.status_code}, content-type "
            f"{on.headers.get('content-type')} / {off.headers.get('content-type')}\n"
            f"query:\n{query}\nvariables: {json.dumps(variables)}\n"
            f"planner on:  {describe(on)}\nplanner off: {describe(off)}"
        )
    return on, off, None


# --- data ---------------------------------------------------------------------------------


@pytest.fixture
async def deals(team, factory, db) -> dict[str, Any]:
    """~30 deals of six owners over every stage, two currencies, with and without accounts,
    campaigns and quotes; records that are deleted, or owned outside the viewer's team."""
    rep, rep2, manager = team["rep"], team["rep2"], team["manager"]
    admin, other_rep, other_manager = team["admin"], team["other_rep"], team["other_manager"]
    db.add(models.Currency(code="USD", rate=Decimal("1.080000")))
    await db.flush()

    widget = await factory.product("Widget", "100.00", code="W-1", tax_percent=Decimal("22"))
    gadget = await factory.product("Gadget", "49.90")  # no code
    retired = await factory.product("Retired", "10.00", code="R-1", deleted_at=NOW)  # → null
    inactive = await factory.product("Old model", "5.00", code="O-1", is_active=False)

    expo = await factory.campaign(
        admin, "Spring Expo", status="Active", type="Trade Show", budget_cost=Decimal("5000.00"),
        actual_cost=Decimal("4200.50"), expected_revenue=Decimal("90000.00"),
        expected_close_date=TODAY + dt.timedelta(days=60), description="The big one",
    )
    webinar = await factory.campaign(manager, "Webinar")  # status, type, costs: null
    gone_campaign = await factory.campaign(admin, "Cancelled", deleted_at=NOW)

    acme = await factory.account(
        rep, "Acme", industry="Technology", city="Milano", country="Italy",
        website="https://acme.example", phone="+39 02 1234", email="info@acme.example",
        annual_revenue=Decimal("1250000.00"), employees=120, description="Key account",
    )
    beta = await factory.account(rep, "Beta")  # optional fields null
    gamma = await factory.account(rep2, "Gamma", industry="Retail")  # rep's colleague's
    omega = await factory.account(other_rep, "Omega", industry="Energy")  # another team's
    delta = await factory.account(manager, "Delta", city="Torino")
    ghost = await factory.account(rep, "Ghost", deleted_at=NOW)  # deleted: null
    contact = await factory.contact(rep, "Verdi", first_name="Anna", email="anna@example.com")

    stages = [
        "PROSPECTING", "QUALIFICATION", "NEEDS_ANALYSIS", "VALUE_PROPOSITION",
        "ID_DECISION_MAKERS", "PERCEPTION_ANALYSIS", "PROPOSAL_PRICE_QUOTE",
        "NEGOTIATION_REVIEW", "CLOSED_WON", "CLOSED_LOST",
    ]
    owners = [rep, rep, rep2, manager, other_rep, admin, rep, other_manager]
    accounts = [acme, None, gamma, omega, beta, delta, ghost, acme, None]
    campaigns = [expo, None, webinar, None, gone_campaign, expo, None]
    amounts = ["1000.00", "2500.50", "0.00", "1000.00", "99999.99", "15.10", "750.00", "1000.00"]
    shared_created = NOW - dt.timedelta(days=40)
    created = []
    for i in range(30):
        stage = stages[i % len(stages)]
        closed = stage.startswith("CLOSED")
        owner = owners[i % len(owners)]
        account = accounts[i % len(accounts)]
        campaign = campaigns[i % len(campaigns)]
        deal = await factory.opportunity(
            owner,
            name=f"{NAMES[i % len(NAMES)]} {i:02}",
            stage=stage,
            amount=amounts[i % len(amounts)],
            probability="33.33" if i % 9 == 4 else None,
            close=TODAY + dt.timedelta(days=[-20, -1, 0, 1, 15, 90, 15][i % 7]),
            currency="USD" if i % 4 == 3 else "EUR",
            account_id=account.id if account else None,
            campaign_id=campaign.id if campaign else None,
            type=[None, "NEW_BUSINESS", "EXISTING_BUSINESS"][i % 3],
            lead_source=[None, "WEB_SITE", "PARTNER", "TRADE_SHOW"][i % 4],
            next_step="Call back" if i % 5 == 0 else None,
            description="Long\nmulti-line \"quoted\" text ✓" if i % 7 == 0 else None,
            lost_reason="Price" if stage == "CLOSED_LOST" else None,
            actual_close_date=TODAY - dt.timedelta(days=i) if closed else None,
            probability_is_manual=i % 9 == 4,
            amount_source="QUOTE" if i % 6 == 1 else "MANUAL",
            version=1 + i % 3,
            stage_changed_at=NOW - dt.timedelta(days=i, hours=3),
            deleted_at=NOW if i == 29 else None,  # in the recycle bin: never listed
        )
        if i % 5 == 2:
            deal.created_at = deal.updated_at = shared_created  # ties in CREATED_AT/UPDATED_AT
        if i % 4 == 1:
            deal.created_by_id = admin.id  # createdBy differs from assignedTo
        created.append(deal)
    await db.flush()

    # quotes: several lines (one of a deleted product), none, deleted, synced, with a contact
    lines = [
        (widget, "2", "100.00", "10", "22"),
        (gadget, "1.5", "49.90", "0", "4"),
        (retired, "3", "10.00", "100", "0"),
        (inactive, "0.333", "5.00", "12.5", "10"),
    ]
    for i, deal in enumerate(created):
        if i % 3 == 0:
            await factory.quote(deal, lines[: 1 + i % 4], f"Offer {i}", is_synced=i % 2 == 0,
                                stage="DELIVERED" if i % 2 else "CREATED",
                                valid_until=TODAY + dt.timedelta(days=i) if i % 2 else None,
                                contact_id=contact.id if i % 6 == 0 else None)
        if i % 5 == 1:
            await factory.quote(deal, [], f"Empty {i}")  # no lines: totals 0.00
        if i % 7 == 3:
            await factory.quote(deal, lines[:2], f"Withdrawn {i}", deleted_at=NOW)
            await factory.quote(deal, lines[1:3], f"Second {i}")
    await db.commit()
    return {"deals": created}


# --- the query generator ------------------------------------------------------------------

# Each type the generator selects from: its leaf fields, and its relations (field → type).
TYPES: dict[str, tuple[list[str], dict[str, str]]] = {
    "Opportunity": (
        ["id", "number", "name", "amount", "currency", "probability", "weightedAmount",
         "forecastCategory", "expectedCloseDate", "actualCloseDate", "type", "leadSource",
         "nextStep", "isClosed", "isWon", "daysToClose", "isOverdue", "ageDays", "daysInStage",
         "amountSource", "probabilityIsManual", "lostReason", "description", "createdAt",
         "updatedAt", "version"],
        {"salesStage": "SalesStage", "assignedTo": "User", "createdBy": "User",
         "account": "Account", "campaign": "Campaign", "quotes": "Quote"},
    ),
    "SalesStage": (
        ["key", "name", "probability", "position", "isClosed", "isWon", "isActive",
         "forecastCategory"], {},
    ),
    "User": (["id", "username", "fullName", "email", "isActive", "role"], {"manager": "User"}),
    "Account": (
        ["id", "number", "name", "industry", "website", "phone", "email", "city", "country",
         "annualRevenue", "employees", "description", "createdAt", "updatedAt"],
        {"assignedTo": "User"},
    ),
    "Campaign": (
        ["id", "number", "name", "type", "status", "expectedCloseDate", "budgetCost",
         "actualCost", "expectedRevenue", "description", "createdAt", "updatedAt"],
        {"assignedTo": "User"},
    ),
    "Quote": (
        ["id", "number", "subject", "stage", "validUntil", "isSynced", "subtotal",
         "discountTotal", "netTotal", "taxTotal", "grandTotal", "createdAt", "updatedAt"],
        {"lines": "QuoteLine", "opportunity": "Opportunity", "account": "Account",
         "contact": "Contact"},
    ),
    "QuoteLine": (
        ["description", "quantity", "listPrice", "discountPercent", "taxPercent", "netTotal"],
        {"product": "Product"},
    ),
    "Product": (
        ["id", "number", "name", "code", "unitPrice", "taxPercent", "isActive", "createdAt",
         "updatedAt"], {},
    ),
    "Contact": (
        ["id", "number", "firstName", "lastName", "email", "phone", "title", "leadSource",
         "description", "createdAt", "updatedAt"], {},
    ),
}

# Interfaces a type implements (for `... on Node { id }`).
INTERFACES = {"Opportunity": "Node", "User": "Node", "Account": "Node", "Campaign": "Node",
              "Quote": "Node", "Product": "Node", "Contact": "Node"}

STAGE_KEYS = ["PROSPECTING", "QUALIFICATION", "NEEDS_ANALYSIS", "PROPOSAL_PRICE_QUOTE",
              "NEGOTIATION_REVIEW", "CLOSED_WON", "CLOSED_LOST"]
ORDER_FIELDS = ["NAME", "AMOUNT", "EXPECTED_CLOSE_DATE", "PROBABILITY", "WEIGHTED_AMOUNT",
                "CREATED_AT", "UPDATED_AT"]
CATEGORIES = ["PIPELINE", "BEST_CASE", "COMMIT", "CLOSED", "OMITTED"]
ENUM_KEYS = {"field", "direction", "forecastCategory"}
MAX_DEPTH = 4  # relation levels below a connection's node


def literal(value: Any, enum: bool = False) -> str:
    """A GraphQL literal for a JSON-like value (strings of ENUM_KEYS as enum values)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value if enum else json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(literal(v, enum) for v in value) + "]"
    return "{" + ", ".join(f"{k}: {literal(v, k in ENUM_KEYS)}" for k, v in value.items()) + "}"


@dataclass
class CursorRequest:
    """A cursor to fetch before the request: the one at `pick` (0–1) of the list in this
    order and filter, as the viewer sees it (null when the list is empty)."""

    order_by: Any
    filter: Any
    pick: float


@dataclass
class Case:
    seed: int
    query: str
    variables: dict[str, Any]
    cursors: dict[str, CursorRequest]
    roles: list[str]


@dataclass
class QueryGenerator:
    """Builds one random query over `opportunities` from a seed (same seed, same query)."""

    seed: int
    rng: random.Random = field(init=False)
    definitions: list[str] = field(default_factory=list)  # "$name: Type [= default]"
    variables: dict[str, Any] = field(default_factory=dict)
    cursors: dict[str, CursorRequest] = field(default_factory=dict)
    fragments: list[str] = field(default_factory=list)
    names: int = 0
    aliases: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def name(self, prefix: str) -> str:
        self.names += 1
        return f"{prefix}{self.names}"

    def variable(self, gql_type: str, value: Any, default: str | None = None) -> str:
        """A new variable holding `value` (left out of the variables when it has a default
        and `value` is that default)."""
        name = self.name("v")
        self.definitions.append(f"${name}: {gql_type}" + (f" = {default}" if default else ""))
        if default is None or self.chance(0.5):
            self.variables[name] = value
        return f"${name}"

    # selections

    def directive(self) -> str:
        """@include/@skip, with a literal or a variable condition ("" most of the time)."""
        if not self.chance(0.12):
            return ""
        which = self.rng.choice(["include", "skip"])
        value = self.chance(0.6) if which == "include" else self.chance(0.3)
        if self.chance(0.5):
            return f" @{which}(if: {literal(value)})"
        if self.chance(0.2):  # a default value, maybe overridden
            return f" @{which}(if: {self.variable('Boolean', value, literal(value))})"
        return f" @{which}(if: {self.variable('Boolean!', value)})"

    def alias(self) -> str:
        if self.aliases < 30 and self.chance(0.1):
            self.aliases += 1
            return f"a{self.aliases}: "
        return ""

    def field(self, name: str, sub: str = "") -> str:
        return f"{self.alias()}{name}{self.directive()}{' { ' + sub + ' }' if sub else ''}"

    def selection(self, type_name: str, depth: int) -> str:
        """Some leaf fields, maybe relations (rarer deeper down), typename and fragments."""
        leaves, relations = TYPES[type_name]
        items = [self.field(f) for f in self.rng.sample(leaves, self.rng.randint(1, min(
            len(leaves), 8 if depth == 0 else 4)))]
        if self.chance(0.2):
            items.append(self.field("__typename"))
        for relation, target in relations.items():
            p = (0.45 if type_name == "Opportunity" else 0.35) * 0.6 ** depth
            if depth >= MAX_DEPTH or (type_name == target == "Opportunity") or not self.chance(p):
                continue
            items.append(self.field(relation, self.selection(target, depth + 1)))
            if self.aliases < 30 and self.chance(0.15):
                # the same field again under an alias of its own, with another sub-selection
                self.aliases += 1
                alias = f"a{self.aliases}"
                items.append(f"{alias}: {relation} {{ {self.selection(target, depth + 1)} }}")
            if self.chance(0.08):
                # and once more without an alias: merged with the first one
                items.append(f"{relation} {{ {self.selection(target, depth + 1)} }}")
        self.rng.shuffle(items)
        if len(items) > 1 and self.chance(0.2):  # some of them in a named fragment
            k = self.rng.randint(1, len(items) - 1)
            items = items[:k] + [self.named_fragment(type_name, items[k:])]
        if self.chance(0.15):  # an inline fragment: on the type, an interface, or untyped
            condition = self.rng.choice(
                [f" on {type_name}", f" on {INTERFACES.get(type_name, type_name)}", ""]
            )
            if condition == " on Node":
                inner = "id"
            else:
                inner = self.selection(type_name, depth) if depth < MAX_DEPTH else "__typename"
            items.insert(self.rng.randint(0, len(items)), f"...{condition}{self.directive()} "
                         f"{{ {inner} }}")
        return " ".join(items)

    def named_fragment(self, type_name: str, items: list[str]) -> str:
        name = self.name(f"{type_name}Fields")
        self.fragments.append(f"fragment {name} on {type_name} {{ {' '.join(items)} }}")
        return f"...{name}{self.directive()}"

    def connection(self) -> str:
        items: list[str] = []
        if self.chance(0.4):
            items.append(self.field("totalCount"))
        if self.chance(0.4):
            info = ["hasNextPage", "hasPreviousPage", "startCursor", "endCursor", "__typename"]
            picked = self.rng.sample(info, self.rng.randint(1, len(info)))
            items.append(self.field("pageInfo", " ".join(self.field(f) for f in picked)))
        shape = self.rng.choice(["edges", "nodes", "both", "edges", "nodes"])
        if shape in ("edges", "both"):
            items.append(self.edges())
            if self.aliases < 30 and self.chance(0.1):
                self.aliases += 1
                items.append(self.edges(f"a{self.aliases}: "))
        if shape in ("nodes", "both"):
            items.append(self.field("nodes", self.selection("Opportunity", 0)))
        if self.chance(0.15):
            items.append("__typename")
        self.rng.shuffle(items)
        if self.chance(0.1):
            items = [self.named_fragment("OpportunityConnection", items)]
        return " ".join(items)

    def edges(self, alias: str = "") -> str:
        parts = []
        if self.chance(0.5):
            parts.append(self.field("cursor"))
        if self.chance(0.9) or not parts:
            parts.append(self.field("node", self.selection("Opportunity", 0)))
        if self.chance(0.15):
            parts.append("__typename")
        self.rng.shuffle(parts)
        if alias:
            return f"{alias}edges{self.directive()} {{ {' '.join(parts)} }}"
        return self.field("edges", " ".join(parts))

    # arguments

    def filter(self) -> dict[str, Any] | None:
        if not self.chance(0.45):
            return None
        options: dict[str, Any] = {
            "stage": lambda: self.rng.sample(STAGE_KEYS, self.rng.randint(1, 3)),
            "amountMin": lambda: self.rng.choice(["0", "500.00", "1000", "2500.5"]),
            "amountMax": lambda: self.rng.choice(["1000.00", "5000", "99999.99"]),
            "isClosed": lambda: self.chance(0.5),
            "isWon": lambda: self.chance(0.5),
            "forecastCategory": lambda: self.rng.sample(CATEGORIES, self.rng.randint(1, 2)),
            "search": lambda: self.rng.choice(["alpha", "DEAL", "POT", "ps", "zzz", "é"]),
            "expectedCloseDateFrom": lambda: self.day(-30, 5),
            "expectedCloseDateTo": lambda: self.day(0, 60),
            "type": lambda: self.rng.choice(["NEW_BUSINESS", "EXISTING_BUSINESS"]),
            "leadSource": lambda: self.rng.choice(["WEB_SITE", "PARTNER", "COLD_CALL"]),
            "isOverdue": lambda: self.chance(0.5),
            "lostReason": lambda: self.rng.choice(["price", "rival"]),
            "actualCloseDateFrom": lambda: self.day(-30, 0),
        }
        keys = self.rng.sample(sorted(options), self.rng.randint(1, 2))
        return {key: options[key]() for key in keys}

    def day(self, low: int, high: int) -> str:
        return str(TODAY + dt.timedelta(days=self.rng.randint(low, high)))

    def order_by(self) -> list[dict[str, str]] | None:
        if not self.chance(0.6):
            return None
        order = []
        for name in self.rng.sample(ORDER_FIELDS, self.rng.randint(1, 2)):
            item = {"field": name}
            if self.chance(0.7):
                item["direction"] = self.rng.choice(["ASC", "DESC"])
            order.append(item)
        return order

    def argument(self, name: str, gql_type: str, value: Any) -> str:
        """`name: value`, as a literal or through a variable."""
        if self.chance(0.5):
            return f"{name}: {self.variable(gql_type, value)}"
        if name == "orderBy" and value and len(value) == 1 and self.chance(0.3):
            return f"{name}: {literal(value[0])}"  # a single item where a list is expected
        return f"{name}: {literal(value)}"

    def arguments(self) -> str:
        args = []
        filter_value, order_value = self.filter(), self.order_by()
        if filter_value is not None or self.chance(0.05):
            args.append(self.argument("filter", "OpportunityFilter", filter_value))
        if order_value is not None:
            args.append(self.argument("orderBy", "[OpportunityOrder!]", order_value))
        paging = self.rng.choice(["none", "first", "first", "after", "last", "before", "odd"])
        size = self.rng.choice([0, 1, 2, 3, 5, 10, 25, 100])
        if paging in ("first", "after", "odd"):
            args.append(self.argument("first", "Int", size))
        if paging in ("last", "before"):
            args.append(self.argument("last", "Int", size))
        if paging in ("after", "before", "odd"):
            cursor = self.variable("String", None)
            direction = {"after": "after", "before": "before", "odd": "before"}[paging]
            args.append(f"{direction}: {cursor}")
            self.cursors[cursor[1:]] = CursorRequest(order_value, filter_value, self.rng.random())
        self.rng.shuffle(args)
        return f"({', '.join(args)})" if args else ""

    def case(self) -> Case:
        roots = []
        count = 1 if self.chance(0.85) else 2
        for i in range(count):
            alias = f"r{i}: " if count > 1 or self.chance(0.1) else ""
            roots.append(f"{alias}opportunities{self.arguments()} {{ {self.connection()} }}")
        body = " ".join(roots)
        if self.definitions or self.chance(0.5):
            name = self.rng.choice(["", " Generated", f" Case{self.seed}"])
            definitions = f"({', '.join(self.definitions)})" if self.definitions else ""
            header = f"query{name}{definitions}"
        else:
            header = ""
        query = "\n".join([f"{header} {{ {body} }}".strip(), *self.fragments])
        roles = self.rng.sample(ROLES, self.rng.randint(1, 2))
        return Case(self.seed, query, self.variables, self.cursors, roles)


CURSORS = """
query Cursors($orderBy: [OpportunityOrder!], $filter: OpportunityFilter) {
  opportunities(first: 100, orderBy: $orderBy, filter: $filter) { edges { cursor } }
}
"""


async def with_cursors(both: Both, case: Case) -> dict[str, Any]:
    """The case's variables with its cursors filled in, as its viewer sees the list."""
    variables = dict(case.variables)
    for name, request in case.cursors.items():
        body = await both.off.data(CURSORS, {"orderBy": request.order_by, "filter": request.filter})
        cursors = [e["cursor"] for e in body["opportunities"]["edges"]]
        variables[name] = cursors[int(request.pick * len(cursors))] if cursors else None
    return variables


@pytest.mark.no_database
def test_the_generator_is_reproducible_and_varied() -> None:
    cases = [QueryGenerator(seed).case() for seed in range(150)]
    assert [c.query for c in cases] == [QueryGenerator(s).case().query for s in range(150)]
    text = "\n".join(c.query for c in cases)
    for needle in ("fragment ", "... on Opportunity", "... on Node", "@include(if: $",
                   "@skip(if: true)", "totalCount", "pageInfo", "nodes {", "edges {", "cursor",
                   "__typename", "quotes {", "lines {", "product {", "account {", "campaign {",
                   "manager {", "opportunity {", "orderBy:", "filter:", "last:", "before:",
                   "after:", "r1: opportunities"):
        assert needle in text, needle


# --- generated queries ----------------------------------------------------------------------

BATCHES = 15
PER_BATCH = 10  # seeds 0–149


@pytest.mark.parametrize("batch", range(BATCHES))
async def test_generated_queries_give_the_same_json_with_and_without_the_planner(
    batch, apps, deals, clients
):
    plans = plans_of(apps)
    differences, unplanned = [], []
    for seed in range(batch * PER_BATCH, (batch + 1) * PER_BATCH):
        case = QueryGenerator(seed).case()
        for i, role in enumerate(case.roles):
            both = await clients(role)
            variables = await with_cursors(both, case)
            before = plans.stats.copy()
            times = 2 if i == 0 else 1  # a new text: through Strawberry, then the fast path

            # when
            on, off, difference = await compare(both, case.query, variables, times)

            # then
            if difference:
                differences.append(f"seed {seed} {difference}")
            if plans.stats["planned"] != before["planned"] + times:
                unplanned.append(f"seed {seed} as {role}: {dict(plans.stats - before)}\n"
                                 f"{case.query}\n{json.dumps(variables)}\n{describe(off)}")
            assert off.status_code == 200
    assert not differences, "\n\n".join(differences)
    assert not unplanned, "the planner did not answer:\n\n" + "\n\n".join(unplanned)


async def test_the_same_query_with_other_variables_reuses_its_plan(apps, deals, clients):
    # given: one text, a plan per value of its @include variables
    query = """
    query Reused($first: Int, $withQuotes: Boolean!, $order: [OpportunityOrder!]) {
      opportunities(first: $first, orderBy: $order) {
        totalCount
        nodes {
          name amount
          quotes @include(if: $withQuotes) { subject grandTotal lines { netTotal } }
          account @skip(if: $withQuotes) { name }
        }
      }
    }"""
    plans = plans_of(apps)
    both = await clients("manager")
    runs = [
        {"first": 3, "withQuotes": True, "order": [{"field": "AMOUNT", "direction": "DESC"}]},
        {"first": 10, "withQuotes": False, "order": None},
        {"first": 0, "withQuotes": True, "order": {"field": "NAME"}},
        {"first": 100, "withQuotes": False, "order": [{"field": "WEIGHTED_AMOUNT"}]},
    ]
    for variables in runs:
        before = plans.stats["planned"]

        # when
        _, _, difference = await compare(both, query, variables, times=2)

        # then
        assert difference is None, difference
        assert plans.stats["planned"] == before + 2


# --- paging through a whole list ---------------------------------------------------------

WALK = """
query Walk($first: Int, $after: String, $last: Int, $before: String,
           $orderBy: [OpportunityOrder!], $filter: OpportunityFilter) {
  opportunities(first: $first, after: $after, last: $last, before: $before, orderBy: $orderBy,
                filter: $filter) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { name amount probability createdAt isClosed salesStage { key } } }
  }
}"""

CREATE_FIELD = """
mutation Define($input: CreateCustomFieldInput!) {
  createCustomField(input: $input) { customField { key } userErrors { message } }
}"""


@pytest.fixture
async def custom_fields(deals, clients, db) -> None:
    """cf_size (INTEGER: ties and unset values) and cf_region (TEXT) on the deals."""
    admin = await clients("admin")
    for label, kind in (("Size", "INTEGER"), ("Region", "TEXT")):
        data = await admin.off.data(
            CREATE_FIELD, {"input": {"entity": "OPPORTUNITY", "label": label, "type": kind}}
        )
        assert data["createCustomField"]["userErrors"] == []
    for i, deal in enumerate(deals["deals"]):
        values = {} if i % 5 == 0 else {"cf_size": i % 4, "cf_region": ["North", "south"][i % 2]}
        await db.execute(
            update(models.Opportunity).where(models.Opportunity.id == deal.id)
            .values(custom_fields=values)
        )
    await db.commit()


ORDERINGS = {
    "default": None,
    "name": [{"field": "NAME"}],
    "amount desc (ties)": [{"field": "AMOUNT", "direction": "DESC"}],
    "created (ties)": [{"field": "CREATED_AT"}],
    "updated desc": [{"field": "UPDATED_AT", "direction": "DESC"}],
    "weighted amount": [{"field": "WEIGHTED_AMOUNT", "direction": "DESC"}],
    "probability, close date": [{"field": "PROBABILITY"}, {"field": "EXPECTED_CLOSE_DATE",
                                                           "direction": "DESC"}],
    "custom field": [{"field": "CUSTOM_FIELD", "customFieldKey": "cf_size"},
                     {"field": "NAME", "direction": "DESC"}],
}


@pytest.mark.parametrize("ordering", ORDERINGS)
@pytest.mark.parametrize("role", ["admin", "manager"])
async def test_walking_every_page_both_ways(ordering, role, apps, custom_fields, clients):
    plans = plans_of(apps)
    both = await clients(role)
    order = ORDERINGS[ordering]
    for filter_value in (None, {"customFields": [{"key": "cf_region", "contains": "NORTH"}]}):
        for forward in (True, False):
            variables: dict[str, Any] = {"orderBy": order, "filter": filter_value}
            pages = 0
            while True:
                before = plans.stats["planned"]
                if forward:
                    variables.update(first=3)
                else:
                    variables.update(last=3)

                # when
                on, _, difference = await compare(both, WALK, variables, times=2)

                # then
                assert difference is None, difference
                assert plans.stats["planned"] == before + 2
                page = on.json()["data"]["opportunities"]
                pages += 1
                assert pages < 20
                if forward and page["pageInfo"]["hasNextPage"]:
                    variables["after"] = page["pageInfo"]["endCursor"]
                elif not forward and page["pageInfo"]["hasPreviousPage"]:
                    variables["before"] = page["pageInfo"]["startCursor"]
                else:
                    break
            assert pages > 1 or filter_value is not None


# --- hand-picked combinations -----------------------------------------------------------------

TRICKY = {
    "stage filter with stage fields": (
        "{ opportunities(first: 50, filter: { isClosed: true }) { totalCount nodes { name "
        "isClosed isWon forecastCategory salesStage { key isClosed } } } }", {}),
    "forecast category filter, stage twice": (
        "{ opportunities(filter: { forecastCategory: [PIPELINE, COMMIT] }) { nodes { "
        "s1: salesStage { key } s2: salesStage { name position } daysToClose isOverdue } } }",
        {}),
    "an empty page counted": (
        "{ opportunities(first: 0) { totalCount pageInfo { hasNextPage hasPreviousPage "
        "startCursor endCursor } edges { cursor } nodes { name } } }", {}),
    "nothing matches": (
        '{ opportunities(filter: { search: "no such deal" }) { totalCount pageInfo { '
        "startCursor endCursor hasNextPage } nodes { name } } }", {}),
    "last page from the end": (
        "{ opportunities(last: 4, orderBy: { field: AMOUNT }) { totalCount pageInfo { "
        "hasNextPage hasPreviousPage } nodes { name amount } } }", {}),
    "nodes and edges, different selections": (
        "{ opportunities(first: 6) { nodes { name isClosed account { name } } edges { cursor "
        "node { id forecastCategory account { city assignedTo { username } } campaign { name } "
        "} } } }", {}),
    "the same relation under two aliases": (
        "{ opportunities(first: 30) { nodes { a: account { name } b: account { id industry "
        "assignedTo { username manager { username } } } account { city } } } }", {}),
    "users three levels up": (
        "{ opportunities(first: 30) { nodes { assignedTo { username manager { username manager "
        "{ username } } } createdBy { username role } } } }", {}),
    "quote totals without their lines": (
        "{ opportunities(first: 30) { nodes { quotes { subject subtotal discountTotal netTotal "
        "taxTotal grandTotal } } } }", {}),
    "quote totals beside a few line fields": (
        "{ opportunities(first: 30) { nodes { quotes { grandTotal lines { description } "
        "taxTotal } } } }", {}),
    "deleted products and quotes": (
        "{ opportunities(first: 30) { nodes { name quotes { subject isSynced stage validUntil "
        "contact { lastName firstName } account { name } lines { quantity product { name code "
        "isActive } } } } } }", {}),
    "back to the deal from its quotes": (
        "{ opportunities(first: 30) { nodes { id quotes { opportunity { id name isClosed "
        "salesStage { key } account { name } assignedTo { username } } } } } }", {}),
    "every leaf of a deal": (
        "{ opportunities(first: 30) { nodes { " + " ".join(TYPES["Opportunity"][0]) + " } } }",
        {}),
    "every leaf of its relations": (
        "{ opportunities(first: 30) { nodes { salesStage { " + " ".join(TYPES["SalesStage"][0])
        + " } account { " + " ".join(TYPES["Account"][0]) + " } campaign { "
        + " ".join(TYPES["Campaign"][0]) + " } quotes { " + " ".join(TYPES["Quote"][0])
        + " lines { " + " ".join(TYPES["QuoteLine"][0]) + " product { "
        + " ".join(TYPES["Product"][0]) + " } } } } } }", {}),
    "typename everywhere, fragments on every type": (
        "query T { opportunities(first: 5) { __typename pageInfo { __typename } edges { "
        "__typename node { __typename ...D } } } } fragment D on Opportunity { __typename "
        "salesStage { __typename ...S } account { ...A } quotes { ...Q } } fragment S on "
        "SalesStage { key } fragment A on Account { __typename name } fragment Q on Quote { "
        "__typename lines { __typename product { __typename name } } }", {}),
    "two roots": (
        "query Two($f: OpportunityFilter) { open: opportunities(filter: $f, first: 5) { "
        "totalCount nodes { name } } all: opportunities(orderBy: [{ field: NAME, direction: DESC"
        " }]) { totalCount edges { cursor node { name isWon } } } }", {"f": {"isClosed": False}}),
    "directives with defaults": (
        "query D($a: Boolean = true, $b: Boolean = false) { opportunities(first: 5) { "
        "totalCount @include(if: $a) nodes { name @skip(if: $b) amount @include(if: $b) "
        "account @include(if: $a) { name } } } }", {"b": True}),
    "everything skipped": (
        "{ opportunities(first: 5) { nodes { name @skip(if: true) } } }", {}),
    "custom field filter": (
        '{ opportunities(filter: { customFields: [{ key: "cf_size", min: 1 }] }, orderBy: '
        '[{ field: CUSTOM_FIELD, customFieldKey: "cf_region", direction: DESC }]) { totalCount '
        "edges { cursor node { name } } } }", {}),
}


@pytest.mark.parametrize("label", TRICKY)
@pytest.mark.parametrize("role", ["admin", "manager", "rep"])
async def test_hand_picked_queries(label, role, apps, custom_fields, clients):
    plans = plans_of(apps)
    both = await clients(role)
    query, variables = TRICKY[label]
    before = plans.stats["planned"]

    # when
    on, _, difference = await compare(both, query, variables, times=2)

    # then
    assert difference is None, difference
    assert "errors" not in on.json(), on.text
    assert plans.stats["planned"] == before + 2, plans.stats


# --- request shapes (the server's fast path reads the JSON body itself) ---------------------

SHAPED = "query Shaped($n: Int = 3) { opportunities(first: $n) { totalCount nodes { name } } }"


async def test_every_shape_of_request_gets_the_same_answer(apps, deals, clients):
    plans = plans_of(apps)
    both = await clients("manager")
    await both.on.post(SHAPED)  # known to the planner from now on
    json_type = {"Content-Type": "application/json"}
    requests: list[tuple[str, dict[str, Any]]] = [
        ("no variables", {"content": orjson.dumps({"query": SHAPED}), "headers": json_type}),
        ("null variables", {"json": {"query": SHAPED, "variables": None}}),
        ("operation name", {"json": {"query": SHAPED, "operationName": "Shaped",
                                     "variables": {"n": 1}}}),
        ("unknown operation name", {"json": {"query": SHAPED, "operationName": "Other"}}),
        ("charset", {"content": orjson.dumps({"query": SHAPED, "variables": {"n": 2}}),
                     "headers": {"Content-Type": "application/json; charset=utf-8"}}),
        ("extensions", {"json": {"query": SHAPED, "extensions": {"tracing": True}}}),
        ("variables not an object", {"json": {"query": SHAPED, "variables": [1]}}),
        ("variable of another type", {"json": {"query": SHAPED, "variables": {"n": "two"}}}),
        ("extra variables", {"json": {"query": SHAPED, "variables": {"n": 1, "x": 2}}}),
        ("query not a string", {"json": {"query": ["x"]}}),
        ("a batch", {"json": [{"query": SHAPED}]}),
        ("not JSON", {"content": b"{query", "headers": json_type}),
    ]
    for label, request in requests:
        # when
        on = await both.on.http.post("/graphql", **request)
        off = await both.off.http.post("/graphql", **request)

        # then
        shape = (on.status_code, on.headers.get("content-type"), on.content)
        assert shape == (off.status_code, off.headers.get("content-type"), off.content), (
            label, on.text, off.text)
    before = plans.stats["planned"]
    on = await both.on.http.get("/graphql", params={"query": SHAPED})
    off = await both.off.http.get("/graphql", params={"query": SHAPED})
    assert (on.status_code, on.content) == (off.status_code, off.content)
    assert plans.stats["planned"] == before + 1


# --- visibility -----------------------------------------------------------------------------

VISIBILITY = """
query Visibility {
  opportunities(first: 100, orderBy: [{ field: NAME }]) {
    totalCount
    nodes {
      name
      assignedTo { username }
      account { name assignedTo { username } }
      campaign { name }
      quotes { subject lines { product { name } } }
    }
  }
}"""


@pytest.mark.parametrize("role", ROLES)
async def test_each_viewer_sees_the_same_deals_and_relations(role, apps, deals, clients):
    # given
    plans = plans_of(apps)
    both = await clients(role)
    before = plans.stats["planned"]

    # when
    on, _, difference = await compare(both, VISIBILITY, times=2)

    # then
    assert difference is None, difference
    assert plans.stats["planned"] == before + 2
    nodes = on.json()["data"]["opportunities"]["nodes"]
    owners = {n["assignedTo"]["username"] for n in nodes}
    expected = {
        "admin": {"rep", "rep2", "manager", "other_rep", "admin", "other_manager"},
        "manager": {"rep", "rep2", "manager"},
        "rep": {"rep"},
        "rep2": {"rep2"},
        "other_rep": {"other_rep"},
    }[role]
    assert owners == expected
    if role == "rep":  # Gamma (rep2's) is on one of rep's deals but not visible to rep
        assert any(n["account"] is None for n in nodes)
        assert all(n["account"]["name"] in ("Acme", "Beta") for n in nodes if n["account"])


# --- pipeline ------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["rep", "manager", "admin"])
async def test_the_pipeline_query_is_planned_and_identical(role, apps, deals, clients):
    plans = plans_of(apps)
    both = await clients(role)
    first_page = await both.off.data(PIPELINE, {"first": 5})
    after = first_page["opportunities"]["pageInfo"]["endCursor"]
    for variables in [
        {"first": 5}, {"first": 50}, {"first": 0}, {"first": 5, "after": after},
        {"first": 20, "filter": {"isClosed": False}},
        {"first": 20, "filter": {"stage": ["CLOSED_WON", "CLOSED_LOST"], "search": "a"}},
    ]:
        before = plans.stats["planned"]

        # when
        _, _, difference = await compare(both, PIPELINE, variables)

        # then
        assert difference is None, difference
        assert plans.stats["planned"] == before + 1, variables


async def count(apps: dict[str, Any], mode: str, client: GraphQLClient, query: str,
                variables: dict[str, Any]) -> Statements:
    counter = Statements()
    engine = apps[mode].state.engine.sync_engine
    event.listen(engine, "before_cursor_execute", counter)
    try:
        await client.data(query, variables)
    finally:
        event.remove(engine, "before_cursor_execute", counter)
    return counter


@pytest.mark.parametrize("viewer", ["rep", "manager", "admin"])
async def test_the_planned_pipeline_costs_the_same_statements_for_5_and_50_deals(
    viewer, apps, team, factory, db, clients
):
    # given: 60 deals of rep, 20 of rep2, 20 of other_rep, with accounts, campaigns, quotes
    await seed_deals(factory, [team["rep"]], 60)
    await seed_deals(factory, [team["rep2"], team["other_rep"]], 20, accounts=3)
    await db.commit()
    plans = plans_of(apps)
    both = await clients(viewer)
    before = plans.stats["planned"]

    # when
    small = await count(apps, "on", both.on, PIPELINE, {"first": 5})
    large = await count(apps, "on", both.on, PIPELINE, {"first": 50})
    resolved = await count(apps, "off", both.off, PIPELINE, {"first": 50})

    # then: the token, the page (with its total), the quotes, the lines with their products
    # (and a manager's team), with no transaction around them
    print(f"planned pipeline as {viewer}: first 5 → {small.count}, first 50 → {large.count} "
          f"statements (graphql-core: {resolved.count})")
    assert plans.stats["planned"] == before + 2
    assert small.count == large.count == 4 + (viewer == "manager")
    assert large.count < resolved.count
    assert not [sql for sql in large.sql if sql.split()[0].upper() in ("BEGIN", "ROLLBACK")]
    assert [sql.split()[1].split(".")[0] for sql in large.sql[-3:]] == [  # first columns' tables
        "opportunities", "quotes", "quote_lines"
    ]


# --- errors: the planner steps aside, the response is graphql-core's -------------------------

ERROR_QUERY = """
query Errors($first: Int, $last: Int, $after: String, $before: String,
             $orderBy: [OpportunityOrder!]) {
  opportunities(first: $first, last: $last, after: $after, before: $before, orderBy: $orderBy) {
    totalCount
    edges { cursor node { name } }
  }
}"""


async def error_cases(both: Both) -> list[tuple[str, str, dict[str, Any]]]:
    """Requests the planner must leave to graphql-core when it runs them (an error to report)."""
    by_amount = await both.off.data(ERROR_QUERY, {"first": 2, "orderBy": [{"field": "AMOUNT"}]})
    amount_cursor = by_amount["opportunities"]["edges"][0]["cursor"]
    plain = await both.off.data(ERROR_QUERY, {"first": 2})
    default_cursor = plain["opportunities"]["edges"][0]["cursor"]
    return [
        ("first > 100", ERROR_QUERY, {"first": 101}),
        ("last > 100", ERROR_QUERY, {"last": 500}),
        ("negative first", ERROR_QUERY, {"first": -1}),
        ("first and last", ERROR_QUERY, {"first": 2, "last": 2}),
        ("invalid cursor", ERROR_QUERY, {"first": 2, "after": "not-a-cursor"}),
        ("invalid before cursor", ERROR_QUERY, {"last": 2, "before": "%%%"}),
        ("cursor of another ordering", ERROR_QUERY,
         {"first": 2, "after": amount_cursor, "orderBy": [{"field": "NAME"}]}),
        ("cursor of another direction", ERROR_QUERY,
         {"first": 2, "after": amount_cursor,
          "orderBy": [{"field": "AMOUNT", "direction": "DESC"}]}),
        ("default-order cursor, explicit order", ERROR_QUERY,
         {"first": 2, "before": default_cursor,
          "orderBy": [{"field": "EXPECTED_CLOSE_DATE"}]}),
        ("CUSTOM_FIELD without a key", ERROR_QUERY,
         {"first": 2, "orderBy": [{"field": "CUSTOM_FIELD"}]}),
        ("one root of two fails", """
         query Two($first: Int) {
           ok: opportunities(first: 2) { nodes { name } }
           bad: opportunities(first: $first) { nodes { name } }
         }""", {"first": 1000}),
    ]


@pytest.mark.parametrize("role", ["admin", "rep"])
async def test_errors_are_graphql_cores_own(role, apps, deals, clients):
    plans = plans_of(apps)
    both = await clients(role)
    for label, query, variables in await error_cases(both):
        before = plans.stats.copy()

        # when: twice (the second time the text is known: the fast path tries first)
        on, off, difference = await compare(both, query, variables, times=2)

        # then
        assert difference is None, f"{label}: {difference}"
        assert on.json().get("errors"), label
        assert plans.stats["fallback"] > before["fallback"], (label, plans.stats - before)
        assert plans.stats["planned"] == before["planned"], label
        assert plans.stats["failed"] == before["failed"], label


BAD_REQUESTS = [
    ("a variable of the wrong type", ERROR_QUERY, {"first": "many"}),
    ("a missing non-null variable", "query($n: Int!) { opportunities(first: $n) { totalCount } }",
     {}),
    ("a directive variable left out",
     "query($x: Boolean!) { opportunities(first: 1) { totalCount @include(if: $x) } }", {}),
    ("an unknown field", "{ opportunities(first: 1) { nodes { nope } } }", {}),
    ("too deep", "{ opportunities { nodes { " + "quotes { opportunity { " * 6 + "name"
     + " } }" * 6 + " } } }", {}),  # the leaf 14 levels below the root field
]


@pytest.mark.parametrize("role", ["admin", "rep"])
async def test_bad_requests_get_the_same_errors(role, apps, deals, clients):
    plans = plans_of(apps)
    both = await clients(role)
    # the texts are known to the planner first (a valid run), as a client retrying would
    await both.on.post(ERROR_QUERY, {"first": 1})
    for label, query, variables in BAD_REQUESTS:
        before = plans.stats.copy()

        # when
        on, _, difference = await compare(both, query, variables, times=2)

        # then
        assert difference is None, f"{label}: {difference}"
        assert on.json().get("errors"), label
        assert plans.stats["planned"] == before["planned"], label
        assert plans.stats["failed"] == before["failed"], label


# --- operations once left to graphql-core, and what still is ---------------------------------


def once_uncovered(deal_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        ("node(id:)", "query($id: ID!) { node(id: $id) { id ... on Opportunity { name } } }",
         {"id": deal_id}),
        ("nodes(ids:)", "query($id: ID!) { nodes(ids: [$id]) { ... on Opportunity { name } } }",
         {"id": deal_id}),
        ("customFields", "{ opportunities(first: 3) { edges { node { name customFields { key } "
         "} } } }", {}),
        ("timeline", "{ opportunities(first: 2) { nodes { name timeline(first: 2) { totalCount }"
         " } } }", {}),
        ("contacts", "{ opportunities(first: 2) { nodes { contacts { role } } } }", {}),
        ("campaign figures", "{ opportunities(first: 5) { nodes { campaign { name "
         "opportunityCount } } } }", {}),
        ("another root beside", "{ opportunities(first: 2) { totalCount } viewer { username } }",
         {}),
        ("root __typename", "{ __typename opportunities(first: 2) { totalCount } }", {}),
        ("root skipped", "{ opportunities @skip(if: true) { totalCount } }", {}),
        ("other connection", "{ accounts(first: 5) { nodes { name } } }", {}),
    ]


async def test_what_was_left_to_graphql_core_is_planned_now(apps, deals, clients):
    plans = plans_of(apps)
    both = await clients("manager")
    deal = await both.off.data("{ opportunities(first: 1) { nodes { id } } }")
    deal_id = deal["opportunities"]["nodes"][0]["id"]
    for label, query, variables in once_uncovered(deal_id):
        before = plans.stats.copy()

        # when
        on, _, difference = await compare(both, query, variables, times=2)

        # then
        assert difference is None, f"{label}: {difference}"
        assert "errors" not in on.json(), (label, on.json())
        assert set(plans.stats - before) == {"planned"}, (label, plans.stats - before)


async def test_introspection_runs_normally(apps, deals, clients):
    plans = plans_of(apps)
    both = await clients("manager")
    for query in ('{ __type(name: "Opportunity") { name } }',
                  "{ __schema { queryType { name } } }"):
        before = plans.stats.copy()
        on, _, difference = await compare(both, query, {}, times=2)
        assert difference is None, difference
        assert on.json()["data"]
        assert set(plans.stats - before) == {"unsupported"}, plans.stats - before


MIXED = """
query Deals { opportunities(first: 2, orderBy: [{ field: NAME }]) { nodes { name } } }
mutation Create {
  createAccount(input: { name: "Via document" }) { account { name } userErrors { message } }
}
"""


async def post(client: GraphQLClient, operation_name: str | None) -> httpx.Response:
    return await client.http.post(
        "/graphql", json={"query": MIXED, "variables": {}, "operationName": operation_name}
    )


async def test_a_document_with_a_query_and_a_mutation(apps, deals, clients):
    # given: its query has run (the text is known to the planner)
    plans = plans_of(apps)
    both = await clients("rep")
    before = plans.stats["planned"]
    for _ in range(2):
        on, off = await post(both.on, "Deals"), await post(both.off, "Deals")
        assert on.content == off.content
        assert on.json()["data"]["opportunities"]["nodes"]
    assert plans.stats["planned"] == before + 2

    # when: its mutation
    created = await post(both.on, "Create")

    # then: it ran, once
    assert created.json() == {"data": {"createAccount": {
        "account": {"name": "Via document"}, "userErrors": []}}}
    accounts = await both.off.data('{ accounts(filter: { search: "Via" }) { totalCount } }')
    assert accounts["accounts"]["totalCount"] == 1

    # and an unknown or missing operation name: as graphql-core answers them
    for name in ("Nope", None):
        on, off = await post(both.on, name), await post(both.off, name)
        assert (on.status_code, on.content) == (off.status_code, off.content), on.text
        assert "Via document" not in on.text, on.text


async def test_a_mutation_is_left_to_graphql_core(apps, deals, clients):
    # given
    plans = plans_of(apps)
    both = await clients("rep")
    before = plans.stats.copy()

    # when
    body = await both.on.data(
        'mutation { createAccount(input: { name: "Planned Ltd" }) { account { name } '
        "userErrors { message } } }"
    )

    # then: answered, and the planner was not asked at all
    assert body == {"createAccount": {"account": {"name": "Planned Ltd"}, "userErrors": []}}
    assert plans.stats == before


async def test_settings_choose_the_mode(settings, app, apps) -> None:
    assert settings.planner == "verify"  # the suite's mode (tests/conftest.py)
    assert graphql_schema(app).plans.mode == "verify"
    assert graphql_schema(apps["on"]).plans.mode == "on"
    assert getattr(graphql_schema(apps["off"]), "plans", None) is None

