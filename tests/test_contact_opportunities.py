"""`Contact.opportunities` (API.md "Corrections to the lifecycle"): the live deals a contact
has a role in, only those the viewer may see, as a connection whose edges carry the role."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import update

import models
from resolvers.ids import to_global_id

CONTACT_DEALS = """
query ContactDeals(
  $id: ID!, $first: Int, $after: String, $last: Int, $before: String,
  $filter: OpportunityFilter, $orderBy: [OpportunityOrder!]
) {
  node(id: $id) {
    ... on Contact {
      lastName
      opportunities(
        first: $first, after: $after, last: $last, before: $before,
        filter: $filter, orderBy: $orderBy
      ) {
        totalCount
        edges { cursor role isPrimary node { name } }
        nodes { name contact { lastName } }
        pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
      }
    }
  }
}
"""

NAME_ASC = [{"field": "NAME", "direction": "ASC"}]


def gid(record: Any) -> str:
    return to_global_id(type(record).__name__, record.id)


@pytest.fixture
async def contact_deals(team, factory, db) -> dict[str, Any]:
    """rep's contact Verdi, linked to rep's A (primary, MANAGER) and B (CONSULTANT), rep2's C,
    other_rep's D, and rep's deleted E; rep's F is not linked to Verdi."""
    verdi = await factory.contact(team["rep"], last_name="Verdi")
    other = await factory.contact(team["rep"], last_name="Neri")
    deals = {}
    for name, owner, stage in (("A", "rep", "PROSPECTING"), ("B", "rep", "QUALIFICATION"),
                               ("C", "rep2", "PROSPECTING"), ("D", "other_rep", "PROSPECTING"),
                               ("E", "rep", "PROSPECTING"), ("F", "rep", "PROSPECTING")):
        deals[name] = await factory.opportunity(team[owner], name=name, stage=stage)
    links = {"A": ("MANAGER", True), "B": ("CONSULTANT", False), "C": (None, False),
             "D": (None, True), "E": (None, True)}
    db.add_all(
        models.OpportunityContact(opportunity_id=deals[n].id, contact_id=verdi.id, role=role,
                                  is_primary=primary)
        for n, (role, primary) in links.items()
    )
    db.add(models.OpportunityContact(opportunity_id=deals["B"].id, contact_id=other.id,
                                     is_primary=True))
    db.add(models.OpportunityContact(opportunity_id=deals["F"].id, contact_id=other.id,
                                     is_primary=True))
    await db.execute(update(models.Opportunity).where(models.Opportunity.id == deals["E"].id)
                     .values(deleted_at=dt.datetime.now(dt.UTC)))
    await db.commit()
    return {"verdi": verdi, "other": other, **deals}


@pytest.mark.parametrize(("viewer", "expected"), [
    ("rep", ["A", "B"]),
    ("rep2", None),  # may not see rep's contact at all
    ("manager", ["A", "B", "C"]),
    ("admin", ["A", "B", "C", "D"]),
])
async def test_a_contact_lists_the_live_deals_it_has_a_role_in_that_the_viewer_may_see(
    viewer, expected, team, contact_deals, client_for
):
    # given
    client = await client_for(team[viewer])

    # when
    data = await client.data(
        CONTACT_DEALS, {"id": gid(contact_deals["verdi"]), "first": 10, "orderBy": NAME_ASC}
    )

    # then
    if expected is None:
        assert data["node"] is None
        return
    deals = data["node"]["opportunities"]
    assert [e["node"]["name"] for e in deals["edges"]] == expected
    assert [n["name"] for n in deals["nodes"]] == expected
    assert deals["totalCount"] == len(expected)


async def test_each_edge_carries_the_contacts_role_in_that_deal(team, contact_deals, client_for):
    # given
    client = await client_for(team["admin"])

    # when
    verdi = (await client.data(
        CONTACT_DEALS, {"id": gid(contact_deals["verdi"]), "first": 10, "orderBy": NAME_ASC}
    ))["node"]["opportunities"]
    neri = (await client.data(
        CONTACT_DEALS, {"id": gid(contact_deals["other"]), "first": 10, "orderBy": NAME_ASC}
    ))["node"]["opportunities"]

    # then
    assert [(e["node"]["name"], e["role"], e["isPrimary"]) for e in verdi["edges"]] == [
        ("A", "MANAGER", True), ("B", "CONSULTANT", False), ("C", None, False), ("D", None, True),
    ]
    assert [n["contact"] for n in verdi["nodes"]] == [
        {"lastName": "Verdi"}, {"lastName": "Neri"}, None, {"lastName": "Verdi"},
    ]
    assert [(e["node"]["name"], e["role"], e["isPrimary"]) for e in neri["edges"]] == [
        ("B", None, True), ("F", None, True),
    ]


async def test_the_contacts_deals_page_by_cursor_filter_and_order(
    team, contact_deals, client_for
):
    # given
    client = await client_for(team["admin"])
    verdi = gid(contact_deals["verdi"])

    # when
    first = (await client.data(CONTACT_DEALS, {"id": verdi, "first": 3, "orderBy": NAME_ASC}))
    end = first["node"]["opportunities"]["pageInfo"]["endCursor"]
    rest = await client.data(
        CONTACT_DEALS, {"id": verdi, "first": 3, "after": end, "orderBy": NAME_ASC}
    )
    back = await client.data(CONTACT_DEALS, {
        "id": verdi, "last": 2, "before": end, "orderBy": NAME_ASC,
    })
    descending = await client.data(
        CONTACT_DEALS, {"id": verdi, "first": 10, "orderBy": [{"field": "NAME",
                                                               "direction": "DESC"}]}
    )
    filtered = await client.data(
        CONTACT_DEALS, {"id": verdi, "first": 10, "filter": {"stage": ["QUALIFICATION"]}}
    )

    # then
    def names(data: dict[str, Any]) -> list[str]:
        return [e["node"]["name"] for e in data["node"]["opportunities"]["edges"]]

    assert (names(first), names(rest), names(back)) == (["A", "B", "C"], ["D"], ["A", "B"])
    assert first["node"]["opportunities"]["pageInfo"]["hasNextPage"] is True
    assert rest["node"]["opportunities"]["pageInfo"] == {
        "hasNextPage": False, "hasPreviousPage": True,
        "startCursor": rest["node"]["opportunities"]["edges"][0]["cursor"],
        "endCursor": rest["node"]["opportunities"]["edges"][0]["cursor"],
    }
    assert names(descending) == ["D", "C", "B", "A"]
    assert names(filtered) == ["B"]
    assert filtered["node"]["opportunities"]["totalCount"] == 1


async def test_a_contact_without_deals_has_an_empty_connection(team, factory, db, client_for):
    # given
    lonely = await factory.contact(team["rep"], last_name="Solo")
    await db.commit()
    client = await client_for(team["rep"])

    # when
    data = await client.data(CONTACT_DEALS, {"id": gid(lonely), "first": 5})

    # then
    assert data["node"]["opportunities"] == {
        "totalCount": 0, "edges": [], "nodes": [],
        "pageInfo": {"hasNextPage": False, "hasPreviousPage": False, "startCursor": None,
                     "endCursor": None},
    }


async def test_a_quotes_contact_lists_its_deals_inside_the_pipeline_list(
    team, factory, contact_deals, db, client_for
):
    # given: a quote on A for Verdi (the planned pipeline list reaches contacts via quotes)
    product = await factory.product()
    await factory.quote(contact_deals["A"], [(product, "1", "10.00", "0", "0")],
                        contact_id=contact_deals["verdi"].id)
    await db.commit()
    client = await client_for(team["manager"])

    # when
    data = await client.data("""
      { opportunities(first: 10, filter: {search: "A"}) { nodes { name quotes { contact {
          lastName opportunities(first: 5, orderBy: [{field: NAME, direction: ASC}]) {
            totalCount edges { role node { name } } } } } } } }
    """)

    # then
    [deal] = [n for n in data["opportunities"]["nodes"] if n["name"] == "A"]
    assert deal["quotes"][0]["contact"] == {"lastName": "Verdi", "opportunities": {
        "totalCount": 3,
        "edges": [{"role": "MANAGER", "node": {"name": "A"}},
                  {"role": "CONSULTANT", "node": {"name": "B"}},
                  {"role": None, "node": {"name": "C"}}],
    }}
