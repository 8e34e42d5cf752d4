"""Relations between records in both directions, `node`/`nodes` for every type, and what
soft deletion and visibility hide from them."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

import models
from resolvers.ids import to_global_id

OPPORTUNITY_RELATIONS = """
query Deal($id: ID!) {
  node(id: $id) {
    ... on Opportunity {
      name
      account { id name }
      campaign { id name }
      assignedTo { id username }
      createdBy { id username }
      contact { id lastName }
      contacts { role isPrimary contact { id lastName } }
      quotes { id subject }
      stageHistory {
        fromStage { key name }
        toStage { key name }
        amount
        probability
        expectedCloseDate
        changedBy { username }
        changedAt
        note
      }
    }
  }
}
"""

ACCOUNT_RELATIONS = """
query Account(
  $id: ID!, $first: Int, $after: String, $last: Int, $before: String,
  $filter: OpportunityFilter, $orderBy: [OpportunityOrder!]
) {
  node(id: $id) {
    ... on Account {
      name
      opportunities(
        first: $first, after: $after, last: $last, before: $before,
        filter: $filter, orderBy: $orderBy
      ) {
        totalCount
        edges { cursor node { name } }
        nodes { name account { name } }
        pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
      }
    }
  }
}
"""

ACCOUNT_CONTACTS_AND_QUOTES = """
query AccountChildren(
  $id: ID!, $first: Int, $contactsAfter: String, $quotesAfter: String, $last: Int,
  $orderBy: [RecordOrder!]
) {
  node(id: $id) {
    ... on Account {
      contacts(first: $first, after: $contactsAfter, last: $last, orderBy: $orderBy) {
        totalCount
        nodes { lastName account { name } }
        pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
      }
      quotes(first: $first, after: $quotesAfter, last: $last, orderBy: $orderBy) {
        totalCount
        nodes { subject account { name } }
        pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
      }
    }
  }
}
"""

ACCOUNT_SIBLINGS_OF_A_BAD_CURSOR = """
query AccountSiblings($id: ID!, $after: String) {
  node(id: $id) {
    ... on Account {
      c1: contacts(first: 1) { totalCount nodes { lastName } }
      c2: contacts(first: 2) { totalCount nodes { lastName } }
      c3: contacts(first: 3) { totalCount nodes { lastName } }
      c4: contacts(last: 1) { totalCount nodes { lastName } }
      c5: contacts(last: 2) { totalCount nodes { lastName } }
      c6: contacts(last: 3) { totalCount nodes { lastName } }
      quotes(after: $after) { totalCount }
      o1: opportunities(first: 1) { totalCount nodes { name } }
      o2: opportunities(first: 2) { totalCount nodes { name } }
      o3: opportunities(first: 3) { totalCount nodes { name } }
    }
  }
}
"""

ACCOUNTS_WITH_DEALS = """
query AccountsWithDeals($first: Int) {
  accounts(orderBy: [{field: NAME}]) {
    nodes {
      name
      opportunities(first: $first, orderBy: [{field: NAME}]) {
        totalCount
        nodes { name }
        pageInfo { hasNextPage }
      }
      contacts { totalCount nodes { lastName } }
    }
  }
}
"""

CAMPAIGN_RELATIONS = """
query Campaign(
  $id: ID!, $first: Int, $after: String, $filter: OpportunityFilter,
  $orderBy: [OpportunityOrder!]
) {
  node(id: $id) {
    ... on Campaign {
      name
      assignedTo { username }
      opportunities(first: $first, after: $after, filter: $filter, orderBy: $orderBy) {
        totalCount
        nodes { name campaign { name } }
        pageInfo { hasNextPage hasPreviousPage endCursor }
      }
    }
  }
}
"""

CONTACT_RELATIONS = """
query Contact($id: ID!) {
  node(id: $id) { ... on Contact { lastName account { name } assignedTo { username } } }
}
"""

LEAD_RELATIONS = """
query Lead($id: ID!) {
  node(id: $id) {
    ... on Lead {
      lastName
      isConverted
      convertedAt
      campaign { name }
      assignedTo { username }
      convertedAccount { name }
      convertedContact { lastName }
      convertedOpportunity { name }
    }
  }
}
"""

QUOTE_RELATIONS = """
query Quote($id: ID!) {
  node(id: $id) {
    ... on Quote {
      subject
      opportunity { name }
      account { name }
      contact { lastName }
      lines {
        description quantity listPrice discountPercent taxPercent netTotal
        product { name code }
      }
    }
  }
}
"""

USER_RELATIONS = """
query User($id: ID!) {
  node(id: $id) { ... on User { username role manager { username manager { username } } } }
}
"""

BUDGET_RELATIONS = """
query Budget($id: ID!) {
  node(id: $id) { ... on Budget { year period number amount user { username } } }
}
"""

NODE = """
query Node($id: ID!) {
  node(id: $id) {
    __typename
    id
    ... on Opportunity { number }
    ... on Account { number }
    ... on Contact { number }
    ... on Lead { number }
    ... on Campaign { number }
    ... on Product { number }
    ... on Quote { number }
    ... on User { username }
    ... on Budget { year }
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

LISTS_AFTER_DELETION = """
{
  opportunities { nodes { name } }
  accounts { nodes { name } }
  contacts { nodes { lastName } }
  leads { nodes { lastName } }
  campaigns { nodes { name } }
  products { nodes { name } }
  quotes { nodes { subject } }
}
"""

T0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)


def at(hours: int) -> dt.datetime:
    return T0 + dt.timedelta(hours=hours)


def gid(type_name: str, pk: int) -> str:
    return to_global_id(type_name, pk)


def names(connection: dict[str, Any]) -> list[str]:
    return [node["name"] for node in connection["nodes"]]


# --- Opportunity -----------------------------------------------------------------------


async def test_opportunity_to_one_relations(team, factory, db, client_for):
    # given
    acme = await factory.account(team["rep"], "Acme")
    expo = await factory.campaign(team["other_rep"], "Expo")
    deal = await factory.opportunity(
        team["rep"], name="Big Deal", account_id=acme.id, campaign_id=expo.id
    )
    deal.created_by_id = team["manager"].id
    await db.commit()
    client = await client_for(team["manager"])

    # when
    data = await client.data(OPPORTUNITY_RELATIONS, {"id": gid("Opportunity", deal.id)})

    # then
    node = data["node"]
    assert node["account"] == {"id": gid("Account", acme.id), "name": "Acme"}
    assert node["campaign"] == {"id": gid("Campaign", expo.id), "name": "Expo"}
    assert node["assignedTo"] == {"id": gid("User", team["rep"].id), "username": "rep"}
    assert node["createdBy"] == {"id": gid("User", team["manager"].id), "username": "manager"}


async def test_opportunity_without_links(team, factory, db, client_for):
    # given
    deal = await factory.opportunity(team["rep"], name="Lonely")
    await db.commit()
    client = await client_for(team["rep"])

    # when
    data = await client.data(OPPORTUNITY_RELATIONS, {"id": gid("Opportunity", deal.id)})

    # then
    node = data["node"]
    assert (node["account"], node["campaign"], node["contact"]) == (None, None, None)
    assert (node["contacts"], node["quotes"]) == ([], [])
    assert len(node["stageHistory"]) == 1


async def test_opportunity_contacts_with_role_and_primary(team, factory, db, client_for):
    # given
    deal = await factory.opportunity(team["rep"])
    rossi = await factory.contact(team["rep"], "Rossi")
    verdi = await factory.contact(team["rep"], "Verdi")
    bianchi = await factory.contact(team["rep"], "Bianchi")
    for contact, role, primary, hours in [
        (rossi, "MANAGER", False, 1),
        (verdi, None, True, 2),
        (bianchi, "CONSULTANT", False, 0),
    ]:
        db.add(
            models.OpportunityContact(
                opportunity_id=deal.id, contact_id=contact.id, role=role, is_primary=primary,
                created_at=at(hours),
            )
        )
    await db.commit()
    client = await client_for(team["rep"])

    # when
    data = await client.data(OPPORTUNITY_RELATIONS, {"id": gid("Opportunity", deal.id)})

    # then
    node = data["node"]
    assert node["contact"] == {"id": gid("Contact", verdi.id), "lastName": "Verdi"}
    assert sorted(node["contacts"], key=lambda c: c["contact"]["lastName"]) == [
        {
            "role": "CONSULTANT", "isPrimary": False,
            "contact": {"id": gid("Contact", bianchi.id), "lastName": "Bianchi"},
        },
        {
            "role": "MANAGER", "isPrimary": False,
            "contact": {"id": gid("Contact", rossi.id), "lastName": "Rossi"},
        },
        {
            "role": None, "isPrimary": True,
            "contact": {"id": gid("Contact", verdi.id), "lastName": "Verdi"},
        },
    ]


async def test_opportunity_without_primary_contact(team, factory, db, client_for):
    # given
    deal = await factory.opportunity(team["rep"])
    rossi = await factory.contact(team["rep"], "Rossi")
    db.add(models.OpportunityContact(opportunity_id=deal.id, contact_id=rossi.id, role="MANAGER"))
    await db.commit()
    client = await client_for(team["rep"])

    # when
    data = await client.data(OPPORTUNITY_RELATIONS, {"id": gid("Opportunity", deal.id)})

    # then
    assert data["node"]["contact"] is None
    assert data["node"]["contacts"] == [
        {"role": "MANAGER", "isPrimary": False, "contact": {"id": gid("Contact", rossi.id),
                                                             "lastName": "Rossi"}},
    ]


async def test_opportunity_quotes_and_quote_opportunity(team, factory, db, client_for):
    # given
    deal = await factory.opportunity(team["rep"], name="Deal")
    other = await factory.opportunity(team["rep"], name="Other")
    widget = await factory.product()
    first = await factory.quote(deal, [(widget, "1", "10.00", "0", "0")], subject="First")
    second = await factory.quote(deal, [], subject="Second")
    await factory.quote(other, [], subject="Elsewhere")
    await db.commit()
    client = await client_for(team["rep"])

    # when
    deal_data = await client.data(OPPORTUNITY_RELATIONS, {"id": gid("Opportunity", deal.id)})
    quote_data = await client.data(QUOTE_RELATIONS, {"id": gid("Quote", second.id)})

    # then
    assert sorted(deal_data["node"]["quotes"], key=lambda q: q["subject"]) == [
        {"id": gid("Quote", first.id), "subject": "First"},
        {"id": gid("Quote", second.id), "subject": "Second"},
    ]
    assert quote_data["node"]["opportunity"] == {"name": "Deal"}


async def test_stage_history_newest_first(team, factory, db, client_for):
    # given: created in Prospecting, then two moves recorded by others
    deal = await factory.opportunity(
        team["rep"], amount="1000.00", close=dt.date(2027, 3, 31)
    )
    created = await db.scalar(
        select(models.StageChange).where(models.StageChange.opportunity_id == deal.id)
    )
    created.changed_at = at(0)
    db.add_all([
        models.StageChange(
            opportunity_id=deal.id, from_stage="QUALIFICATION", to_stage="NEEDS_ANALYSIS",
            amount=Decimal("1500.00"), probability=Decimal("25"),
            expected_close_date=dt.date(2027, 5, 31), changed_by_id=team["rep"].id,
            changed_at=at(48),
        ),
        models.StageChange(
            opportunity_id=deal.id, from_stage="PROSPECTING", to_stage="QUALIFICATION",
            amount=Decimal("1200.00"), probability=Decimal("20"),
            expected_close_date=dt.date(2027, 4, 30), changed_by_id=team["manager"].id,
            changed_at=at(24), note="Budget confirmed",
        ),
    ])
    await db.commit()
    client = await client_for(team["rep"])

    # when
    data = await client.data(OPPORTUNITY_RELATIONS, {"id": gid("Opportunity", deal.id)})

    # then
    assert data["node"]["stageHistory"] == [
        {
            "fromStage": {"key": "QUALIFICATION", "name": "Qualification"},
            "toStage": {"key": "NEEDS_ANALYSIS", "name": "Needs Analysis"},
            "amount": "1500.00", "probability": "25.00", "expectedCloseDate": "2027-05-31",
            "changedBy": {"username": "rep"}, "changedAt": "2026-01-07T09:00:00+00:00",
            "note": None,
        },
        {
            "fromStage": {"key": "PROSPECTING", "name": "Prospecting"},
            "toStage": {"key": "QUALIFICATION", "name": "Qualification"},
            "amount": "1200.00", "probability": "20.00", "expectedCloseDate": "2027-04-30",
            "changedBy": {"username": "manager"}, "changedAt": "2026-01-06T09:00:00+00:00",
            "note": "Budget confirmed",
        },
        {
            "fromStage": None,
            "toStage": {"key": "PROSPECTING", "name": "Prospecting"},
            "amount": "1000.00", "probability": "10.00", "expectedCloseDate": "2027-03-31",
            "changedBy": {"username": "rep"}, "changedAt": "2026-01-05T09:00:00+00:00",
            "note": None,
        },
    ]


async def test_opportunity_relations_hide_what_the_viewer_may_not_see(
    team, factory, db, client_for
):
    # given: the rep's deal points at records of another team
    foreign_account = await factory.account(team["other_rep"], "Foreign")
    foreign_contact = await factory.contact(team["other_rep"], "Foreign")
    own_contact = await factory.contact(team["rep"], "Own")
    expo = await factory.campaign(team["other_rep"], "Expo")
    deal = await factory.opportunity(
        team["rep"], account_id=foreign_account.id, campaign_id=expo.id
    )
    db.add_all([
        models.OpportunityContact(
            opportunity_id=deal.id, contact_id=foreign_contact.id, is_primary=True
        ),
        models.OpportunityContact(opportunity_id=deal.id, contact_id=own_contact.id),
    ])
    await db.commit()

    # when
    as_rep = await (await client_for(team["rep"])).data(
        OPPORTUNITY_RELATIONS, {"id": gid("Opportunity", deal.id)}
    )
    as_admin = await (await client_for(team["admin"])).data(
        OPPORTUNITY_RELATIONS, {"id": gid("Opportunity", deal.id)}
    )

    # then: campaigns are visible to everyone; the other team's account and contact are not
    assert as_rep["node"]["account"] is None
    assert as_rep["node"]["campaign"] == {"id": gid("Campaign", expo.id), "name": "Expo"}
    assert as_rep["node"]["contact"] is None
    assert [c["contact"]["lastName"] for c in as_rep["node"]["contacts"]] == ["Own"]
    assert as_admin["node"]["account"]["name"] == "Foreign"
    assert as_admin["node"]["contact"]["lastName"] == "Foreign"
    assert len(as_admin["node"]["contacts"]) == 2


# --- Account ---------------------------------------------------------------------------


async def _account_with_deals(factory: Any, db: Any, team: dict[str, models.User]) -> Any:
    acme = await factory.account(team["rep"], "Acme")
    other = await factory.account(team["rep"], "Other")
    for hours, (name, amount, stage) in enumerate([
        ("a1", "300.00", "PROSPECTING"),
        ("a2", "100.00", "QUALIFICATION"),
        ("a3", "500.00", "CLOSED_WON"),
        ("a4", "200.00", "PROSPECTING"),
    ]):
        await factory.opportunity(
            team["rep"], name=name, amount=amount, stage=stage, account_id=acme.id,
            created_at=at(hours),
        )
    gone = await factory.opportunity(team["rep"], name="a0-deleted", account_id=acme.id)
    gone.deleted_at = T0
    await factory.opportunity(team["other_rep"], name="a0-foreign", account_id=acme.id)
    await factory.opportunity(team["rep"], name="b1", account_id=other.id)
    await db.commit()
    return acme


async def test_account_opportunities_connection(team, factory, db, client_for):
    # given
    acme = await _account_with_deals(factory, db, team)
    client = await client_for(team["rep"])

    # when
    everything = await client.data(ACCOUNT_RELATIONS, {"id": gid("Account", acme.id)})

    # then: neither the deleted deal nor the other team's deal
    opportunities = everything["node"]["opportunities"]
    assert names(opportunities) == ["a1", "a2", "a3", "a4"]
    assert opportunities["totalCount"] == 4
    assert {n["account"]["name"] for n in opportunities["nodes"]} == {"Acme"}


async def test_account_opportunities_filter_order_and_paging(team, factory, db, client_for):
    # given
    acme = await _account_with_deals(factory, db, team)
    client = await client_for(team["rep"])
    arguments = {
        "id": gid("Account", acme.id),
        "filter": {"isClosed": False},
        "orderBy": [{"field": "AMOUNT", "direction": "DESC"}],
    }

    # when
    first = await client.data(ACCOUNT_RELATIONS, {**arguments, "first": 2})
    cursor = first["node"]["opportunities"]["pageInfo"]["endCursor"]
    second = await client.data(ACCOUNT_RELATIONS, {**arguments, "first": 2, "after": cursor})
    last = await client.data(ACCOUNT_RELATIONS, {**arguments, "last": 1})
    cursor = last["node"]["opportunities"]["pageInfo"]["startCursor"]
    before = await client.data(ACCOUNT_RELATIONS, {**arguments, "last": 5, "before": cursor})

    # then
    page = first["node"]["opportunities"]
    assert names(page) == ["a1", "a4"]
    assert page["totalCount"] == 3
    assert page["pageInfo"]["hasNextPage"] is True
    assert page["pageInfo"]["hasPreviousPage"] is False
    assert [e["cursor"] for e in page["edges"]] == [
        page["pageInfo"]["startCursor"], page["pageInfo"]["endCursor"],
    ]
    page = second["node"]["opportunities"]
    assert names(page) == ["a2"]
    assert page["pageInfo"]["hasNextPage"] is False
    assert page["pageInfo"]["hasPreviousPage"] is True
    assert names(last["node"]["opportunities"]) == ["a2"]
    assert last["node"]["opportunities"]["pageInfo"]["hasPreviousPage"] is True
    assert names(before["node"]["opportunities"]) == ["a1", "a4"]
    assert before["node"]["opportunities"]["pageInfo"]["hasPreviousPage"] is False


async def test_account_opportunities_refuse_bad_arguments(team, factory, db, client_for):
    # given
    acme = await _account_with_deals(factory, db, team)
    client = await client_for(team["rep"])

    # when
    too_many = await client.query(ACCOUNT_RELATIONS, {"id": gid("Account", acme.id), "first": 101})
    garbage = await client.query(
        ACCOUNT_RELATIONS, {"id": gid("Account", acme.id), "after": "garbage!"}
    )

    # then
    for body in (too_many, garbage):
        assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]
        assert body["errors"][0]["path"] == ["node", "opportunities"]


async def test_each_account_gets_its_own_page_of_deals(team, factory, db, client_for):
    # given: three accounts on one list page, each with its own deals
    for account_name, deal_names in [
        ("Acme", ["x1", "x2", "x3"]), ("Bolt", ["y1"]), ("Core", []),
    ]:
        account = await factory.account(team["rep"], account_name)
        for deal_name in deal_names:
            await factory.opportunity(team["rep"], name=deal_name, account_id=account.id)
        await factory.contact(team["rep"], f"{account_name} contact", account_id=account.id)
    await db.commit()
    client = await client_for(team["rep"])

    # when
    data = await client.data(ACCOUNTS_WITH_DEALS, {"first": 2})

    # then
    assert data["accounts"]["nodes"] == [
        {
            "name": "Acme",
            "opportunities": {
                "totalCount": 3, "nodes": [{"name": "x1"}, {"name": "x2"}],
                "pageInfo": {"hasNextPage": True},
            },
            "contacts": {"totalCount": 1, "nodes": [{"lastName": "Acme contact"}]},
        },
        {
            "name": "Bolt",
            "opportunities": {
                "totalCount": 1, "nodes": [{"name": "y1"}], "pageInfo": {"hasNextPage": False},
            },
            "contacts": {"totalCount": 1, "nodes": [{"lastName": "Bolt contact"}]},
        },
        {
            "name": "Core",
            "opportunities": {"totalCount": 0, "nodes": [], "pageInfo": {"hasNextPage": False}},
            "contacts": {"totalCount": 1, "nodes": [{"lastName": "Core contact"}]},
        },
    ]


async def test_account_contacts_and_quotes_connections(team, factory, db, client_for):
    # given
    acme = await factory.account(team["rep"], "Acme")
    other = await factory.account(team["rep"], "Other")
    for name, hours in [("Rossi", 2), ("Verdi", 0), ("Bianchi", 1)]:
        await factory.contact(team["rep"], name, account_id=acme.id, created_at=at(hours))
    gone = await factory.contact(team["rep"], "Deleted", account_id=acme.id)
    gone.deleted_at = T0
    await factory.contact(team["other_rep"], "Foreign", account_id=acme.id)
    await factory.contact(team["rep"], "Elsewhere", account_id=other.id)
    deal = await factory.opportunity(team["rep"], account_id=acme.id)
    foreign_deal = await factory.opportunity(team["other_rep"], account_id=acme.id)
    for subject, hours in [("Q-b", 1), ("Q-a", 2), ("Q-c", 0)]:
        await factory.quote(deal, [], subject=subject, created_at=at(hours))
    removed = await factory.quote(deal, [], subject="Q-deleted")
    removed.deleted_at = T0
    await factory.quote(foreign_deal, [], subject="Q-foreign")
    await db.commit()
    client = await client_for(team["rep"])
    arguments = {"id": gid("Account", acme.id)}

    # when
    by_created = await client.data(ACCOUNT_CONTACTS_AND_QUOTES, {**arguments, "first": 2})
    cursors = {
        field: by_created["node"][field]["pageInfo"]["endCursor"]
        for field in ("contacts", "quotes")
    }
    second = await client.data(
        ACCOUNT_CONTACTS_AND_QUOTES,
        {
            **arguments, "first": 2,
            "contactsAfter": cursors["contacts"], "quotesAfter": cursors["quotes"],
        },
    )
    by_name = await client.data(
        ACCOUNT_CONTACTS_AND_QUOTES,
        {**arguments, "last": 2, "orderBy": [{"field": "NAME", "direction": "DESC"}]},
    )

    # then
    contacts, quotes = by_created["node"]["contacts"], by_created["node"]["quotes"]
    assert [c["lastName"] for c in contacts["nodes"]] == ["Verdi", "Bianchi"]
    assert (contacts["totalCount"], contacts["pageInfo"]["hasNextPage"]) == (3, True)
    assert {c["account"]["name"] for c in contacts["nodes"]} == {"Acme"}
    assert [q["subject"] for q in quotes["nodes"]] == ["Q-c", "Q-b"]
    assert (quotes["totalCount"], quotes["pageInfo"]["hasNextPage"]) == (3, True)
    assert {q["account"]["name"] for q in quotes["nodes"]} == {"Acme"}
    contacts, quotes = second["node"]["contacts"], second["node"]["quotes"]
    assert [c["lastName"] for c in contacts["nodes"]] == ["Rossi"]
    assert (contacts["pageInfo"]["hasNextPage"], contacts["pageInfo"]["hasPreviousPage"]) == (
        False, True,
    )
    assert [q["subject"] for q in quotes["nodes"]] == ["Q-a"]
    assert (quotes["pageInfo"]["hasNextPage"], quotes["pageInfo"]["hasPreviousPage"]) == (
        False, True,
    )
    assert [c["lastName"] for c in by_name["node"]["contacts"]["nodes"]] == ["Rossi", "Bianchi"]
    assert by_name["node"]["contacts"]["pageInfo"]["hasPreviousPage"] is True
    assert [q["subject"] for q in by_name["node"]["quotes"]["nodes"]] == ["Q-b", "Q-a"]


async def test_a_refused_relation_does_not_break_the_request(team, factory, db, client_for):
    # given: a contacts cursor handed to the quotes connection, which refuses it while its
    # sibling contacts connections are still reading
    acme = await factory.account(team["rep"], "Acme")
    for name in ["Rossi", "Verdi", "Bianchi"]:
        await factory.contact(team["rep"], name, account_id=acme.id)
    await db.commit()
    client = await client_for(team["rep"])
    arguments = {"id": gid("Account", acme.id)}
    first = await client.data(ACCOUNT_CONTACTS_AND_QUOTES, {**arguments, "first": 1})
    cursor = first["node"]["contacts"]["pageInfo"]["endCursor"]

    # when
    response = await client.post(ACCOUNT_SIBLINGS_OF_A_BAD_CURSOR, {**arguments, "after": cursor})
    after = await client.data(ACCOUNT_CONTACTS_AND_QUOTES, arguments)

    # then
    assert response.status_code == 200
    body = response.json()
    assert body["data"] == {"node": None}
    assert [(e["path"], e["extensions"]["code"]) for e in body["errors"]] == [
        (["node", "quotes"], "BAD_USER_INPUT"),
    ]
    assert after["node"]["contacts"]["totalCount"] == 3


# --- Campaign, Contact, Lead, Quote, User, Budget ------------------------------------


async def test_campaign_opportunities_connection(team, factory, db, client_for):
    # given
    expo = await factory.campaign(team["admin"], "Expo")
    other = await factory.campaign(team["admin"], "Other")
    for name, amount in [("c1", "10.00"), ("c2", "30.00"), ("c3", "20.00")]:
        await factory.opportunity(team["rep"], name=name, amount=amount, campaign_id=expo.id)
    gone = await factory.opportunity(team["rep"], name="c-deleted", campaign_id=expo.id)
    gone.deleted_at = T0
    await factory.opportunity(team["other_rep"], name="c-foreign", campaign_id=expo.id)
    await factory.opportunity(team["rep"], name="elsewhere", campaign_id=other.id)
    await db.commit()
    client = await client_for(team["rep"])
    arguments = {
        "id": gid("Campaign", expo.id), "orderBy": [{"field": "AMOUNT", "direction": "ASC"}],
    }

    # when
    first = await client.data(CAMPAIGN_RELATIONS, {**arguments, "first": 2})
    cursor = first["node"]["opportunities"]["pageInfo"]["endCursor"]
    second = await client.data(CAMPAIGN_RELATIONS, {**arguments, "first": 2, "after": cursor})
    filtered = await client.data(
        CAMPAIGN_RELATIONS, {**arguments, "filter": {"amountMin": 15}}
    )

    # then
    assert first["node"]["assignedTo"] == {"username": "admin"}
    page = first["node"]["opportunities"]
    assert names(page) == ["c1", "c3"]
    assert page["totalCount"] == 3
    assert {n["campaign"]["name"] for n in page["nodes"]} == {"Expo"}
    assert names(second["node"]["opportunities"]) == ["c2"]
    assert second["node"]["opportunities"]["pageInfo"]["hasNextPage"] is False
    assert names(filtered["node"]["opportunities"]) == ["c3", "c2"]
    assert filtered["node"]["opportunities"]["totalCount"] == 2


async def test_contact_account(team, factory, db, client_for):
    # given
    acme = await factory.account(team["rep"], "Acme")
    rossi = await factory.contact(team["rep"], "Rossi", account_id=acme.id)
    loner = await factory.contact(team["rep"], "Loner")
    await db.commit()
    client = await client_for(team["rep"])

    # when
    linked = await client.data(CONTACT_RELATIONS, {"id": gid("Contact", rossi.id)})
    unlinked = await client.data(CONTACT_RELATIONS, {"id": gid("Contact", loner.id)})

    # then
    assert linked["node"] == {
        "lastName": "Rossi", "account": {"name": "Acme"}, "assignedTo": {"username": "rep"},
    }
    assert unlinked["node"]["account"] is None


async def test_lead_relations(team, factory, db, client_for):
    # given
    expo = await factory.campaign(team["admin"], "Expo")
    acme = await factory.account(team["rep"], "Acme")
    rossi = await factory.contact(team["rep"], "Rossi", account_id=acme.id)
    deal = await factory.opportunity(team["rep"], name="Acme deal", account_id=acme.id)
    converted = await factory.lead(
        team["rep"], "Rossi", campaign_id=expo.id, is_converted=True, converted_at=T0,
        converted_account_id=acme.id, converted_contact_id=rossi.id,
        converted_opportunity_id=deal.id,
    )
    fresh = await factory.lead(team["rep"], "Fresh")
    await db.commit()
    client = await client_for(team["rep"])

    # when
    converted_data = await client.data(LEAD_RELATIONS, {"id": gid("Lead", converted.id)})
    fresh_data = await client.data(LEAD_RELATIONS, {"id": gid("Lead", fresh.id)})

    # then
    assert converted_data["node"] == {
        "lastName": "Rossi",
        "isConverted": True,
        "convertedAt": "2026-01-05T09:00:00+00:00",
        "campaign": {"name": "Expo"},
        "assignedTo": {"username": "rep"},
        "convertedAccount": {"name": "Acme"},
        "convertedContact": {"lastName": "Rossi"},
        "convertedOpportunity": {"name": "Acme deal"},
    }
    assert fresh_data["node"] == {
        "lastName": "Fresh", "isConverted": False, "convertedAt": None, "campaign": None,
        "assignedTo": {"username": "rep"}, "convertedAccount": None, "convertedContact": None,
        "convertedOpportunity": None,
    }


async def test_quote_relations_and_lines(team, factory, db, client_for):
    # given
    acme = await factory.account(team["rep"], "Acme")
    rossi = await factory.contact(team["rep"], "Rossi", account_id=acme.id)
    deal = await factory.opportunity(team["rep"], name="Deal", account_id=acme.id)
    widget = await factory.product("Widget", code="W-1")
    gadget = await factory.product("Gadget", code="G-1")
    quote = await factory.quote(
        deal,
        [(gadget, "2", "50.00", "10", "22"), (widget, "1.5", "10.00", "0", "4")],
        subject="Offer", contact_id=rossi.id,
    )
    first_line = await db.scalar(
        select(models.QuoteLine).where(
            models.QuoteLine.quote_id == quote.id, models.QuoteLine.position == 0
        )
    )
    first_line.description = "Gadgets"
    await db.commit()
    client = await client_for(team["rep"])

    # when
    data = await client.data(QUOTE_RELATIONS, {"id": gid("Quote", quote.id)})

    # then
    node = data["node"]
    assert (node["subject"], node["opportunity"], node["account"], node["contact"]) == (
        "Offer", {"name": "Deal"}, {"name": "Acme"}, {"lastName": "Rossi"},
    )
    assert [
        (line["description"], Decimal(line["quantity"]), line["listPrice"],
         line["discountPercent"], line["taxPercent"], line["netTotal"], line["product"])
        for line in node["lines"]
    ] == [
        ("Gadgets", Decimal("2"), "50.00", "10.00", "22.00", "90.00",
         {"name": "Gadget", "code": "G-1"}),
        (None, Decimal("1.5"), "10.00", "0.00", "4.00", "15.00",
         {"name": "Widget", "code": "W-1"}),
    ]


async def test_quote_lines_follow_their_position(team, factory, db, client_for):
    # given: lines inserted in an order that differs from their positions
    deal = await factory.opportunity(team["rep"])
    widget = await factory.product()
    quote = await factory.quote(deal, [], subject="Offer")
    for position, price in [(2, "3.00"), (0, "1.00"), (1, "2.00")]:
        db.add(models.QuoteLine(
            quote_id=quote.id, position=position, product_id=widget.id,
            quantity=Decimal("1"), list_price=Decimal(price),
        ))
    await db.commit()
    client = await client_for(team["rep"])

    # when
    data = await client.data(QUOTE_RELATIONS, {"id": gid("Quote", quote.id)})

    # then
    assert [line["listPrice"] for line in data["node"]["lines"]] == ["1.00", "2.00", "3.00"]


async def test_user_manager(team, client_for):
    # given
    client = await client_for(team["rep"])

    # when
    rep = await client.data(USER_RELATIONS, {"id": gid("User", team["rep"].id)})
    admin = await client.data(USER_RELATIONS, {"id": gid("User", team["admin"].id)})

    # then
    assert rep["node"] == {
        "username": "rep", "role": "SALES_REP",
        "manager": {"username": "manager", "manager": None},
    }
    assert admin["node"] == {"username": "admin", "role": "ADMIN", "manager": None}


async def test_budget_user(team, db, client_for):
    # given
    budget = models.Budget(
        user_id=team["rep"].id, year=2027, period="QUARTER", number=2, amount=Decimal("50000.00")
    )
    db.add(budget)
    await db.commit()
    client = await client_for(team["manager"])

    # when
    data = await client.data(BUDGET_RELATIONS, {"id": gid("Budget", budget.id)})

    # then
    assert data["node"] == {
        "year": 2027, "period": "QUARTER", "number": 2, "amount": "50000.00",
        "user": {"username": "rep"},
    }


# --- node and nodes --------------------------------------------------------------------


async def _one_of_each(factory: Any, db: Any, team: dict[str, models.User]) -> dict[str, Any]:
    """One record of every Node type, owned by the rep."""
    rep = team["rep"]
    account = await factory.account(rep, "Acme")
    deal = await factory.opportunity(rep, account_id=account.id)
    budget = models.Budget(
        user_id=rep.id, year=2027, period="YEAR", number=1, amount=Decimal("1.00")
    )
    db.add(budget)
    records = {
        "Opportunity": deal,
        "Account": account,
        "Contact": await factory.contact(rep),
        "Lead": await factory.lead(rep),
        "Campaign": await factory.campaign(rep),
        "Product": await factory.product(),
        "Quote": await factory.quote(deal, []),
        "User": rep,
        "Budget": budget,
    }
    await db.commit()
    return records


NODE_TYPES = ["Opportunity", "Account", "Contact", "Lead", "Campaign", "Product", "Quote",
              "User", "Budget"]
NODE_DETAIL = {
    "Opportunity": ("number", "POT1"), "Account": ("number", "ACC1"),
    "Contact": ("number", "CON1"), "Lead": ("number", "LEA1"), "Campaign": ("number", "CAM1"),
    "Product": ("number", "PRO1"), "Quote": ("number", "QUO1"), "User": ("username", "rep"),
    "Budget": ("year", 2027),
}


@pytest.mark.parametrize("type_name", NODE_TYPES)
async def test_node_resolves_every_type(team, factory, db, client_for, type_name):
    # given
    records = await _one_of_each(factory, db, team)
    client = await client_for(team["rep"])
    node_id = gid(type_name, records[type_name].id)

    # when
    data = await client.data(NODE, {"id": node_id})

    # then
    key, value = NODE_DETAIL[type_name]
    assert data["node"] == {"__typename": type_name, "id": node_id, key: value}


async def test_nodes_resolves_every_type_in_order(team, factory, db, client_for):
    # given
    records = await _one_of_each(factory, db, team)
    client = await client_for(team["rep"])
    ids = [gid(t, records[t].id) for t in reversed(NODE_TYPES)]

    # when
    data = await client.data(NODES, {"ids": [*ids, "garbage", ids[0]]})

    # then
    assert data["nodes"] == [
        *({"__typename": t, "id": i} for t, i in zip(reversed(NODE_TYPES), ids, strict=True)),
        None,
        {"__typename": NODE_TYPES[-1], "id": ids[0]},
    ]


GARBAGE_IDS = [
    "garbage",
    "",
    "!!!",
    to_global_id("Opportunity", 999999),
    to_global_id("NoSuchType", 1),
    to_global_id("SalesStage", 1),
    to_global_id("Opportunity", 1) + "x",
    "T3Bwb3J0dW5pdHk6YWJj",  # base64 of "Opportunity:abc"
    "T3Bwb3J0dW5pdHk6LTE",  # base64 of "Opportunity:-1"
]


@pytest.mark.parametrize("garbage", GARBAGE_IDS)
async def test_node_of_garbage_id_is_null(team, factory, db, client_for, garbage):
    # given
    await _one_of_each(factory, db, team)
    client = await client_for(team["admin"])

    # when
    single = await client.data(NODE, {"id": garbage})
    many = await client.data(NODES, {"ids": [garbage]})

    # then
    assert single == {"node": None}
    assert many == {"nodes": [None]}


async def test_nodes_refuses_too_many_ids(team, client_for):
    # given
    client = await client_for(team["rep"])

    # when
    body = await client.query(NODES, {"ids": [gid("User", 1)] * 101})

    # then
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]


@pytest.mark.parametrize(
    ("type_name", "visible"),
    [
        ("Opportunity", False), ("Account", False), ("Contact", False), ("Lead", False),
        ("Quote", False), ("Budget", False), ("Campaign", True), ("Product", True),
        ("User", True),
    ],
)
async def test_node_of_another_team_follows_visibility(
    team, factory, db, client_for, type_name, visible
):
    # given: the records belong to the rep; the other team's rep asks
    records = await _one_of_each(factory, db, team)
    node_id = gid(type_name, records[type_name].id)

    # when
    as_other = await (await client_for(team["other_rep"])).data(NODE, {"id": node_id})
    as_manager = await (await client_for(team["manager"])).data(NODES, {"ids": [node_id]})

    # then
    assert (as_other["node"] is not None) is visible
    assert as_manager["nodes"][0]["id"] == node_id


SOFT_DELETABLE = ["Opportunity", "Account", "Contact", "Lead", "Campaign", "Product", "Quote"]


@pytest.mark.parametrize("type_name", SOFT_DELETABLE)
async def test_soft_deleted_node_is_null(team, factory, db, client_for, type_name):
    # given
    records = await _one_of_each(factory, db, team)
    records[type_name].deleted_at = T0
    await db.commit()
    client = await client_for(team["admin"])
    node_id = gid(type_name, records[type_name].id)

    # when
    single = await client.data(NODE, {"id": node_id})
    many = await client.data(NODES, {"ids": [node_id, gid("User", team["rep"].id)]})

    # then
    assert single == {"node": None}
    assert many["nodes"] == [None, {"__typename": "User", "id": gid("User", team["rep"].id)}]


async def test_soft_deleted_records_vanish_from_lists_and_relations(
    team, factory, db, client_for
):
    # given: a web of records where one of each kind is in the recycle bin
    rep = team["rep"]
    acme = await factory.account(rep, "Acme")
    gone_account = await factory.account(rep, "Gone account")
    expo = await factory.campaign(rep, "Expo")
    gone_campaign = await factory.campaign(rep, "Gone campaign")
    rossi = await factory.contact(rep, "Rossi", account_id=acme.id)
    gone_contact = await factory.contact(rep, "Gone contact", account_id=acme.id)
    widget = await factory.product("Widget")
    gone_product = await factory.product("Gone product")
    deal = await factory.opportunity(
        rep, name="Deal", account_id=gone_account.id, campaign_id=gone_campaign.id
    )
    gone_deal = await factory.opportunity(
        rep, name="Gone deal", account_id=acme.id, campaign_id=expo.id
    )
    db.add(models.OpportunityContact(
        opportunity_id=deal.id, contact_id=gone_contact.id, is_primary=True
    ))
    db.add(models.OpportunityContact(opportunity_id=deal.id, contact_id=rossi.id, role="MANAGER"))
    quote = await factory.quote(
        deal, [(widget, "1", "10.00", "0", "0"), (gone_product, "1", "5.00", "0", "0")],
        subject="Offer", contact_id=gone_contact.id,
    )
    gone_quote = await factory.quote(deal, [], subject="Gone quote")
    quote.account_id = gone_quote.account_id = acme.id
    lead = await factory.lead(
        rep, "Lead", campaign_id=gone_campaign.id, is_converted=True,
        converted_account_id=gone_account.id, converted_contact_id=gone_contact.id,
        converted_opportunity_id=gone_deal.id,
    )
    gone_lead = await factory.lead(rep, "Gone lead")
    for record in (gone_account, gone_campaign, gone_contact, gone_product, gone_deal,
                   gone_quote, gone_lead):
        record.deleted_at = T0
    await db.commit()
    client = await client_for(rep)

    # when
    lists = await client.data(LISTS_AFTER_DELETION)
    deal_data = await client.data(OPPORTUNITY_RELATIONS, {"id": gid("Opportunity", deal.id)})
    account_data = await client.data(ACCOUNT_RELATIONS, {"id": gid("Account", acme.id)})
    children = await client.data(ACCOUNT_CONTACTS_AND_QUOTES, {"id": gid("Account", acme.id)})
    campaign_data = await client.data(CAMPAIGN_RELATIONS, {"id": gid("Campaign", expo.id)})
    quote_data = await client.data(QUOTE_RELATIONS, {"id": gid("Quote", quote.id)})
    lead_data = await client.data(LEAD_RELATIONS, {"id": gid("Lead", lead.id)})

    # then
    assert lists == {
        "opportunities": {"nodes": [{"name": "Deal"}]},
        "accounts": {"nodes": [{"name": "Acme"}]},
        "contacts": {"nodes": [{"lastName": "Rossi"}]},
        "leads": {"nodes": [{"lastName": "Lead"}]},
        "campaigns": {"nodes": [{"name": "Expo"}]},
        "products": {"nodes": [{"name": "Widget"}]},
        "quotes": {"nodes": [{"subject": "Offer"}]},
    }
    node = deal_data["node"]
    assert (node["account"], node["campaign"], node["contact"]) == (None, None, None)
    assert [c["contact"]["lastName"] for c in node["contacts"]] == ["Rossi"]
    assert [q["subject"] for q in node["quotes"]] == ["Offer"]
    assert account_data["node"]["opportunities"]["totalCount"] == 0
    assert [c["lastName"] for c in children["node"]["contacts"]["nodes"]] == ["Rossi"]
    assert children["node"]["contacts"]["totalCount"] == 1
    assert [q["subject"] for q in children["node"]["quotes"]["nodes"]] == ["Offer"]
    assert children["node"]["quotes"]["totalCount"] == 1
    assert campaign_data["node"]["opportunities"]["totalCount"] == 0
    assert names(campaign_data["node"]["opportunities"]) == []
    assert quote_data["node"]["contact"] is None
    assert [line["product"] for line in quote_data["node"]["lines"]] == [
        {"name": "Widget", "code": None}, None,
    ]
    assert {k: lead_data["node"][k] for k in (
        "campaign", "convertedAccount", "convertedContact", "convertedOpportunity"
    )} == {
        "campaign": None, "convertedAccount": None, "convertedContact": None,
        "convertedOpportunity": None,
    }
