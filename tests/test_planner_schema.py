"""The whole read schema, differentially: random queries generated from the GraphQL schema
itself, answered by the planner's app and by graphql-core's alone, must give the same bytes
(status, data, errors), for every viewer under PRIVATE and PUBLIC sharing.

`SchemaQueryGenerator` starts from a root field of `Query` and walks the schema (graphql-core's
`GraphQLSchema` behind the app's Strawberry schema): random fields of each object type,
inline fragments on the possible types of interfaces and unions and on the interfaces an
object implements, named fragments, aliases, @include/@skip, and arguments: paging with real
cursors (and cursors of other lists, and garbage), enum values, filters whose values exist in
the seeded data, ids of real records (visible or not to the viewer, deleted) and unknown
ids, custom field keys; literals or variables. Whatever the planner does not answer yet,
graphql-core answers on both apps, so the comparison holds for every query; the coverage
table printed at the end (pytest -s) says how much the planner answered per root field, and
`MIN_PLANNED` is the floor the lead can raise as the planner grows.

A failing case names its seed and prints its query; `SchemaQueryGenerator(schema, pool,
seed).case()` rebuilds it (the pool holds the seeded data's ids and cursors: `gather`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import itertools
import json
import os
import random
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    Undefined,
    get_named_type,
    is_leaf_type,
    parse,
    validate,
)
from sqlalchemy import select, text, update

import models
from resolvers.ids import to_global_id
from schema import build_schema
from tests.test_planner import (
    CREATE_FIELD,
    NOW,
    TODAY,
    Both,
    compare,
    open_apps,
    plans_of,
)

# test_planner.py's fixtures: the two apps, the viewers' clients, the deals and their custom
# fields.
pytest_plugins = ("tests.test_planner",)

# The roles every generated query runs as (rep and other_rep: reps of two different teams).
ROLES = ("admin", "manager", "rep", "other_rep")
SHARING = ("PRIVATE", "PUBLIC")
# Generated queries per sharing mode (seeds 0…QUERIES-1; one round of the roots is 50): about
# 25 s each on SQLite. DEALGRAPH_TEST_QUERIES=1000 for a longer run.
QUERIES = int(os.environ.get("DEALGRAPH_TEST_QUERIES", "50"))


# The least share of the generated requests of a root field the planner must answer
# (planned / all). Every generated query is planned today unless answering it needs
# graphql-core's own handling (an error, a null in a non-null field: a fallback): 306 of the
# 400 requests of seeds 0-49, 0 unsupported. The floors leave room for the generator's draws.
MIN_PLANNED: dict[str, float] = {
    "opportunities": 0.6, "accounts": 0.25, "contacts": 0.25, "campaigns": 0.6,
    "quotes": 0.5, "nodes": 0.6, "node": 0.5, "viewer": 0.9, "forecast": 0.9,
    "documents": 0.6, "users": 0.6,
}

MAX_LEVEL = 9  # selection levels below the root field (the server allows 12 in all)
MAX_COMPOSITES = 14  # object/list fields in one query
MAX_ALIASES = 20


# --- the values the generator draws from -------------------------------------------------


@dataclass
class Pool:
    """Values of the seeded data: ids by GraphQL type (every record, visible or not to the
    viewer, deleted ones too, and ids of no record), cursors by connection type, custom field
    keys, and strings by argument name."""

    ids: dict[str, list[str]]
    cursors: dict[str, list[str]]
    custom_keys: list[str]
    strings: dict[str, list[str]]


UNKNOWN_IDS = [to_global_id("Opportunity", 999_999), to_global_id("Nope", 1), "not-an-id", ""]
BAD_CURSORS = ["not-a-cursor", "%%%", to_global_id("cursor", 1)]

# Which records an ID argument (or input field) names, by its name (else: any).
ID_TYPES = {
    "account": "Account", "campaign": "Campaign", "opportunity": "Opportunity",
    "assignedTo": "User", "userId": "User", "importJob": "ImportJob",
}

STRINGS: dict[str, list[str]] = {
    "search": ["alpha", "DEAL", "acme", "a", "verdi", "offer", "zzz", "é", "%", "_"],
    "industry": ["Technology", "Retail", "Energy", "technology", "None"],
    "status": ["Active", "Planned", "New", "Qualified", "nope"],
    "type": ["Trade Show", "Webinar", "NEW_BUSINESS", "EXISTING_BUSINESS"],
    "stage": ["PROSPECTING", "CLOSED_WON", "CLOSED_LOST", "CREATED", "DELIVERED", "nope"],
    "leadSource": ["WEB_SITE", "PARTNER", "TRADE_SHOW", "COLD_CALL"],
    "lostReason": ["price", "Price", "rival"],
    "currency": ["EUR", "USD", "GBP"],
    "name": ["salesStage", "opportunityType", "leadSource", "contactRole", "quoteStage",
             "leadStatus", "industry", "campaignType", "campaignStatus", "nope"],
    "contains": ["north", "SOUTH", "x"],
}
JSON_VALUES: list[Any] = [0, 1, 2, 3, "North", "south", "Gold", True, False, "2", None]


# --- the generator ------------------------------------------------------------------------


def unwrap(gql_type: Any) -> Any:
    return gql_type.of_type if isinstance(gql_type, GraphQLNonNull) else gql_type


def is_connection(named: GraphQLNamedType) -> bool:
    return named.name.endswith("Connection")


def literal(value: Any, gql_type: Any) -> str:
    """`value` (JSON-like) as a GraphQL literal of `gql_type`."""
    if value is None:
        return "null"
    gql_type = unwrap(gql_type)
    if isinstance(gql_type, GraphQLList):
        if not isinstance(value, list):  # a single item where a list is expected
            return literal(value, gql_type.of_type)
        return "[" + ", ".join(literal(v, gql_type.of_type) for v in value) + "]"
    if isinstance(gql_type, GraphQLInputObjectType):
        return "{" + ", ".join(
            f"{k}: {literal(v, gql_type.fields[k].type)}" for k, v in value.items()
        ) + "}"
    if isinstance(gql_type, GraphQLEnumType):
        return str(value)
    return json_literal(value)


def json_literal(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(json_literal(v) for v in value) + "]"
    return "{" + ", ".join(f"{k}: {json_literal(v)}" for k, v in value.items()) + "}"


@dataclass
class Case:
    seed: int
    root: str
    query: str
    variables: dict[str, Any]
    used: set[str] = field(default_factory=set)  # "Type.field" selected (or Interface.field)

    def __str__(self) -> str:
        return f"seed {self.seed} ({self.root}):\n{self.query}\nvariables: " + json.dumps(
            self.variables)


def roots(schema: GraphQLSchema) -> list[str]:
    """The read root fields (every field of Query), in schema order."""
    assert schema.query_type is not None
    return list(schema.query_type.fields)


# How many turns a root field gets in the generator's round (1 if not named): the lists and
# node lookups, where the planner's work lies, more than the reference data.
ROOT_TURNS = {
    "opportunities": 6, "accounts": 3, "campaigns": 3, "contacts": 3, "quotes": 3, "leads": 2,
    "products": 2, "users": 2, "documents": 2, "activities": 2, "node": 3, "nodes": 3,
    "deletedOpportunities": 2, "forecast": 2, "budgetAttainment": 2, "viewer": 2,
}


def round_of_roots(schema: GraphQLSchema) -> list[str]:
    """The root fields in the order seeds take them (seed mod the length of this list)."""
    turns = [[name] * ROOT_TURNS.get(name, 1) for name in roots(schema)]
    return [name for round_ in itertools.zip_longest(*turns) for name in round_ if name]


def reachable_fields(schema: GraphQLSchema) -> set[str]:
    """"Type.field" of every field of the object types a query can reach (a field selected
    through an interface counts for the types implementing it)."""
    found: set[str] = set()
    seen: set[str] = set()
    todo: list[Any] = [schema.query_type]
    while todo:
        named = todo.pop()
        if named.name in seen or named.name.startswith("__"):
            continue
        seen.add(named.name)
        if isinstance(named, GraphQLInterfaceType | GraphQLUnionType):
            todo += schema.get_possible_types(named)
        if isinstance(named, GraphQLObjectType | GraphQLInterfaceType):
            for name, definition in named.fields.items():
                if isinstance(named, GraphQLObjectType):
                    found.add(f"{named.name}.{name}")
                todo.append(get_named_type(definition.type))
    return found


@dataclass
class SchemaQueryGenerator:
    """One random query from a root field of the schema (same schema, pool and seed: same
    query). The root is the seed's turn in `round_of_roots`."""

    schema: GraphQLSchema
    pool: Pool
    seed: int
    rng: random.Random = field(init=False)
    definitions: list[str] = field(default_factory=list)
    variables: dict[str, Any] = field(default_factory=dict)
    fragments: list[str] = field(default_factory=list)
    names: int = 0
    aliases: int = 0
    composites: int = 0
    breadth: float = 1.0
    used: set[str] = field(default_factory=set)  # "Type.field" of every field selected

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def name(self, prefix: str) -> str:
        self.names += 1
        return f"{prefix}{self.names}"

    def case(self) -> Case:
        """The first valid query the seed gives (the validator rejects a few: fields of the
        same response name and different shapes in fragments on different types)."""
        names = round_of_roots(self.schema)
        root = names[self.seed % len(names)]
        # how readily it follows relations: some queries stay shallow, others branch out
        self.breadth = self.rng.choice([0.2, 0.5, 1.0])
        for _ in range(50):
            self.definitions, self.variables, self.fragments = [], {}, []
            self.names = self.aliases = self.composites = 0
            self.used = set()
            query = self.operation(root)
            if not validate(self.schema, parse(query)):
                return Case(self.seed, root, query, self.variables, self.used)
        raise AssertionError(f"seed {self.seed}: no valid query in 50 attempts")

    def operation(self, root: str) -> str:
        assert self.schema.query_type is not None
        root_field = self.schema.query_type.fields[root]
        selections = [self.field("Query", root, root_field, 0)]
        if self.chance(0.12):  # the same root again under an alias, other arguments
            self.aliases += 1
            again = f"again{self.aliases}"
            selections.append(self.field("Query", root, root_field, 0, alias=again))
        if self.chance(0.06):
            selections.append(self.rng.choice(["__typename", "viewer { username }"]))
        self.rng.shuffle(selections)
        body = " ".join(selections)
        if self.definitions or self.chance(0.5):
            name = self.rng.choice(["", " Generated", f" Case{self.seed}"])
            definitions = f"({', '.join(self.definitions)})" if self.definitions else ""
            header = f"query{name}{definitions} "
        else:
            header = ""
        return "\n".join([f"{header}{{ {body} }}", *self.fragments])

    # selections

    def directive(self) -> str:
        if not self.chance(0.1):
            return ""
        which = self.rng.choice(["include", "skip"])
        value = self.chance(0.7) if which == "include" else self.chance(0.3)
        if self.chance(0.5):
            return f" @{which}(if: {json_literal(value)})"
        return f" @{which}(if: {self.variable('Boolean!', value)})"

    def field(
        self, parent: str, name: str, definition: GraphQLField, level: int, alias: str = ""
    ) -> str:
        """`alias: name(arguments) @directive { selection }`."""
        if not alias and self.aliases < MAX_ALIASES and self.chance(0.08):
            self.aliases += 1
            alias = f"a{self.aliases}"
        named = get_named_type(definition.type)
        arguments = self.arguments(definition, named)
        self.used.add(f"{parent}.{name}")
        parent_type = self.schema.type_map[parent]
        if isinstance(parent_type, GraphQLInterfaceType):  # on the types implementing it
            self.used |= {f"{t.name}.{name}" for t in self.schema.get_possible_types(parent_type)}
        head = f"{alias + ': ' if alias else ''}{name}{arguments}{self.directive()}"
        if is_leaf_type(named):
            return head
        self.composites += 1
        return f"{head} {{ {self.selection(named, level + 1)} }}"

    def selection(self, named: Any, level: int) -> str:
        if isinstance(named, GraphQLUnionType | GraphQLInterfaceType):
            items = self.abstract(named, level)
        else:
            items = self.concrete(named, level)
        if not items:
            items = ["__typename"]
        self.rng.shuffle(items)
        if len(items) > 1 and self.chance(0.15):  # some of them in a named fragment
            k = self.rng.randint(1, len(items) - 1)
            fragment = self.name(f"{named.name}Fields")
            self.fragments.append(f"fragment {fragment} on {named.name} {{ "
                                  f"{' '.join(items[k:])} }}")
            items = [*items[:k], f"...{fragment}{self.directive()}"]
        return " ".join(items)

    def concrete(self, named: GraphQLObjectType, level: int) -> list[str]:
        fields = named.fields
        leaves = [n for n, f in fields.items() if is_leaf_type(get_named_type(f.type))]
        composites = [n for n in fields if n not in leaves]
        items: list[str] = []
        wrapper = is_connection(named) or named.name.endswith("Edge")
        if leaves:
            k = self.rng.randint(0 if wrapper and composites else 1, min(len(leaves), 5))
            items += [self.field(named.name, n, fields[n], level)
                      for n in self.rng.sample(leaves, k)]
        if level < MAX_LEVEL:
            p = 0.7 if wrapper else 0.5 * self.breadth * 0.8 ** level
            picked = [n for n in composites if self.composites < MAX_COMPOSITES
                      and self.chance(p)]
            if wrapper and not picked and composites and not items:
                picked = [self.rng.choice(composites)]
            for name in self.rng.sample(picked, min(3, len(picked))):
                items.append(self.field(named.name, name, fields[name], level))
        if self.chance(0.12):
            items.append("__typename")
        if named.interfaces and level < MAX_LEVEL and self.chance(0.12):
            interface = self.rng.choice(named.interfaces)
            items.append(f"... on {interface.name}{self.directive()} {{ "
                         f"{' '.join(self.abstract(interface, level, spread=False)) or 'x'} }}")
        if level < MAX_LEVEL and self.chance(0.08):  # on the type itself, or untyped
            condition = self.rng.choice([f" on {named.name}", ""])
            items.append(f"...{condition}{self.directive()} {{ "
                         f"{' '.join(self.concrete(named, level + 1)) or '__typename'} }}")
        return items

    def abstract(self, named: Any, level: int, spread: bool = True) -> list[str]:
        """The interface's own fields, and inline fragments on some of its possible types."""
        items: list[str] = []
        if isinstance(named, GraphQLInterfaceType):
            fields = named.fields
            for name in self.rng.sample(list(fields), self.rng.randint(1, min(2, len(fields)))):
                items.append(self.field(named.name, name, fields[name], level))
        if self.chance(0.2):
            items.append("__typename")
        if spread and level < MAX_LEVEL:
            possible = list(self.schema.get_possible_types(named))
            for target in self.rng.sample(possible, self.rng.randint(1, min(3, len(possible)))):
                items.append(f"... on {target.name}{self.directive()} {{ "
                             f"{' '.join(self.concrete(target, level)) or '__typename'} }}")
        return items

    # arguments

    def variable(self, gql_type: str, value: Any) -> str:
        name = self.name("v")
        self.definitions.append(f"${name}: {gql_type}")
        self.variables[name] = value
        return f"${name}"

    def arguments(self, definition: GraphQLField, named: Any) -> str:
        args = []
        paging = self.paging(named) if is_connection(named) else {}
        for name, argument in definition.args.items():
            required = isinstance(argument.type, GraphQLNonNull) and (
                argument.default_value is Undefined)
            if name in paging:
                value = paging[name]
            elif name in ("first", "last", "after", "before"):
                continue
            elif required or self.chance(0.3):
                value = self.value(name, argument.type)
            else:
                continue
            if self.chance(0.35):
                args.append(f"{name}: {self.variable(str(argument.type), value)}")
            else:
                args.append(f"{name}: {literal(value, argument.type)}")
        self.rng.shuffle(args)
        return f"({', '.join(args)})" if args else ""

    def paging(self, connection: Any) -> dict[str, Any]:
        how = self.rng.choice(["none", "first", "first", "after", "last", "before", "odd"])
        size = self.rng.choice([0, 1, 2, 3, 5, 10, 100] + ([101, -1] if self.chance(0.1) else []))
        found: dict[str, Any] = {}
        if how in ("first", "after", "odd"):
            found["first"] = size
        if how in ("last", "before"):
            found["last"] = size
        if how in ("after", "before", "odd"):
            found["after" if how == "after" else "before"] = self.cursor(connection.name)
        return found

    def cursor(self, connection: str) -> str | None:
        own = self.pool.cursors.get(connection, [])
        roll = self.rng.random()
        if own and roll < 0.7:
            return self.rng.choice(own)
        if roll < 0.8:
            return self.rng.choice(BAD_CURSORS)
        others = [c for cursors in self.pool.cursors.values() for c in cursors]
        return self.rng.choice(others) if others and roll < 0.93 else None

    def value(self, name: str, gql_type: Any) -> Any:
        if not isinstance(gql_type, GraphQLNonNull) and self.chance(0.05):
            return None
        gql_type = unwrap(gql_type)
        if isinstance(gql_type, GraphQLList):
            return [self.value(name, gql_type.of_type) for _ in range(self.rng.randint(1, 3))]
        if isinstance(gql_type, GraphQLInputObjectType):
            fields = gql_type.fields
            chosen = [n for n, f in fields.items() if (
                isinstance(f.type, GraphQLNonNull) and f.default_value is Undefined
            ) or self.chance(1.5 / len(fields))]
            return {n: self.value(n, fields[n].type) for n in chosen}
        if isinstance(gql_type, GraphQLEnumType):
            return self.rng.choice(list(gql_type.values))
        return self.scalar(name, gql_type.name)

    def scalar(self, name: str, scalar: str) -> Any:
        rng = self.rng
        if scalar == "ID":
            return self.an_id(name)
        if scalar == "Int":
            if name == "year":
                return TODAY.year + rng.choice([0, 0, -1, 1])
            if name == "number":
                return rng.choice([1, 2, 3, 4, 6, 12, 13, 0])
            return rng.randint(-1, 5)
        if scalar == "Boolean":
            return self.chance(0.5)
        if scalar == "Decimal":
            return rng.choice(["0", "15.10", "500.00", "1000", "2500.5", "99999.99", "-1"])
        if scalar == "Date":
            return str(TODAY + dt.timedelta(days=rng.randint(-40, 90)))
        if scalar == "DateTime":
            return (NOW - dt.timedelta(days=rng.randint(-1, 60))).isoformat()
        if scalar == "JSON":
            return rng.choice(JSON_VALUES)
        if name in ("key", "customFieldKey"):
            return rng.choice([*self.pool.custom_keys, "cf_nope"])
        return rng.choice(self.pool.strings.get(name) or self.pool.strings["search"])

    def an_id(self, name: str) -> str:
        kind = ID_TYPES.get(name)
        ids = self.pool.ids.get(kind, []) if kind else [
            i for found in self.pool.ids.values() for i in found]
        if not ids or self.chance(0.1):
            return self.rng.choice(UNKNOWN_IDS)
        return self.rng.choice(ids)


# --- the seeded data -----------------------------------------------------------------------

CUSTOM_FIELDS = [("ACCOUNT", "Tier", "TEXT"), ("CONTACT", "Vip", "BOOLEAN"),
                 ("LEAD", "Score", "INTEGER")]


@pytest.fixture
async def world(custom_fields, deals, team, factory, db, clients) -> dict[str, Any]:
    """test_planner.py's deals (with their custom fields) and around them: contacts in roles,
    stage and field history, budgets, documents, activities and comments on deals and
    accounts (some deleted), leads (one converted), custom fields on accounts, contacts and
    leads. Returns the deleted records' global ids (to ask for by id)."""
    rep, rep2, manager = team["rep"], team["rep2"], team["manager"]
    admin, other_rep = team["admin"], team["other_rep"]
    opportunities = deals["deals"]
    admin_clients = await clients("admin")
    for entity, label, kind in CUSTOM_FIELDS:
        data = await admin_clients.off.data(
            CREATE_FIELD, {"input": {"entity": entity, "label": label, "type": kind}})
        assert data["createCustomField"]["userErrors"] == []

    accounts = list(await db.scalars(select(models.Account.id).order_by(models.Account.id)))
    owners = [rep, rep2, other_rep, manager]
    contacts = []
    for i in range(8):
        account_id = accounts[i % len(accounts)] if i % 3 else None
        contacts.append(await factory.contact(
            owners[i % len(owners)], f"Contact {i}", first_name=None if i % 2 else f"N{i}",
            email=f"c{i}@example.com" if i % 3 else None, account_id=account_id,
            title="CEO" if i == 1 else None, deleted_at=NOW if i == 7 else None,
            custom_fields={} if i % 2 else {"cf_vip": i % 4 == 0},
        ))
    for i, account_id in enumerate(accounts):
        if i % 2 == 0:
            await db.execute(update(models.Account).where(models.Account.id == account_id)
                             .values(custom_fields={"cf_tier": ["Gold", "Silver"][i % 4 // 2]}))
    roles = ["Decision Maker", None, "Influencer", "Technical Evaluator"]
    for i, deal in enumerate(opportunities):
        for j in range(i % 4):
            db.add(models.OpportunityContact(
                opportunity_id=deal.id, contact_id=contacts[(i + j) % len(contacts)].id,
                role=roles[(i + j) % len(roles)], is_primary=j == 0 and i % 2 == 0))
        if i % 3 == 1:  # a second stage change, and field changes
            db.add(models.StageChange(
                opportunity_id=deal.id, from_stage="PROSPECTING", to_stage=deal.sales_stage,
                amount=deal.amount, probability=deal.probability,
                expected_close_date=deal.expected_close_date, changed_by_id=admin.id,
                changed_at=NOW - dt.timedelta(days=i % 5, minutes=i), note="moved"
                if i % 2 else None))
            db.add(models.FieldChange(
                opportunity_id=deal.id, field="amount", old_value="10.00",
                new_value=str(deal.amount), changed_by_id=deal.assigned_to_id,
                changed_at=NOW - dt.timedelta(days=i % 4, minutes=i)))
            db.add(models.FieldChange(
                opportunity_id=deal.id, field="cf_size", old_value=None, new_value=i % 4,
                source="IMPORT", changed_by_id=admin.id,
                changed_at=NOW - dt.timedelta(days=1, minutes=i)))
    for user, amount in ((rep, "10000.00"), (manager, "50000.00"), (other_rep, "7000.00"),
                         (rep2, "0.00")):
        db.add(models.Budget(user_id=user.id, year=TODAY.year, period="MONTH",
                             number=TODAY.month, amount=Decimal(amount)))
        db.add(models.Budget(user_id=user.id, year=TODAY.year, period="QUARTER",
                             number=(TODAY.month - 1) // 3 + 1, amount=Decimal(amount) * 3))
    db.add(models.Budget(user_id=rep.id, year=TODAY.year, period="YEAR", number=1,
                         amount=Decimal("120000.00")))
    await db.flush()

    campaign_ids = list(await db.scalars(select(models.Campaign.id).order_by(
        models.Campaign.id)))
    leads = []
    for i in range(5):
        leads.append(await factory.lead(
            owners[i % len(owners)], f"Lead {i}", company=f"Company {i}",
            status=["New", "Qualified", None][i % 3], industry="Retail" if i % 2 else None,
            campaign_id=campaign_ids[i % len(campaign_ids)] if i % 2 else None,
            custom_fields={"cf_score": i} if i % 2 else {}, deleted_at=NOW if i == 4 else None,
        ))
    converted = leads[0]
    converted.is_converted, converted.converted_at = True, NOW - dt.timedelta(days=3)
    converted.converted_account_id = accounts[0]
    converted.converted_contact_id = contacts[0].id
    converted.converted_opportunity_id = opportunities[0].id

    targets = [("OPPORTUNITY", d.id) for d in opportunities[:12]] + [
        ("ACCOUNT", a) for a in accounts[:3]] + [("CONTACT", contacts[1].id),
                                                 ("LEAD", leads[1].id)]
    documents, activities, comments = [], [], []
    for i, (entity, record_id) in enumerate(targets):
        author = [rep, manager, other_rep, admin, rep2][i % 5]
        if i % 2 == 0:
            document = models.Document(
                title=f"Proposal {i}", filename=f"proposal-{i}.pdf", content_type=
                "application/pdf", size=1000 + i, sha256=f"{i:064x}", created_by_id=author.id,
                deleted_at=NOW if i == 6 else None)
            db.add(document)
            await db.flush()
            documents.append(document)
            db.add(models.DocumentLink(document_id=document.id, entity=entity,
                                       record_id=record_id))
            if i % 4 == 0 and entity == "OPPORTUNITY":  # on the deal's account too
                db.add(models.DocumentLink(document_id=document.id, entity="ACCOUNT",
                                           record_id=accounts[i % len(accounts)]))
        if i % 3 != 2:
            activity = models.Activity(
                type=["CALL", "MEETING", "TASK", "EMAIL"][i % 4], subject=f"Follow up {i}",
                body="Notes" if i % 2 else None, status=["PLANNED", "COMPLETED", "CANCELLED"][
                    i % 3], start_at=NOW + dt.timedelta(days=i - 5) if i % 2 else None,
                due_at=NOW + dt.timedelta(days=i) if i % 3 else None,
                completed_at=NOW - dt.timedelta(days=1) if i % 3 == 1 else None,
                assigned_to_id=author.id, created_by_id=admin.id,
                deleted_at=NOW if i == 9 else None)
            db.add(activity)
            await db.flush()
            activities.append(activity)
            db.add(models.ActivityLink(activity_id=activity.id, entity=entity,
                                       record_id=record_id))
        if i % 2 == 1 or entity != "OPPORTUNITY":
            comment = models.Comment(
                entity=entity, record_id=record_id, author_id=author.id, text=f"Comment {i}",
                reply_to_id=comments[-1].id if comments and i % 4 == 3 else None,
                deleted_at=NOW if i == 5 else None)
            db.add(comment)
            await db.flush()
            comments.append(comment)
    await db.commit()
    return {"deleted": {
        "Opportunity": opportunities[29].id, "Contact": contacts[7].id, "Lead": leads[4].id,
        "Document": documents[3].id, "Activity": activities[6].id, "Comment": comments[2].id,
    }}


IDS = """
{
  opportunities(first: 100) { edges { cursor node { id
    comments(first: 100) { edges { cursor node { id } } }
    timeline(first: 100) { edges { cursor } }
    quotes { id lines { product { id } } } } } }
  accounts(first: 100) { edges { cursor node { id
    opportunities(first: 100) { edges { cursor } } contacts(first: 100) { edges { cursor } }
    quotes(first: 100) { edges { cursor } } } } }
  contacts(first: 100) { edges { cursor node { id opportunities(first: 100) {
    edges { cursor } } } } }
  leads(first: 100) { edges { cursor node { id } } }
  campaigns(first: 100) { edges { cursor node { id } } }
  quotes(first: 100) { edges { cursor node { id } } }
  products(first: 100) { edges { cursor node { id } } }
  users(first: 100) { edges { cursor node { id } } }
  documents(first: 100) { edges { cursor node { id } } }
  activities(first: 100) { edges { cursor node { id } } }
  budgets { id }
  configurationChanges(first: 100) { edges { cursor node { id } } }
}"""


def collect(value: Any, schema: GraphQLSchema, parent: Any, pool: Pool) -> None:
    """Every `id` and `cursor` of a response, filed by the GraphQL type they are found on."""
    if isinstance(value, list):
        for item in value:
            collect(item, schema, parent, pool)
        return
    if not isinstance(value, dict):
        return
    for key, item in value.items():
        definition = parent.fields[key]
        if key == "id":
            pool.ids.setdefault(parent.name, []).append(item)
        elif key == "cursor":
            pool.cursors.setdefault(parent.name.replace("Edge", "Connection"), []).append(item)
        elif not is_leaf_type(get_named_type(definition.type)):
            collect(item, schema, get_named_type(definition.type), pool)


async def gather(schema: GraphQLSchema, admin: Both, deleted: dict[str, int]) -> Pool:
    """The pool of the seeded data: what an admin sees, and the deleted records."""
    pool = Pool(ids={}, cursors={}, custom_keys=[], strings=STRINGS)
    collect(await admin.off.data(IDS), schema, schema.query_type, pool)
    for type_name, pk in deleted.items():
        pool.ids.setdefault(type_name, []).append(to_global_id(type_name, pk))
    # each once, in the responses' order (the same on every run: not so the values, since
    # cursors hold timestamps)
    pool.ids = {name: list(dict.fromkeys(ids)) for name, ids in pool.ids.items()}
    pool.cursors = {name: list(dict.fromkeys(found)) for name, found in pool.cursors.items()}
    keys = await admin.off.data(
        "{ o: customFieldDefinitions(entity: OPPORTUNITY) { key } a: customFieldDefinitions("
        "entity: ACCOUNT) { key } c: customFieldDefinitions(entity: CONTACT) { key } "
        "l: customFieldDefinitions(entity: LEAD) { key } }")
    pool.custom_keys = sorted({d["key"] for defs in keys.values() for d in defs})
    return pool


# --- running them --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def read_schema() -> GraphQLSchema:
    return build_schema()._schema  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
async def public_apps(settings) -> Any:
    async with open_apps(settings.model_copy(update={"sharing": "PUBLIC"})) as found:
        yield found


@pytest.fixture
def sharing_apps(apps, public_apps) -> dict[str, dict[str, Any]]:
    return {"PRIVATE": apps, "PUBLIC": public_apps}


@pytest.fixture
def release_crashed(engine) -> Any:
    """After a request that crashed (a generated query the app failed on): its session's
    connection is left checked out, on PostgreSQL idle in a transaction whose locks the next
    test's TRUNCATE would wait for forever. Collected, and on PostgreSQL ended, within the
    test."""

    async def release() -> None:
        gc.collect()
        async with engine.connect() as connection:
            if connection.dialect.name == "postgresql":
                await connection.execute(text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = "
                    "current_database() AND state = 'idle in transaction' AND pid <> "
                    "pg_backend_pid()"))

    return release


@dataclass
class Outcome:
    """One request pair: how it differed (None: not at all), and what the planner did."""

    difference: str | None
    stats: Counter[str]
    errors: bool
    nulls: bool


def has_null(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, dict):
        return any(has_null(v) for v in value.values())
    if isinstance(value, list):
        return any(has_null(v) for v in value)
    return False


async def run(case: Case, both: Both, plans: Any) -> Outcome:
    """The case sent to both apps (twice to the planner's: the second time through the
    server's fast path for cached plans)."""
    before = plans.stats.copy()
    on, off, difference = await compare(both, case.query, case.variables, times=2)
    body = off.json() if off.headers.get("content-type", "").startswith("application/json") \
        else {}
    stats = plans.stats.copy()
    stats.subtract(before)
    return Outcome(difference and f"seed {case.seed} ({case.root}) {difference}", +stats,
                   bool(body.get("errors")), has_null(body.get("data")))


class Coverage:
    """Requests by root field: what the planner did with them, errors and nulls seen."""

    def __init__(self) -> None:
        self.by_root: dict[str, Counter[str]] = defaultdict(Counter)

    def add(self, root: str, outcome: Outcome) -> None:
        counter = self.by_root[root]
        counter.update(outcome.stats)
        counter["requests"] += 2
        counter["errors"] += outcome.errors
        counter["nulls"] += outcome.nulls

    def planned_ratio(self, root: str) -> float:
        counter = self.by_root[root]
        return counter["planned"] / counter["requests"] if counter["requests"] else 0.0

    def table(self, title: str) -> str:
        columns = ["requests", "planned", "unsupported", "fallback", "failed", "errors", "nulls"]
        lines = [title, f"{'root':<24}" + "".join(f"{c:>12}" for c in columns) + "   planned"]
        total: Counter[str] = Counter()
        for root in sorted(self.by_root):
            counter = self.by_root[root]
            total.update(counter)
            lines.append(f"{root:<24}" + "".join(f"{counter[c]:>12}" for c in columns)
                         + f"{self.planned_ratio(root):>9.0%}")
        lines.append(f"{'all':<24}" + "".join(f"{total[c]:>12}" for c in columns))
        return "\n".join(lines)

    def total(self, key: str) -> int:
        return sum(counter[key] for counter in self.by_root.values())


@pytest.mark.no_database
def test_the_generator_is_reproducible_and_covers_the_read_schema(read_schema) -> None:
    pool = Pool(
        ids={"Opportunity": [to_global_id("Opportunity", i) for i in range(1, 4)],
             "User": [to_global_id("User", 1)], "Account": [to_global_id("Account", 2)]},
        cursors={"OpportunityConnection": ["b3BwOjE"], "TimelineItemConnection": ["dGw6MQ"]},
        custom_keys=["cf_size"], strings=STRINGS)
    cases = [SchemaQueryGenerator(read_schema, pool, seed).case() for seed in range(200)]
    again = [SchemaQueryGenerator(read_schema, pool, seed).case() for seed in range(50)]
    assert [(c.query, c.variables) for c in cases[:50]] == [(c.query, c.variables) for c in again]
    assert {c.root for c in cases} == set(roots(read_schema))
    # every field of the read schema's object types, or nearly (the rarest are deep down)
    used = set().union(*(c.used for c in cases))
    fields = reachable_fields(read_schema)
    missing = sorted(f for f in fields if f not in used)
    print(f"fields selected by seeds 0-199: {len(fields) - len(missing)} of {len(fields)}; "
          f"not: {missing}")
    assert len(missing) < 0.1 * len(fields), missing
    text = "\n".join(c.query for c in cases)
    for needle in (
        "node(", "nodes(", "viewer {", "forecast(", "budgetAttainment(", "timeline", "customField(",
        "customFields {", "stageHistory {", "fieldHistory {", "contacts {", "quotes {", "lines {",
        "opportunityCount", "grandTotal", "daysInStage", "... on Node", "... on Opportunity",
        "... on StageChange", "fragment ", "@include(if: $", "@skip(", "after:", "before:",
        "last:", "orderBy:", "filter:", "$v", "a1: ",
    ):
        assert needle in text, needle
    # the issue's list: nested connections with arguments, plain lists, computed fields
    for needle in (
        "Account.opportunities", "Campaign.opportunities", "Account.contacts",
        "Contact.opportunities", "Opportunity.contacts", "Opportunity.stageHistory",
        "Opportunity.fieldHistory", "Opportunity.quotes", "Quote.lines", "Campaign.roi",
        "Campaign.pipelineAmount", "Quote.grandTotal", "Opportunity.daysInStage",
        "Opportunity.customFields", "Account.customField", "Lead.timeline", "Query.forecast",
        "Query.budgetAttainment", "Query.node", "Query.nodes", "Query.viewer",
    ):
        assert needle in used, needle


async def generated_run(
    sharing: str, seeds: list[int], read_schema: GraphQLSchema, world: dict[str, Any],
    clients: Any, sharing_apps: dict[str, dict[str, Any]], release_crashed: Any,
) -> tuple[list[str], Coverage]:
    pair = sharing_apps[sharing]
    plans = plans_of(pair)
    viewers = {role: await clients(role, pair) for role in ROLES}
    pool = await gather(read_schema, viewers["admin"], world["deleted"])
    differences, coverage, crashed = [], Coverage(), False
    for seed in seeds:
        case = SchemaQueryGenerator(read_schema, pool, seed).case()
        for role in ROLES:
            try:
                outcome = await run(case, viewers[role], plans)
            except (Exception, asyncio.CancelledError) as exc:  # the app itself failed
                differences.append(f"as {role}, {case}\nraised {exc!r}")
                crashed = True
                continue
            coverage.add(case.root, outcome)
            if outcome.difference:
                differences.append(outcome.difference)
    if crashed:
        await release_crashed()
    return differences, coverage


@pytest.mark.parametrize("sharing", SHARING)
async def test_generated_queries_over_the_whole_read_schema(
    sharing, read_schema, world, clients, sharing_apps, release_crashed
):
    # given: QUERIES generated queries, each as every role
    started = time.monotonic()
    seeds = list(range(QUERIES))

    # when
    differences, coverage = await generated_run(
        sharing, seeds, read_schema, world, clients, sharing_apps, release_crashed)

    # then: the same bytes everywhere, no planner fault, and the planner's share
    print("\n" + coverage.table(f"{sharing} sharing: {len(seeds)} queries × {len(ROLES)} "
                                f"roles, {time.monotonic() - started:.1f} s"))
    print("not planned, why:", dict(plans_of(sharing_apps[sharing]).unsupported))
    assert not differences, "\n\n".join(differences)
    assert coverage.total("failed") == 0, coverage.table("planner faults")
    assert coverage.total("planned") > 0
    assert coverage.total("errors") > 0 and coverage.total("nulls") > 0
    low = {root: f"{coverage.planned_ratio(root):.0%} < {floor:.0%}"
           for root, floor in MIN_PLANNED.items() if coverage.planned_ratio(root) < floor}
    assert not low, low


async def test_a_difference_fails_the_comparison(apps, clients):
    # given: the planner's client sending another query than graphql-core's (a positive
    # control: compare and run report a difference when the bodies differ)
    both = await clients("admin")
    plans = plans_of(apps)
    wrong = Both(both.on, both.on, "admin")  # both sides the planner's: same bytes
    case = Case(0, "viewer", "{ viewer { username } }", {})
    assert (await run(case, wrong, plans)).difference is None

    class Other:
        """A client answering another query."""

        async def post(self, query: str, variables: Any = None) -> Any:
            return await both.off.post("{ viewer { fullName } }", variables)

    # when
    outcome = await run(case, Both(both.on, Other(), "admin"), plans)  # type: ignore[arg-type]

    # then
    assert outcome.difference is not None
    assert "$.data.viewer: keys ['username'] != ['fullName']" in outcome.difference
    assert "seed 0 (viewer)" in outcome.difference


SHARED_LOADER = """
{ accounts(first: 5) {
    nodes { timeline(after: "not-a-cursor") { totalCount } customFields { key } }
    edges { node { customFields { key } } } } }"""


@pytest.mark.parametrize("mode", ["on", "off"])
async def test_an_error_beside_a_shared_loader_is_answered_not_cancelled(mode, world, clients):
    # given: a non-null field fails while a DataLoader key (the accounts' custom fields) is
    # awaited from two places; graphql-core cancels the resolvers beside the failed field
    client = getattr(await clients("admin"), mode)

    # when
    response = await client.post(SHARED_LOADER)

    # then: graphql-core's error, as for a single use of the loader (the cancelled awaiter
    # no longer cancels the future the other one awaits: resolvers/loaders.DataLoader)
    assert response.status_code == 200
    assert response.json()["errors"][0]["message"] == "Invalid cursor: 'not-a-cursor'."
