"""Record visibility (API.md "Authentication and visibility") on every read path.

Under PRIVATE a sales rep sees the records assigned to them, a manager also those of everyone
below them in the hierarchy (at any depth), an admin everything. Under PUBLIC everyone reads
everything. Campaigns, products, users and sales stages are visible to every role, but a
campaign's figures count only the deals the viewer may see.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

import models
from resolvers.ids import to_global_id
from server.settings import Settings
from tests.conftest import GraphQLClient

ROOT_LISTS = """
query RootLists {
  opportunities(first: 100) { totalCount nodes { name } }
  accounts(first: 100) { totalCount nodes { name } }
  contacts(first: 100) { totalCount nodes { lastName } }
  leads(first: 100) { totalCount nodes { lastName } }
  quotes(first: 100) { totalCount edges { node { subject } } }
}
"""

NODE = """
query Node($id: ID!) {
  node(id: $id) {
    __typename
    id
    ... on Opportunity { name }
    ... on Account { name }
    ... on Contact { lastName }
    ... on Lead { lastName }
    ... on Quote { subject }
    ... on Budget { amount }
  }
}
"""

NODES = """
query Nodes($ids: [ID!]!) {
  nodes(ids: $ids) {
    __typename
    id
  }
}
"""

FILTERED_BY_OWNER = """
query FilteredByOwner($owner: [ID!]) {
  opportunities(filter: {assignedTo: $owner}) { totalCount nodes { name } }
  accounts(filter: {assignedTo: $owner}) { totalCount nodes { name } }
  contacts(filter: {assignedTo: $owner}) { totalCount nodes { lastName } }
  leads(filter: {assignedTo: $owner}) { totalCount nodes { lastName } }
}
"""

ACCOUNT_RELATIONS = """
query AccountRelations($id: ID!) {
  node(id: $id) {
    ... on Account {
      name
      opportunities(first: 50) { totalCount nodes { name } }
      contacts(first: 50) { totalCount nodes { lastName } }
      quotes(first: 50) { totalCount nodes { subject } }
    }
  }
}
"""

ACCOUNTS_WITH_DEALS = """
query AccountsWithDeals {
  accounts(first: 50) {
    nodes {
      name
      opportunities(first: 50) { totalCount edges { node { name } } }
    }
  }
}
"""

DEAL_RELATIONS = """
query DealRelations {
  opportunities(first: 50) {
    nodes {
      name
      account { name }
      contact { lastName }
      contacts { isPrimary contact { lastName } }
      quotes { subject account { name } }
    }
  }
}
"""

CAMPAIGN_FIGURES = """
query CampaignFigures {
  campaigns(first: 10) {
    totalCount
    nodes {
      name
      opportunityCount
      pipelineAmount
      wonAmount
      opportunities(first: 50) { totalCount nodes { name } }
    }
  }
}
"""

BUDGETS = """
query Budgets($userId: ID) {
  budgets(userId: $userId) { amount user { username } }
}
"""

SHARED_LISTS = """
query SharedLists {
  campaigns(first: 100) { totalCount nodes { name } }
  products(first: 100) { totalCount nodes { name } }
  users(first: 100) { totalCount nodes { username } }
  salesStages { key }
}
"""

LEAD_CONVERSION = """
query LeadConversion {
  leads(first: 10) {
    nodes {
      lastName
      convertedAccount { name }
      convertedContact { lastName }
      convertedOpportunity { name }
    }
  }
}
"""

OWNERS = (
    "admin", "manager", "rep", "rep2", "team_lead", "junior", "other_manager", "other_rep",
)

# Whose records each viewer may read under PRIVATE. team_lead reports to manager and junior to
# team_lead, so junior is two levels below manager.
VISIBLE_OWNERS: dict[str, set[str]] = {
    "admin": set(OWNERS),
    "manager": {"manager", "rep", "rep2", "team_lead", "junior"},
    "team_lead": {"team_lead", "junior"},
    "rep": {"rep"},
    "rep2": {"rep2"},
    "junior": {"junior"},
    "other_manager": {"other_manager", "other_rep"},
    "other_rep": {"other_rep"},
}

YEAR = dt.date.today().year


def owners_of(names: list[str]) -> list[str]:
    """Records below are named "<owner> <what>"; the owners, sorted, repeats kept."""
    return sorted(name.rsplit(" ", 1)[0] for name in names)


def gid(record: Any) -> str:
    return to_global_id(type(record).__name__, record.id)


@pytest.fixture
async def users(team, factory, db) -> dict[str, models.User]:
    """The conftest team plus a chain below manager: manager ← team_lead ← junior."""
    team_lead = await factory.user("team_lead", "MANAGER", team["manager"])
    junior = await factory.user("junior", "SALES_REP", team_lead)
    await db.commit()
    return {**team, "team_lead": team_lead, "junior": junior}


@pytest.fixture
async def world(users, factory, db) -> dict[str, dict[str, Any]]:
    """One deal, account, contact, lead, quote and budget per user, named after the owner."""
    product = await factory.product()
    records: dict[str, dict[str, Any]] = {}
    for name in OWNERS:
        owner = users[name]
        account = await factory.account(owner, name=f"{name} account")
        contact = await factory.contact(owner, last_name=f"{name} contact", account_id=account.id)
        lead = await factory.lead(owner, last_name=f"{name} lead")
        deal = await factory.opportunity(owner, name=f"{name} deal", account_id=account.id)
        quote = await factory.quote(deal, [(product, "1", "10.00", "0", "0")], f"{name} quote")
        budget = models.Budget(
            user_id=owner.id, year=YEAR, period="YEAR", number=1, amount=Decimal("1000.00")
        )
        db.add(budget)
        await db.flush()
        records[name] = {
            "Opportunity": deal, "Account": account, "Contact": contact, "Lead": lead,
            "Quote": quote, "Budget": budget,
        }
    await db.commit()
    return records


# --- root lists ------------------------------------------------------------------------


@pytest.mark.parametrize("viewer", sorted(VISIBLE_OWNERS))
async def test_root_lists_show_only_records_the_viewer_may_see(viewer, users, world, client_for):
    # given
    client = await client_for(users[viewer])
    expected = sorted(VISIBLE_OWNERS[viewer])

    # when
    data = await client.data(ROOT_LISTS)

    # then
    for field, key in [
        ("opportunities", "name"), ("accounts", "name"), ("contacts", "lastName"),
        ("leads", "lastName"),
    ]:
        names = [n[key] for n in data[field]["nodes"]]
        assert owners_of(names) == expected, field
        assert data[field]["totalCount"] == len(expected), field
    quotes = [e["node"]["subject"] for e in data["quotes"]["edges"]]
    assert owners_of(quotes) == expected
    assert data["quotes"]["totalCount"] == len(expected)


async def test_a_rep_cannot_widen_a_list_by_filtering_on_someone_elses_records(
    users, world, client_for
):
    # given
    client = await client_for(users["rep"])
    others = [to_global_id("User", users[n].id) for n in ("rep2", "other_rep", "admin")]

    # when
    data = await client.data(FILTERED_BY_OWNER, {"owner": others})

    # then
    for field in ("opportunities", "accounts", "contacts", "leads"):
        assert data[field] == {"totalCount": 0, "nodes": []}, field


async def test_a_manager_filtering_on_a_team_member_sees_that_members_records(
    users, world, client_for
):
    # given
    client = await client_for(users["manager"])
    junior = [to_global_id("User", users["junior"].id)]

    # when
    data = await client.data(FILTERED_BY_OWNER, {"owner": junior})

    # then
    assert [n["name"] for n in data["opportunities"]["nodes"]] == ["junior deal"]
    assert [n["name"] for n in data["accounts"]["nodes"]] == ["junior account"]
    assert data["contacts"]["totalCount"] == data["leads"]["totalCount"] == 1


async def test_deleted_records_vanish_even_for_an_admin(users, world, db, client_for):
    # given
    deal = world["rep"]["Opportunity"]
    deal.deleted_at = dt.datetime.now(dt.UTC)
    world["rep"]["Account"].deleted_at = dt.datetime.now(dt.UTC)
    await db.commit()
    client = await client_for(users["admin"])

    # when
    lists = await client.data(ROOT_LISTS)
    node = await client.data(NODE, {"id": gid(deal)})

    # then
    assert "rep" not in owners_of([n["name"] for n in lists["opportunities"]["nodes"]])
    assert "rep" not in owners_of([n["name"] for n in lists["accounts"]["nodes"]])
    assert lists["opportunities"]["totalCount"] == len(OWNERS) - 1
    # a quote goes with its deal (an admin sees every live deal: the rule's other branch)
    quotes = [e["node"]["subject"] for e in lists["quotes"]["edges"]]
    assert "rep" not in owners_of(quotes) and len(quotes) == len(OWNERS) - 1
    assert lists["quotes"]["totalCount"] == len(OWNERS) - 1
    assert node == {"node": None}


# --- node and nodes ---------------------------------------------------------------------

TYPES = ("Opportunity", "Account", "Contact", "Lead", "Quote", "Budget")


@pytest.mark.parametrize("type_name", TYPES)
async def test_node_resolves_a_record_the_viewer_may_see(type_name, users, world, client_for):
    # given
    client = await client_for(users["manager"])
    record = world["junior"][type_name]

    # when
    data = await client.data(NODE, {"id": gid(record)})

    # then
    assert data["node"]["__typename"] == type_name
    assert data["node"]["id"] == gid(record)


@pytest.mark.parametrize("type_name", TYPES)
async def test_node_of_an_invisible_record_is_null_like_a_missing_one(
    type_name, users, world, client_for
):
    # given: rep may not see other_rep's record; the missing id never existed
    client = await client_for(users["rep"])
    invisible = gid(world["other_rep"][type_name])
    missing = to_global_id(type_name, 999_999)

    # when
    hidden = await client.query(NODE, {"id": invisible})
    absent = await client.query(NODE, {"id": missing})

    # then
    assert hidden == {"data": {"node": None}}
    assert absent == hidden


@pytest.mark.parametrize("viewer", ["manager", "other_manager"])
async def test_a_manager_cannot_open_another_managers_team_records_by_id(
    viewer, users, world, client_for
):
    # given
    client = await client_for(users[viewer])
    foreign = "other_rep" if viewer == "manager" else "junior"

    # when
    data = await client.data(NODE, {"id": gid(world[foreign]["Opportunity"])})

    # then
    assert data == {"node": None}


async def test_nodes_returns_null_for_invisible_and_missing_ids_in_place(
    users, world, client_for
):
    # given
    client = await client_for(users["rep"])
    own = [gid(world["rep"][t]) for t in TYPES]
    foreign = [gid(world["other_rep"][t]) for t in TYPES]
    missing = [to_global_id(t, 999_999) for t in TYPES]

    # when
    data = await client.data(NODES, {"ids": [*own, *foreign, *missing, "not-an-id"]})

    # then
    assert [n and n["id"] for n in data["nodes"]] == [*own, *[None] * (2 * len(TYPES) + 1)]


async def test_an_admin_opens_any_record_by_id(users, world, client_for):
    # given
    client = await client_for(users["admin"])
    ids = [gid(world[o][t]) for o in OWNERS for t in TYPES]

    # when
    data = await client.data(NODES, {"ids": ids})

    # then
    assert [n and n["id"] for n in data["nodes"]] == ids


# --- nested relations -----------------------------------------------------------------


@pytest.fixture
async def shared_account(users, factory, db) -> dict[str, Any]:
    """rep's account carrying deals, contacts and quotes of rep, rep2 and other_rep."""
    product = await factory.product()
    account = await factory.account(users["rep"], name="rep account")
    for name in ("rep", "rep2", "other_rep"):
        owner = users[name]
        deal = await factory.opportunity(owner, name=f"{name} deal", account_id=account.id)
        await factory.contact(owner, last_name=f"{name} contact", account_id=account.id)
        await factory.quote(deal, [(product, "1", "10.00", "0", "0")], f"{name} quote")
    await db.commit()
    return {"account": account}


@pytest.mark.parametrize(
    ("viewer", "expected"),
    [
        ("rep", ["rep"]),
        ("manager", ["rep", "rep2"]),
        ("admin", ["other_rep", "rep", "rep2"]),
    ],
)
async def test_an_accounts_relations_show_only_what_the_viewer_may_see(
    viewer, expected, users, shared_account, client_for
):
    # given
    client = await client_for(users[viewer])

    # when
    data = await client.data(ACCOUNT_RELATIONS, {"id": gid(shared_account["account"])})

    # then
    account = data["node"]
    for field, key in [("opportunities", "name"), ("contacts", "lastName"), ("quotes", "subject")]:
        assert owners_of([n[key] for n in account[field]["nodes"]]) == expected, field
        assert account[field]["totalCount"] == len(expected), field


async def test_an_account_the_viewer_may_not_see_is_not_reachable_with_its_deals(
    users, shared_account, client_for
):
    # given: other_rep has a deal on rep's account but may not see the account
    client = await client_for(users["other_rep"])

    # when
    data = await client.data(ACCOUNT_RELATIONS, {"id": gid(shared_account["account"])})
    deals = await client.data(DEAL_RELATIONS)

    # then
    assert data == {"node": None}
    assert [(d["name"], d["account"]) for d in deals["opportunities"]["nodes"]] == [
        ("other_rep deal", None)
    ]


async def test_account_opportunities_are_filtered_per_account_on_a_list_page(
    users, factory, db, client_for
):
    # given: two accounts of rep, each with a deal of rep and one of other_rep
    for n in range(2):
        account = await factory.account(users["rep"], name=f"rep account{n}")
        for owner in ("rep", "other_rep"):
            await factory.opportunity(users[owner], name=f"{owner} d{n}", account_id=account.id)
    await db.commit()
    client = await client_for(users["rep"])

    # when
    data = await client.data(ACCOUNTS_WITH_DEALS)

    # then
    pages = {
        a["name"]: (
            a["opportunities"]["totalCount"],
            [e["node"]["name"] for e in a["opportunities"]["edges"]],
        )
        for a in data["accounts"]["nodes"]
    }
    assert pages == {"rep account0": (1, ["rep d0"]), "rep account1": (1, ["rep d1"])}


async def test_a_deal_shows_only_the_contacts_and_account_the_viewer_may_see(
    users, factory, db, client_for
):
    # given: rep's deal on other_rep's account; other_rep's contact is the primary one
    foreign_account = await factory.account(users["other_rep"], name="other_rep account")
    deal = await factory.opportunity(users["rep"], name="rep deal", account_id=foreign_account.id)
    own = await factory.contact(users["rep"], last_name="rep contact")
    foreign = await factory.contact(users["other_rep"], last_name="other_rep contact")
    db.add_all([
        models.OpportunityContact(opportunity_id=deal.id, contact_id=foreign.id, is_primary=True),
        models.OpportunityContact(opportunity_id=deal.id, contact_id=own.id, role="BUSINESS_USER"),
    ])
    product = await factory.product()
    await factory.quote(deal, [(product, "1", "10.00", "0", "0")], "rep quote")
    await db.commit()
    rep, admin = await client_for(users["rep"]), await client_for(users["admin"])

    # when
    seen_by_rep = (await rep.data(DEAL_RELATIONS))["opportunities"]["nodes"]
    seen_by_admin = (await admin.data(DEAL_RELATIONS))["opportunities"]["nodes"]

    # then
    assert seen_by_rep == [{
        "name": "rep deal",
        "account": None,
        "contact": None,
        "contacts": [{"isPrimary": False, "contact": {"lastName": "rep contact"}}],
        "quotes": [{"subject": "rep quote", "account": None}],
    }]
    assert seen_by_admin == [{
        "name": "rep deal",
        "account": {"name": "other_rep account"},
        "contact": {"lastName": "other_rep contact"},
        "contacts": [
            {"isPrimary": True, "contact": {"lastName": "other_rep contact"}},
            {"isPrimary": False, "contact": {"lastName": "rep contact"}},
        ],
        "quotes": [{"subject": "rep quote", "account": {"name": "other_rep account"}}],
    }]


async def test_a_leads_conversion_links_hide_records_the_viewer_may_not_see(
    users, factory, db, client_for
):
    # given: rep's lead was converted into other_rep's account, contact and deal
    account = await factory.account(users["other_rep"], name="other_rep account")
    contact = await factory.contact(users["other_rep"], last_name="other_rep contact")
    deal = await factory.opportunity(users["other_rep"], name="other_rep deal")
    await factory.lead(
        users["rep"], last_name="rep lead", is_converted=True,
        converted_at=dt.datetime.now(dt.UTC), converted_account_id=account.id,
        converted_contact_id=contact.id, converted_opportunity_id=deal.id,
    )
    await db.commit()
    rep, admin = await client_for(users["rep"]), await client_for(users["admin"])

    # when
    seen_by_rep = (await rep.data(LEAD_CONVERSION))["leads"]["nodes"]
    seen_by_admin = (await admin.data(LEAD_CONVERSION))["leads"]["nodes"]

    # then
    assert seen_by_rep == [{
        "lastName": "rep lead", "convertedAccount": None, "convertedContact": None,
        "convertedOpportunity": None,
    }]
    assert seen_by_admin == [{
        "lastName": "rep lead", "convertedAccount": {"name": "other_rep account"},
        "convertedContact": {"lastName": "other_rep contact"},
        "convertedOpportunity": {"name": "other_rep deal"},
    }]


# --- campaign aggregates ------------------------------------------------------------------


@pytest.fixture
async def campaign_deals(users, factory, db) -> None:
    """One campaign (owned by other_rep) with open and won deals of several owners."""
    campaign = await factory.campaign(users["other_rep"], name="Expo")
    for owner, stage, amount in [
        ("rep", "PROSPECTING", "1000.00"),
        ("rep", "CLOSED_WON", "500.00"),
        ("rep2", "NEGOTIATION_REVIEW", "200.00"),
        ("junior", "CLOSED_LOST", "50.00"),
        ("other_rep", "QUALIFICATION", "7000.00"),
        ("other_rep", "CLOSED_WON", "3000.00"),
    ]:
        await factory.opportunity(
            users[owner], name=f"{owner} {stage}", stage=stage, amount=amount,
            campaign_id=campaign.id,
        )
    await db.commit()


@pytest.mark.parametrize(
    ("viewer", "count", "pipeline", "won"),
    [
        ("rep", 2, "1000.00", "500.00"),
        ("rep2", 1, "200.00", "0.00"),
        ("manager", 4, "1200.00", "500.00"),
        ("other_rep", 2, "7000.00", "3000.00"),
        ("team_lead", 1, "0.00", "0.00"),
        ("admin", 6, "8200.00", "3500.00"),
    ],
)
async def test_campaign_figures_count_only_the_deals_the_viewer_may_see(
    viewer, count, pipeline, won, users, campaign_deals, client_for
):
    # given
    client = await client_for(users[viewer])

    # when
    data = await client.data(CAMPAIGN_FIGURES)

    # then: the campaign itself is visible to everyone, its figures are not
    [campaign] = data["campaigns"]["nodes"]
    assert campaign["opportunityCount"] == count
    assert Decimal(campaign["pipelineAmount"]) == Decimal(pipeline)
    assert Decimal(campaign["wonAmount"]) == Decimal(won)
    assert campaign["opportunities"]["totalCount"] == count
    names = [n["name"] for n in campaign["opportunities"]["nodes"]]
    assert len(names) == count
    assert set(owners_of(names)) <= VISIBLE_OWNERS[viewer]


# --- budgets -----------------------------------------------------------------------------


@pytest.mark.parametrize("viewer", sorted(VISIBLE_OWNERS))
async def test_budgets_list_the_viewers_and_their_teams_targets(viewer, users, world, client_for):
    # given
    client = await client_for(users[viewer])

    # when
    data = await client.data(BUDGETS)

    # then
    assert sorted(b["user"]["username"] for b in data["budgets"]) == sorted(
        VISIBLE_OWNERS[viewer]
    )


async def test_budgets_of_someone_outside_the_team_are_empty_not_an_error(
    users, world, client_for
):
    # given
    client = await client_for(users["manager"])

    # when
    foreign = await client.data(BUDGETS, {"userId": to_global_id("User", users["other_rep"].id)})
    own_team = await client.data(BUDGETS, {"userId": to_global_id("User", users["junior"].id)})

    # then
    assert foreign == {"budgets": []}
    assert [b["user"]["username"] for b in own_team["budgets"]] == ["junior"]


# --- shared reference data ------------------------------------------------------------------


@pytest.mark.parametrize("viewer", sorted(VISIBLE_OWNERS))
async def test_campaigns_products_users_and_stages_are_visible_to_every_role(
    viewer, users, factory, db, client_for
):
    # given: reference records owned by other_rep (campaigns) or by nobody (products)
    await factory.campaign(users["other_rep"], name="other_rep campaign")
    await factory.campaign(users["admin"], name="admin campaign")
    await factory.product(name="Widget")
    await factory.product(name="Gadget")
    await db.commit()
    client = await client_for(users[viewer])

    # when
    data = await client.data(SHARED_LISTS)

    # then
    assert data["campaigns"]["totalCount"] == 2
    assert data["products"]["totalCount"] == 2
    assert data["users"]["totalCount"] == len(OWNERS)
    assert sorted(u["username"] for u in data["users"]["nodes"]) == sorted(OWNERS)
    assert len(data["salesStages"]) == 10


async def test_a_rep_opens_a_foreign_campaign_product_and_user_by_id(
    users, factory, db, client_for
):
    # given
    campaign = await factory.campaign(users["other_rep"])
    product = await factory.product()
    await db.commit()
    client = await client_for(users["rep"])
    ids = [gid(campaign), gid(product), gid(users["other_manager"])]

    # when
    data = await client.data(NODES, {"ids": ids})

    # then
    assert [n["id"] for n in data["nodes"]] == ids


# --- PUBLIC sharing ----------------------------------------------------------------------


async def test_under_public_sharing_a_rep_reads_everyones_records(
    users, world, factory, db, public_app
):
    # given
    token = await factory.token(users["rep"])
    await db.commit()
    client = GraphQLClient(public_app, token)

    # when
    lists = await client.data(ROOT_LISTS)
    nodes = await client.data(NODES, {"ids": [gid(world["other_rep"][t]) for t in TYPES[:-1]]})

    # then
    for field, key in [
        ("opportunities", "name"), ("accounts", "name"), ("contacts", "lastName"),
        ("leads", "lastName"),
    ]:
        assert owners_of([n[key] for n in lists[field]["nodes"]]) == sorted(OWNERS), field
        assert lists[field]["totalCount"] == len(OWNERS), field
    assert lists["quotes"]["totalCount"] == len(OWNERS)
    assert [n and n["__typename"] for n in nodes["nodes"]] == list(TYPES[:-1])


async def test_under_public_sharing_nested_relations_and_figures_include_everyone(
    users, shared_account, campaign_deals, factory, db, public_app
):
    # given
    token = await factory.token(users["other_rep"])
    await db.commit()
    client = GraphQLClient(public_app, token)

    # when
    account = await client.data(ACCOUNT_RELATIONS, {"id": gid(shared_account["account"])})
    figures = await client.data(CAMPAIGN_FIGURES)

    # then
    assert account["node"]["opportunities"]["totalCount"] == 3
    assert account["node"]["contacts"]["totalCount"] == 3
    assert account["node"]["quotes"]["totalCount"] == 3
    [campaign] = figures["campaigns"]["nodes"]
    assert campaign["opportunityCount"] == 6
    assert Decimal(campaign["pipelineAmount"]) == Decimal("8200.00")
    assert Decimal(campaign["wonAmount"]) == Decimal("3500.00")


async def test_the_default_sharing_is_private(users, world, settings, client_for):
    # given
    client = await client_for(users["rep"])

    # when
    data = await client.data(NODE, {"id": gid(world["other_rep"]["Opportunity"])})

    # then
    assert Settings.model_fields["sharing"].default == "PRIVATE"
    assert settings.sharing == "PRIVATE"
    assert data == {"node": None}
