"""The number of SQL statements per request does not grow with the page size.

Every relation of a page is loaded with one query per relation (DataLoaders and windowed
relation pages), so a page of 50 costs as many statements as a page of 5.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, update

import models
from resolvers.ids import to_global_id

# The SPA's pipeline query exactly as written (tests/queries/pipeline.graphql).
PIPELINE = (Path(__file__).parent / "queries" / "pipeline.graphql").read_text()

ACCOUNTS_WITH_DEALS = """
query AccountsWithDeals($first: Int!) {
  accounts(first: $first) {
    edges {
      node {
        name
        opportunities(first: 10) {
          totalCount
          edges {
            node {
              name
              salesStage { key }
              assignedTo { username }
              quotes { netTotal lines { netTotal } }
            }
          }
        }
      }
    }
  }
}
"""

CAMPAIGNS_WITH_FIGURES = """
query CampaignsWithFigures($first: Int!) {
  campaigns(first: $first) {
    totalCount
    nodes {
      name
      assignedTo { username }
      opportunityCount
      pipelineAmount
      wonAmount
      roi
      opportunities(first: 5) {
        totalCount
        nodes { name amount isWon account { name } campaign { name } }
      }
    }
  }
}
"""

NODES_WITH_RELATIONS = """
query NodesWithRelations($ids: [ID!]!) {
  nodes(ids: $ids) {
    ... on Opportunity {
      name
      salesStage { key }
      account { name }
      campaign { name }
      contact { lastName }
      contacts { contact { lastName } }
      quotes { grandTotal lines { product { name } } }
      stageHistory { toStage { key } changedBy { username } }
    }
  }
}
"""

RECYCLE_BIN = """
query RecycleBin($first: Int!) {
  deletedOpportunities(first: $first) {
    totalCount
    edges {
      cursor
      node {
        name deletedAt salesStage { key } assignedTo { username } account { name }
        contact { lastName } quotes { netTotal lines { netTotal } }
      }
    }
  }
}
"""

CONTACTS_WITH_DEALS = """
query ContactsWithDeals($first: Int!) {
  contacts(first: $first) {
    nodes {
      lastName
      opportunities(first: 5) {
        totalCount
        edges {
          role
          isPrimary
          node { name salesStage { key } assignedTo { username } quotes { netTotal } }
        }
      }
    }
  }
}
"""

STAGES = ["PROSPECTING", "QUALIFICATION", "PROPOSAL_PRICE_QUOTE", "CLOSED_WON", "CLOSED_LOST"]


async def seed_deals(factory, owners: list[Any], per_owner: int, accounts: int = 10) -> list[Any]:
    """Deals spread over accounts and campaigns, each with 1–2 quotes of 1–3 product lines."""
    products = [await factory.product(name=f"P{i}", code=f"P-{i}") for i in range(5)]
    campaigns = [await factory.campaign(owners[0], name=f"C{i}") for i in range(4)]
    deals = []
    n = 0
    for owner in owners:
        owned_accounts = [
            await factory.account(owner, name=f"{owner.username} A{i}") for i in range(accounts)
        ]
        contact = await factory.contact(owner, last_name=f"{owner.username} contact")
        for _ in range(per_owner):
            deal = await factory.opportunity(
                owner, name=f"D{n:03}", stage=STAGES[n % len(STAGES)], amount=f"{100 + n}.00",
                account_id=owned_accounts[n % accounts].id,
                campaign_id=campaigns[n % len(campaigns)].id,
            )
            factory.session.add(
                models.OpportunityContact(
                    opportunity_id=deal.id, contact_id=contact.id, is_primary=True
                )
            )
            for q in range(n % 2 + 1):
                lines = [
                    (products[(n + k) % len(products)], "2", "100.00", "10", "22")
                    for k in range((n + q) % 3 + 1)
                ]
                await factory.quote(deal, lines, f"Q{n}-{q}", is_synced=q == 0)
            deals.append(deal)
            n += 1
    await factory.session.flush()
    return deals


async def count_statements(client, statements, query: str, variables: dict[str, Any]) -> int:
    statements.count = 0
    statements.sql.clear()
    await client.data(query, variables)
    return int(statements.count)


@pytest.fixture
async def pipeline_data(team, factory, db) -> dict[str, Any]:
    """60 deals of rep, 20 of rep2 (manager sees 80), 10 of other_rep (seen by neither)."""
    deals = await seed_deals(factory, [team["rep"]], 60)
    deals += await seed_deals(factory, [team["rep2"], team["other_rep"]], 20, accounts=3)
    await db.commit()
    return {"deals": deals}


@pytest.mark.parametrize("viewer", ["rep", "manager", "admin"])
async def test_the_pipeline_page_costs_the_same_statements_for_5_and_50_deals(
    viewer, team, pipeline_data, client_for, statements
):
    # given
    client = await client_for(team[viewer])

    # when
    small = await count_statements(client, statements, PIPELINE, {"first": 5})
    large = await count_statements(client, statements, PIPELINE, {"first": 50})
    page = await client.data(PIPELINE, {"first": 50})

    # then
    print(f"pipeline as {viewer}: first 5 → {small}, first 50 → {large} statements")
    assert small == large
    edges = page["opportunities"]["edges"]
    assert len(edges) == 50
    assert all(e["node"]["quotes"] and e["node"]["account"] for e in edges)
    assert all(line["product"] for e in edges for q in e["node"]["quotes"] for line in q["lines"])


async def test_the_pipeline_page_costs_the_same_on_the_next_page(
    team, pipeline_data, client_for, statements
):
    # given
    client = await client_for(team["rep"])
    first = await client.data(PIPELINE, {"first": 5})
    after = first["opportunities"]["pageInfo"]["endCursor"]

    # when
    small = await count_statements(client, statements, PIPELINE, {"first": 5, "after": after})
    large = await count_statements(client, statements, PIPELINE, {"first": 50, "after": after})

    # then
    print(f"pipeline after a cursor: first 5 → {small}, first 50 → {large} statements")
    assert small == large


@pytest.mark.parametrize("viewer", ["rep", "manager"])
async def test_accounts_with_their_deals_cost_the_same_for_2_and_10_accounts(
    viewer, team, factory, db, client_for, statements
):
    # given: 12 accounts of rep with 4 deals each (of rep and rep2), each with quotes
    await seed_deals(factory, [team["rep"]], 48, accounts=12)
    await db.commit()
    client = await client_for(team[viewer])

    # when
    small = await count_statements(client, statements, ACCOUNTS_WITH_DEALS, {"first": 2})
    large = await count_statements(client, statements, ACCOUNTS_WITH_DEALS, {"first": 10})
    page = await client.data(ACCOUNTS_WITH_DEALS, {"first": 10})

    # then
    print(f"accounts as {viewer}: first 2 → {small}, first 10 → {large} statements")
    assert small == large
    accounts = [e["node"] for e in page["accounts"]["edges"]]
    assert len(accounts) == 10
    assert all(a["opportunities"]["totalCount"] == 4 for a in accounts)
    assert all(len(a["opportunities"]["edges"]) == 4 for a in accounts)


@pytest.mark.parametrize("viewer", ["rep", "manager", "admin"])
async def test_campaigns_with_figures_cost_the_same_for_2_and_10_campaigns(
    viewer, team, factory, db, client_for, statements
):
    # given: 12 campaigns with 4 deals each, of rep, rep2 and other_rep
    campaigns = [await factory.campaign(team["admin"], name=f"C{i:02}") for i in range(12)]
    account = await factory.account(team["rep"])
    for i, campaign in enumerate(campaigns):
        for k, owner in enumerate(["rep", "rep", "rep2", "other_rep"]):
            await factory.opportunity(
                team[owner], name=f"D{i}-{k}", stage=STAGES[k], account_id=account.id,
                campaign_id=campaign.id,
            )
    await db.commit()
    client = await client_for(team[viewer])

    # when
    small = await count_statements(client, statements, CAMPAIGNS_WITH_FIGURES, {"first": 2})
    large = await count_statements(client, statements, CAMPAIGNS_WITH_FIGURES, {"first": 10})

    # then
    print(f"campaigns as {viewer}: first 2 → {small}, first 10 → {large} statements")
    assert small == large


async def test_nodes_with_relations_cost_the_same_for_5_and_50_ids(
    team, pipeline_data, client_for, statements
):
    # given
    client = await client_for(team["manager"])
    ids = [to_global_id("Opportunity", d.id) for d in pipeline_data["deals"][:50]]

    # when
    small = await count_statements(client, statements, NODES_WITH_RELATIONS, {"ids": ids[:5]})
    large = await count_statements(client, statements, NODES_WITH_RELATIONS, {"ids": ids})

    # then
    print(f"nodes: 5 ids → {small}, 50 ids → {large} statements")
    assert small == large


@pytest.mark.parametrize("viewer", ["rep", "manager", "admin"])
async def test_the_recycle_bin_costs_the_same_statements_for_5_and_50_deals(
    viewer, team, pipeline_data, db, client_for, statements
):
    # given: every deal in the bin
    await db.execute(update(models.Opportunity).values(deleted_at=func.now()))
    await db.commit()
    client = await client_for(team[viewer])

    # when
    small = await count_statements(client, statements, RECYCLE_BIN, {"first": 5})
    large = await count_statements(client, statements, RECYCLE_BIN, {"first": 50})
    page = (await client.data(RECYCLE_BIN, {"first": 50}))["deletedOpportunities"]

    # then
    print(f"recycle bin as {viewer}: first 5 → {small}, first 50 → {large} statements")
    assert small == large
    assert page["totalCount"] == {"rep": 60, "manager": 80, "admin": 100}[viewer]
    assert len(page["edges"]) == 50
    assert all(e["node"]["deletedAt"] and e["node"]["quotes"] for e in page["edges"])


@pytest.mark.parametrize("viewer", ["rep", "manager"])
async def test_contacts_with_their_deals_cost_the_same_for_2_and_10_contacts(
    viewer, team, factory, db, client_for, statements
):
    # given: 12 contacts of rep, each in 3 deals of rep and 1 of rep2 (one of them primary)
    deals = await seed_deals(factory, [team["rep"]], 36, accounts=4)
    deals += await seed_deals(factory, [team["rep2"]], 12, accounts=2)
    contacts = [await factory.contact(team["rep"], last_name=f"Zeta{i:02}") for i in range(12)]
    for i, contact in enumerate(contacts):
        for k, deal in enumerate([*deals[3 * i:3 * i + 3], deals[36 + i]]):
            db.add(models.OpportunityContact(
                opportunity_id=deal.id, contact_id=contact.id, role="MANAGER" if k else None,
            ))
    await db.commit()
    client = await client_for(team[viewer])
    query = CONTACTS_WITH_DEALS.replace("contacts(first: $first)",
                                        'contacts(first: $first, filter: {search: "zeta"})')

    # when
    small = await count_statements(client, statements, query, {"first": 2})
    large = await count_statements(client, statements, query, {"first": 10})
    page = await client.data(query, {"first": 10})

    # then
    print(f"contacts as {viewer}: first 2 → {small}, first 10 → {large} statements")
    assert small == large
    listed = page["contacts"]["nodes"]
    assert [c["lastName"] for c in listed] == [f"Zeta{i:02}" for i in range(10)]
    expected = 4 if viewer == "manager" else 3
    assert all(c["opportunities"]["totalCount"] == expected for c in listed)
    assert all(len(c["opportunities"]["edges"]) == expected for c in listed)
    assert all(e["role"] in ("MANAGER", None) and e["isPrimary"] is False
               for c in listed for e in c["opportunities"]["edges"])

